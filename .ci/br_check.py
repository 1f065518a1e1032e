#!/usr/bin/env python3
"""Checks buildroot-package/ against Buildroot's package coding style: the
rules that Buildroot's utils/check-package applies to Config.in, .mk, .hash
files, S?? init scripts and configs/*_defconfig (indentation, attribute
order, help text width, variable prefixes, hash format, forced hash
checks), written out here because that tool is not
available from a package registry. Prints one line per finding and
"br-check: N passed, N failed".

    .ci/br_check.py [EXTERNAL_DIR]      default: buildroot-package
"""

import hashlib
import os
import re
import subprocess
import sys

UNINDENTED = {"choice", "comment", "config", "endchoice", "endif", "endmenu", "if",
              "menu", "menuconfig", "source"}
INDENTED = {"bool", "default", "depends", "help", "prompt", "select", "string", "int"}
ORDER = {"bool": 1, "prompt": 1, "string": 1, "int": 1, "default": 2, "depends": 3,
         "select": 4, "help": 5}


class Report:
    def __init__(self):
        self.findings = []
        self.files = 0

    def add(self, path, lineno, msg):
        self.findings.append(f"{path}:{lineno}: {msg}")


def common_text_rules(rep, path, lines):
    """Whitespace rules every checked file shares."""
    previous_blank = False
    for n, line in enumerate(lines, 1):
        if line.rstrip("\n") != line.rstrip("\n").rstrip():
            rep.add(path, n, "trailing whitespace")
        blank = line.strip() == ""
        if blank and previous_blank:
            rep.add(path, n, "consecutive empty lines")
        previous_blank = blank
    if lines and not lines[-1].endswith("\n"):
        rep.add(path, len(lines), "no newline at the end of the file")
    if lines and lines[-1].strip() == "":
        rep.add(path, len(lines), "empty last line")


def not_executable(rep, path, repo):
    out = subprocess.run(["git", "-C", repo, "ls-files", "-s", "--", path],
                         capture_output=True, text=True).stdout.split()
    mode = out[0] if out else oct(os.stat(path).st_mode & 0o777777)[2:]
    if mode.endswith("755"):
        rep.add(path, 0, "must not be executable (the .mk installs it with mode 0755)")


def check_config_in(rep, path, lines):
    state = 0
    in_help = False
    help_first = False
    continued = False
    for n, raw in enumerate(lines, 1):
        text = raw.rstrip("\n")
        stripped = text.strip()
        if stripped == "" or stripped.startswith("#"):
            continued = False
            continue
        if in_help and text.startswith("\t  "):
            pattern = r"^\t  \S.{0,61}$" if help_first else r"^\t  .{0,62}$"
            help_first = False
            if not re.match(pattern, text.rstrip()) and not re.match(r"^(https?|git)://\S*$", stripped):
                rep.add(path, n, "help text: a tab, two spaces, at most 62 characters")
            continue
        word = stripped.split()[0]
        if continued:
            if not text.startswith("\t"):
                rep.add(path, n, "continuation line should be indented with a tab")
        elif word in INDENTED:
            if not text.startswith("\t" + word):
                rep.add(path, n, "should be indented with one tab")
        elif word in UNINDENTED:
            if not text.startswith(word):
                rep.add(path, n, "should not be indented")
        continued = text.endswith("\\")
        if word in UNINDENTED:
            state = 0
            in_help = False
        elif word in ORDER:
            if state > ORDER[word]:
                rep.add(path, n, "attributes order: type, default, depends on, select, help")
            state = ORDER[word]
        if stripped == "help":
            in_help = True
            help_first = True
        elif in_help:
            rep.add(path, n, "help text must be indented with a tab and two spaces")
        if re.match(r"^\tdefault n\s*(#.*)?$", text):
            rep.add(path, n, "'default n' is redundant")


def check_mk(rep, path, lines, pkg):
    prefix = pkg.upper().replace("-", "_") + "_"
    rule = "#" * 80 + "\n"
    header = [rule, "#\n", f"# {pkg}\n", "#\n", rule, "\n"]
    if lines[:6] != header:
        rep.add(path, 1, "the header must be 80 '#', '#', '# " + pkg + "', '#', 80 '#', an empty line")
    in_define = False
    continued = False
    for n, raw in enumerate(lines, 1):
        text = raw.rstrip("\n")
        if n <= 6:
            continue
        if continued and not text.startswith("\t"):
            rep.add(path, n, "continuation line should be indented with a tab")
        continued = text.endswith("\\") and not text.startswith("#")
        if text.startswith("define "):
            in_define = True
            name = text.split()[1]
            if not name.startswith(prefix):
                rep.add(path, n, f"{name} should start with {prefix}")
            continue
        if text == "endef":
            in_define = False
            continue
        if in_define:
            if text and not text.startswith("\t"):
                rep.add(path, n, "lines inside define should be indented with a tab")
            continue
        m = re.match(r"^([A-Za-z0-9_]+)\s*(\+=|\?=|:=|=)", text)
        if m and not text.startswith("\t"):
            var, op = m.groups()
            if not var.startswith(prefix):
                rep.add(path, n, f"variable {var} should start with {prefix}")
            if var.endswith("_HOOKS") and op != "+=":
                rep.add(path, n, f"{var}: hooks are added with '+='")
        if "${" in text:
            rep.add(path, n, "use $() to refer to make variables, not ${}")
        if re.match(r"^ifn?eq \(\$\(BR2_[A-Z0-9_]+\), *y\)$", text) and ", y)" in text:
            rep.add(path, n, "write ifeq ($(BR2_X),y) without a space")
        if text.startswith(" "):
            rep.add(path, n, "indent with tabs")
    nonempty = [line.rstrip("\n") for line in lines if line.strip()]
    if not nonempty or not re.match(r"^\$\(eval \$\((host-)?[a-z]+-package\)\)$", nonempty[-1]):
        rep.add(path, len(lines), "the last line must be $(eval $(<infra>-package))")


