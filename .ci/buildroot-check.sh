#!/usr/bin/env bash
# Checks of buildroot-package/ that need no Buildroot tree:
#   - Buildroot's package coding style (.ci/br_check.py), and that the
#     checker catches a broken copy of the package,
#   - that configs/picam_*_defconfig are what gen-defconfigs.sh makes of
#     the fragments and the pinned Buildroot version; with a Buildroot
#     tree of that version in PICAM_BUILDROOT_DIR, also that they are
#     generated again byte for byte and that every BR2_ line of the
#     fragments survives "make picam_<board>_defconfig",
#   - shellcheck on every shell script of the tree and of the boot tests,
#   - picam-config's reading of picam.txt (Windows line ends, quotes, bad
#     names, bad values) under dash and BusyBox sh.
set -euo pipefail

# shellcheck source=.ci/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO=$PICAM_REPO
cd "$REPO"
PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); printf 'br: ok: %s\n' "$*"; }
nok() { FAIL=$((FAIL + 1)); printf 'br: NOT OK: %s\n' "$*"; }

need shellcheck shellcheck
need dash dash

if python3 .ci/br_check.py buildroot-package; then ok "Buildroot coding style"; else nok "Buildroot coding style"; fi

# A broken copy: every rule broken once must be reported.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r buildroot-package "$work/ext"
cp LICENSE-MIT LICENSE-APACHE "$work/"
p=$work/ext/package/picam-stream
sed -i 's/^\tbool "picam-stream"/    bool "picam-stream"/' "$p/Config.in"
sed -i 's/^\t  Live MJPEG stream of a Raspberry Pi camera, or of any V4L2$/\t  Live MJPEG stream of a Raspberry Pi camera, or of any V4L2 or MJPEG source/' "$p/Config.in"
sed -i 's/^PICAM_STREAM_VERSION = /PICAMSTREAM_VERSION = /' "$p/picam-stream.mk"
sed -i 's/^sha256  \(.\)/sha256  0/' "$p/picam-stream.hash"
sed -i 's/^DAEMON="picam-stream"/DAEMON="picam"/' "$p/S99picam-stream"
sed -i '/^BR2_DOWNLOAD_FORCE_CHECK_HASHES=y$/d' "$work/ext/configs/picam_raspberrypi2_defconfig"
(cd "$work/ext" && git init -q && git add -A)
out=$(python3 .ci/br_check.py "$work/ext" || true)
for want in "should be indented with one tab" "help text" "PICAMSTREAM_VERSION should start with PICAM_STREAM_" \
    "has sha256" "file name should be S<two digits>picam" "missing BR2_DOWNLOAD_FORCE_CHECK_HASHES"; do
    if grep -q -- "$want" <<<"$out"; then ok "the checker reports: $want"; else nok "the checker missed: $want"; fi
done

# The package's version is the crate's (the release tag's tarball).
version_agrees() {
    [ "$(sed -n 's/^PICAM_STREAM_VERSION = //p' "$1/package/picam-stream/picam-stream.mk")" = \
        "$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)" ]
}
if version_agrees buildroot-package; then ok "PICAM_STREAM_VERSION is Cargo.toml's version"; else
    nok "PICAM_STREAM_VERSION is Cargo.toml's version"; fi
sed -i 's/^PICAMSTREAM_VERSION = .*/PICAM_STREAM_VERSION = 0.0.1/' "$p/picam-stream.mk"
if version_agrees "$work/ext"; then nok "a PICAM_STREAM_VERSION other than Cargo.toml's is seen"; else
    ok "a PICAM_STREAM_VERSION other than Cargo.toml's is seen"; fi

# The defconfigs against their fragments. A fragment edited, or the pinned
# version changed, without running gen-defconfigs.sh must be reported.
if sh buildroot-package/gen-defconfigs.sh --check; then ok "the defconfigs match their fragments"; else
    nok "the defconfigs match their fragments"; fi
