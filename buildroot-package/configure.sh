#!/bin/sh
# Configures a Buildroot tree for a picam image: the board's own Buildroot
# defconfig, plus configs/common.fragment and configs/BOARD.fragment of
# this BR2_EXTERNAL tree.
#
#   buildroot-package/configure.sh BUILDROOT_DIR BOARD [OUTPUT_DIR]
#
# BOARD: raspberrypi0w, raspberrypizero2w_64, raspberrypi3_64 or
# raspberrypi4_64. OUTPUT_DIR defaults to BUILDROOT_DIR/output-BOARD.
# Then: make -C OUTPUT_DIR   (the card image is OUTPUT_DIR/images/sdcard.img)
set -eu

die() {
	echo "configure.sh: $*" >&2
	exit 2
}

[ $# -ge 2 ] || die "usage: $0 BUILDROOT_DIR BOARD [OUTPUT_DIR]"
EXT="$(cd "$(dirname "$0")" && pwd)"
BR="$(cd "$1" && pwd)" || die "no directory $1"
BOARD="$2"
OUT="${3:-$BR/output-$BOARD}"
FRAGMENT="$EXT/configs/$BOARD.fragment"

if [ ! -f "$FRAGMENT" ]; then
	boards=""
	for f in "$EXT"/configs/*.fragment; do
		b="$(basename "$f" .fragment)"
		[ "$b" = common ] || boards="$boards $b"
	done
	die "unknown board '$BOARD' (one of:$boards)"
fi
[ -f "$BR/configs/${BOARD}_defconfig" ] || die "$BR has no configs/${BOARD}_defconfig (is it a Buildroot tree?)"
[ -x "$BR/support/kconfig/merge_config.sh" ] || die "$BR has no support/kconfig/merge_config.sh"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
make -C "$BR" O="$OUT" BR2_EXTERNAL="$EXT" "${BOARD}_defconfig"
"$BR/support/kconfig/merge_config.sh" -m -O "$OUT" "$OUT/.config" \
	"$EXT/configs/common.fragment" "$FRAGMENT"
make -C "$BR" O="$OUT" olddefconfig

# Say which settings did not apply (a dependency missing in this Buildroot).
for f in "$EXT/configs/common.fragment" "$FRAGMENT"; do
	grep '^BR2_' "$f" | while IFS= read -r line; do
		if ! grep -qxF "$line" "$OUT/.config"; then
			echo "configure.sh: warning: not set: $line"
		fi
	done
done
echo "configure.sh: $BOARD configured in $OUT; now run: make -C $OUT"