def check_hash(rep, path, lines, source_root):
    for n, raw in enumerate(lines, 1):
        text = raw.rstrip("\n")
        if text == "" or text.startswith("#"):
            continue
        m = re.match(r"^(md5|sha1|sha224|sha256|sha384|sha512)  ([0-9a-f]+)  (\S+)$", text)
        if not m:
            rep.add(path, n, "expected 'TYPE  HASH  FILE' with two spaces between fields")
            continue
        kind, digest, name = m.groups()
        size = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}[kind]
        if len(digest) != size:
            rep.add(path, n, f"a {kind} hash has {size} hex digits, not {len(digest)}")
            continue
        if re.search(r"\.tar\.(gz|xz|bz2)$", name):
            # The release tarball (buildroot-package/release-hash.sh): it
            # is not in the checkout, so only its format is checked.
            continue
        local = os.path.join(source_root, name)
        if os.path.exists(local):
            got = hashlib.new(kind, open(local, "rb").read()).hexdigest()
            if got != digest:
                rep.add(path, n, f"{name} has {kind} {got}, not the one listed")
        else:
            rep.add(path, n, f"{name} is not in the source tree")


def check_sysv(rep, path, lines):
    daemon = None
    for n, raw in enumerate(lines, 1):
        text = raw.rstrip("\n")
        if re.match(r"^\t* ", text.rstrip()):
            rep.add(path, n, "init scripts are indented with tabs")
        m = re.match(r"""^DAEMON=["']?([^"']*)["']?""", text)
        if m:
            if daemon is not None:
                rep.add(path, n, "DAEMON defined twice")
            daemon = m.group(1)
            if "/" in daemon:
                rep.add(path, n, "no path in DAEMON")
        m = re.match(r"""^PIDFILE=["']?([^"']*)["']?""", text)
        if m and not re.match(r"^/var/run/(\$DAEMON|\$\{DAEMON\})\.pid$", m.group(1)):
            rep.add(path, n, 'PIDFILE should be "/var/run/$DAEMON.pid"')
    if daemon is None:
        rep.add(path, 0, "DAEMON is not defined")
    elif not re.match(rf"^S\d\d{re.escape(daemon)}$", os.path.basename(path)):
        rep.add(path, 0, f"the file name should be S<two digits>{daemon}")


def check_defconfig(rep, path, lines):
    """A defconfig must make Buildroot check the hash of every download."""
    if "BR2_DOWNLOAD_FORCE_CHECK_HASHES=y\n" not in lines:
        rep.add(path, 0, "missing BR2_DOWNLOAD_FORCE_CHECK_HASHES")


def shellcheck(rep, path):
    try:
        r = subprocess.run(["shellcheck", "-s", "sh", path], capture_output=True, text=True)
    except FileNotFoundError:
        rep.add(path, 0, "shellcheck is not installed")
        return
    for line in r.stdout.splitlines():
        m = re.match(r"^In (.*) line (\d+):$", line)
        if m:
            rep.add(path, int(m.group(2)), "shellcheck: see 'shellcheck -s sh " + path + "'")


def main():
    ext = sys.argv[1] if len(sys.argv) > 1 else "buildroot-package"
    repo = subprocess.run(["git", "-C", ext, "rev-parse", "--show-toplevel"],
                          capture_output=True, text=True).stdout.strip() or os.path.dirname(os.path.abspath(ext))
    rep = Report()
    checked = []
    for root, dirs, names in os.walk(ext):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(names):
            path = os.path.join(root, name)
            lines = open(path, encoding="utf-8").readlines()
            pkg = os.path.basename(root)
            kind = None
            if name.startswith("Config.in"):
                kind = "config"
                check_config_in(rep, path, lines)
                not_executable(rep, path, repo)
            elif name.endswith(".mk") and root.endswith(os.path.join("package", pkg)):
                kind = "mk"
                check_mk(rep, path, lines, pkg)
                not_executable(rep, path, repo)
            elif name.endswith(".hash"):
                kind = "hash"
                # The licence files are those of the checkout around the
                # tree, the source of the release tarball.
                check_hash(rep, path, lines, os.path.dirname(os.path.abspath(ext)))
                not_executable(rep, path, repo)
            elif re.match(r"^S\d\d", name) and "package" in path.split(os.sep):
                kind = "sysv"
                check_sysv(rep, path, lines)
                not_executable(rep, path, repo)
                shellcheck(rep, path)
            elif name.endswith("_defconfig") and os.path.basename(root) == "configs":
                kind = "defconfig"
                check_defconfig(rep, path, lines)
            elif name == "external.desc":
                kind = "external.desc"
                if not re.match(r"^name: [A-Za-z0-9_]+$", lines[0].rstrip("\n")):
                    rep.add(path, 1, "the first line must be 'name: NAME'")
            if kind:
                common_text_rules(rep, path, lines)
                checked.append((kind, path))
    for kind, path in checked:
        print(f"br-check: checked {path} ({kind})")
    for f in rep.findings:
        print(f"br-check: {f}")
    failed = len({f.split(":")[0] for f in rep.findings})
    print(f"br-check: {len(checked) - failed} passed, {failed} failed")
    return 1 if rep.findings else 0


if __name__ == "__main__":
    sys.exit(main())