for broken in "fragment" "version"; do
    rm -rf "$work/gen" && cp -r buildroot-package "$work/gen"
    case $broken in
        fragment) echo 'BR2_PACKAGE_HTOP=y' >> "$work/gen/configs/raspberrypi3.fragment"
                  want="picam_raspberrypi3_defconfig: the raspberrypi3.fragment part is not" ;;
        version) echo 2026.02.99 > "$work/gen/buildroot.version"
                 want="the header does not name Buildroot 2026.02.99" ;;
    esac
    if sh "$work/gen/gen-defconfigs.sh" --check 2> "$work/err"; then
        nok "gen-defconfigs.sh --check passes with a changed $broken"
    elif grep -qF -- "$want" "$work/err"; then ok "gen-defconfigs.sh --check reports a changed $broken"; else
        nok "gen-defconfigs.sh --check: no '$want'"; cat "$work/err"; fi
done

# With a Buildroot tree of the pinned version: the defconfigs are generated
# again and compared, and each is loaded by Buildroot's own kconfig, which
# drops a setting whose dependencies are missing; none may be dropped.
if [ -n "${PICAM_BUILDROOT_DIR:-}" ]; then
    if sh buildroot-package/gen-defconfigs.sh --check "$PICAM_BUILDROOT_DIR"; then
        ok "the defconfigs are what Buildroot $(cat buildroot-package/buildroot.version) makes"; else
        nok "the defconfigs are what Buildroot $(cat buildroot-package/buildroot.version) makes"; fi
    for defconfig in buildroot-package/configs/picam_*_defconfig; do
        board=${defconfig##*/picam_} board=${board%_defconfig}
        out_dir=$work/o-$board
        if ! make -s -C "$PICAM_BUILDROOT_DIR" O="$out_dir" BR2_EXTERNAL="$REPO/buildroot-package" \
            "picam_${board}_defconfig" > "$work/make.log" 2>&1; then
            nok "make picam_${board}_defconfig"; cat "$work/make.log"; continue
        fi
        dropped=0
        while IFS= read -r line; do
            grep -qxF -- "$line" "$out_dir/.config" || { dropped=$((dropped + 1)); echo "br: $board: dropped: $line"; }
        done < <(grep -h '^BR2_' buildroot-package/configs/common.fragment "buildroot-package/configs/$board.fragment")
        if [ "$dropped" = 0 ]; then ok "picam_${board}_defconfig: every fragment setting survives"; else
            nok "picam_${board}_defconfig: $dropped fragment settings dropped"; fi
    done
else
    echo "br: skipped: the defconfigs in a Buildroot tree (set PICAM_BUILDROOT_DIR to one of version $(cat buildroot-package/buildroot.version))"
fi

scripts=(buildroot-package/package/picam-stream/{S30picam-config,S99picam-stream,picam-config}
    buildroot-package/gen-defconfigs.sh buildroot-package/release-hash.sh
    tests/vm/image/{rcS,S01syslogd,S10mdev,S40network,S99zz-report})
if shellcheck -s sh "${scripts[@]}"; then ok "shellcheck (sh): ${#scripts[@]} scripts"; else nok "shellcheck (sh)"; fi
if shellcheck -x tests/vm/card-build.sh tests/vm/card-boot.sh tests/vm/deb-boot.sh tests/vm/guest-root.sh .ci/lib.sh .ci/deb.sh .ci/buildroot-check.sh; then ok "shellcheck (bash): test scripts"; else nok "shellcheck (bash)"; fi

# picam-config reads picam.txt as a user might have written it on Windows.
conf=$work/boot
mkdir -p "$conf"
printf '%s\r\n' '# comment' '  WIFI_SSID = "Home Net"' "WIFI_PSK=it's \"quoted\"" 'WIFI_COUNTRY=GB' \
    'PICAM_SIZE=320x240' "PICAM_SOURCE='exec:rpicam-vid -t 0 -o -'" 'PICAM_bad=1' "PICAM_FPS=it's" \
    'OTHER=1' 'just words' 'HOSTNAME=-bad-' > "$conf/picam.txt"
printf 'PICAM_QUALITY=55' >> "$conf/picam.txt"   # a last line without a line end
expected="boot partition: $conf
HOSTNAME=-bad-
WIFI_SSID=Home Net
WIFI_PSK=*************
WIFI_COUNTRY=GB
WIFI_INTERFACE=wlan0
PICAM_SIZE='320x240'
PICAM_SOURCE='exec:rpicam-vid -t 0 -o -'
PICAM_QUALITY='55'"
shells=(dash)
bb=$PICAM_CI_CACHE/vm/x86_64/root/usr/bin/busybox
[ -x "$bb" ] && shells+=("$bb sh")
for sh in "${shells[@]}"; do
    # shellcheck disable=SC2086 # "busybox sh" is two words
    got=$(PICAM_BOOT_DIR=$conf PICAM_RUN_DIR=$work/run $sh buildroot-package/package/picam-stream/picam-config show 2>"$work/err")
    if [ "$got" = "$expected" ]; then ok "picam-config show under $sh"; else
        nok "picam-config show under $sh"; diff <(printf '%s\n' "$expected") <(printf '%s\n' "$got") || true; fi
    for want in ":7: ignored: bad name 'PICAM_bad'" ":8: ignored: PICAM_FPS contains a single quote" \
        ":9: ignored: unknown name 'OTHER'" ":10: ignored (not NAME=VALUE): just words"; do
        if grep -qF -- "$want" "$work/err"; then ok "$sh: says$want"; else nok "$sh: does not say$want"; cat "$work/err"; fi
    done
done

# "start" writes picam-stream's options and the Wi-Fi network (the host name
# is left alone: no HOSTNAME line). wpa_supplicant is not started on a host
# without it; with it, WIFI_INTERFACE names no interface, so nothing joins.
printf '%s\r\n' 'WIFI_SSID=Cafe "Zero"' "WIFI_PSK=pa ss'word" 'WIFI_COUNTRY=gb' 'WIFI_INTERFACE=nosuch0' \
    "PICAM_SOURCE=exec:rpicam-vid -o - | cat" 'PICAM_LISTEN=[::]:8080' > "$conf/picam.txt"
PICAM_BOOT_DIR=$conf PICAM_RUN_DIR=$work/run dash buildroot-package/package/picam-stream/picam-config start \
    2> "$work/err" || true
cat > "$work/want-wpa" <<'EOF'
ctrl_interface=/var/run/wpa_supplicant
network={
	ssid="Cafe "Zero""
	psk="pa ss'word"
}
EOF
if cmp -s "$work/want-wpa" "$work/run/wpa_supplicant.conf"; then ok "picam-config start writes wpa_supplicant.conf"; else
    nok "picam-config start writes wpa_supplicant.conf"; cat "$work/run/wpa_supplicant.conf" "$work/err" 2>/dev/null || true; fi
if grep -qF "WIFI_COUNTRY 'gb' ignored" "$work/err"; then ok "a bad WIFI_COUNTRY is refused"; else nok "a bad WIFI_COUNTRY is refused"; fi
if [ "$(stat -c %a "$work/run/wpa_supplicant.conf" 2>/dev/null)" = 600 ]; then
    ok "wpa_supplicant.conf is readable by its owner only"
else
    nok "wpa_supplicant.conf is readable by its owner only"
fi
# The options file is sourced by a root shell: its values must come back unchanged.
got=$(env -i dash -c "set -a; . '$work/run/picam-stream.env'; printf '%s|%s' \"\$PICAM_SOURCE\" \"\$PICAM_LISTEN\"")
if [ "$got" = 'exec:rpicam-vid -o - | cat|[::]:8080' ]; then ok "picam-stream.env gives the values back to sh"; else
    nok "picam-stream.env gives the values back to sh (got: $got)"; fi

echo "br: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
