#!/bin/sh
# Writes the hash of the release tarball into
# package/picam-stream/picam-stream.hash, as Buildroot (of the version in
# buildroot.version) computes it after vendoring the crates. Run at release
# time on the commit that will be tagged (docs/buildroot.md):
#
#   buildroot-package/release-hash.sh BUILDROOT_DIR DATE
#
# DATE (e.g. "2026-12-03T12:00:00Z") becomes the commit date of the commit
# that is tagged: GitHub's archive of a tag gives every file the commit's
# date, and Buildroot keeps it when it packs the vendored tarball, so the
# hash depends on it. Commit with GIT_COMMITTER_DATE=DATE, then tag.
#
# The tarball is "git archive" of HEAD's files plus the working tree's
# picam-stream.hash left out (buildroot-package/ is export-ignore), packed
# as GitHub packs a tag, then given to Buildroot's own download step
# (make picam-stream-source) from a file:// site; network is needed for
# Buildroot's host cargo and for the crates.
set -eu

die() {
	echo "release-hash.sh: $*" >&2
	exit 2
}

[ $# -eq 2 ] || die "usage: $0 BUILDROOT_DIR DATE"
EXT="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$EXT/.." && pwd)"
BR="$(cd "$1" && pwd)" || die "no directory $1"
DATE="$2"
VERSION="$(sed -n 's/^PICAM_STREAM_VERSION = //p' "$EXT/package/picam-stream/picam-stream.mk")"
CARGO_VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -n 1)"
[ "$VERSION" = "$CARGO_VERSION" ] ||
	die "picam-stream.mk says $VERSION, Cargo.toml says $CARGO_VERSION"
sh "$EXT/gen-defconfigs.sh" --check "$BR" >/dev/null ||
	die "$BR is not the pinned Buildroot, or the defconfigs are stale"
git -C "$REPO" diff --quiet HEAD -- . ':!buildroot-package' ||
	die "uncommitted changes outside buildroot-package/ would not be in the tarball"
# Buildroot names the download after the vendored result (-cargoN), the
# name it asks the site for too (GitHub ignores it).
SUFFIX="$(sed -n 's/^BR_FMT_VERSION_cargo = //p' "$BR/package/pkg-download.mk")"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/site"
git -C "$REPO" archive --format=tar.gz --prefix="picam-stream-$VERSION/" \
	--mtime="$DATE" -o "$WORK/site/picam-stream-$VERSION$SUFFIX.tar.gz" HEAD

# Buildroot's download step, without the check of the tarball's hash (the
# line does not exist yet).
make -s -C "$BR" O="$WORK/out" BR2_EXTERNAL="$EXT" picam_raspberrypi4_64_defconfig
sed -i '/^BR2_DOWNLOAD_FORCE_CHECK_HASHES=y$/d' "$WORK/out/.config"
make -s -C "$WORK/out" olddefconfig
DL="${BR2_DL_DIR:-$BR/dl}"
tarball="$DL/picam-stream/picam-stream-$VERSION$SUFFIX.tar.gz"
rm -f "$tarball"
make -C "$WORK/out" PICAM_STREAM_SITE="file://$WORK/site" BR2_DL_DIR="$DL" \
	BR_NO_CHECK_HASH_FOR="${tarball##*/}" picam-stream-source
[ -f "$tarball" ] || die "Buildroot made no $tarball"
hash="$(sha256sum "$tarball" | cut -d' ' -f1)"

file="$EXT/package/picam-stream/picam-stream.hash"
sed -i '/  picam-stream-.*\.tar\.gz$/d' "$file"
printf 'sha256  %s  %s\n' "$hash" "${tarball##*/}" >> "$file"
echo "release-hash.sh: $file: sha256 $hash ${tarball##*/}"
echo "release-hash.sh: commit it with GIT_COMMITTER_DATE='$DATE', then tag v$VERSION"
