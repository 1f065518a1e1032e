#!/usr/bin/env bash
# Boot test of the Debian package: picam-stream_*_arm64.deb, installed with
# dpkg into a Debian arm64 system whose init is systemd, must serve the
# camera from power-on with no option set.
#
#   tests/vm/deb-boot.sh
#
# The system (cached under $PICAM_CI_CACHE/debvm/): Debian's systemd, udev,
# base-files, base-passwd and their dependencies for arm64, unpacked from the
# VM rig's release (tests/vm/rig.sh, private apt lists), with Debian's arm64
# kernel and its vivid driver (loaded by systemd-modules-load) as the camera,
# systemd-networkd for the network. The package goes in with
# `dpkg --root --force-script-chrootless -i` as .ci/deb.sh does: its postinst
# makes the user picam (systemd-sysusers) and enables the unit
# (deb-systemd-helper); /etc/default/picam-stream stays as shipped. The
# whole tree is the VM's initramfs; qemu (-M virt, TCG) boots it with
# systemd as PID 1 (rdinit=/sbin/init).
#
# A small root service in the guest (deb-boot-probe, not part of the
# package) writes, twice a second, what systemd and /proc say about the
# service to a virtio serial port that the host reads as a file. The host:
#   - waits for the server through the forwarded port, checks /status names
#     the V4L2 device, reads frames of /stream.mjpg and decodes them (djpeg),
#   - checks the service runs as picam (video group), NoNewPrivs 1, seccomp
#     filter on, no capabilities,
#   - leaves, and checks the server closes /dev/video* and /dev/media*
#     within the linger (3 s) plus a few seconds.
# A second service, picam-stream-rpicam (a copy of the installed unit, so the
# same sandbox, plus one Environment= line: port 8001 (HTTP, and UDP for WebRTC,
# whose default port 8000 the first service holds), PICAM_SOURCE=rpicam,
# PICAM_RPICAM_VID naming a sh stand-in for rpicam-vid that sends an I420 luma
# ramp ten times a second, no mDNS), is watched at the same time through the
# forwarded port 8001. The host checks its frames are the ramp at 640x480,
# /status names the camera module through rpicam-vid, the unit's cgroup holds
# the server, its guardian (the same binary) and the stand-in while watched and
# only the server within the linger plus 12 s after the viewer left, the unit
# stayed active with the same MainPID, and its journal has no WARN or ERROR.
# It prints the time from the VM's launch to the first frame, and ends with
# "deb-boot: N passed, N failed".
#
# Environment: PICAM_CI_CACHE (see .ci/lib.sh),
# PICAM_DEB (the package; default $PICAM_CI_CACHE/debs/picam-stream_<version>-1_arm64.deb,
# made by .ci/deb.sh), PICAM_BOOT_TIMEOUT (seconds from launch to the first
# frame, default 150), PICAM_DEB_BOOT_SHOW_CONSOLE=1 to print the console.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=.ci/lib.sh
. "$HERE/../../.ci/lib.sh"
# shellcheck source=tests/vm/guest-root.sh
. "$HERE/guest-root.sh"
REPO=$PICAM_REPO
CACHE=$PICAM_CI_CACHE
MINE=$CACHE/debvm
BOOT_TIMEOUT=${PICAM_BOOT_TIMEOUT:-150}
LINGER=3
# Debian packages of the system (with their dependencies).
# libstdc++6: the package depends on it (OpenH264, the arm64 build's software H.264).
PACKAGES=(systemd systemd-sysv udev base-files base-passwd dash busybox-static kmod libstdc++6)
# Kernel modules packed into the system; udev and modules-load.d load them.
MODULES=(virtio_pci virtio_net virtio_console vivid)
# Bumped when the way the system is assembled changes.
LAYOUT=1

export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C
PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); printf 'deb-boot: ok: %s\n' "$*"; }
nok() { FAIL=$((FAIL + 1)); printf 'deb-boot: NOT OK: %s\n' "$*"; }

need djpeg libjpeg-turbo-progs
need cpio cpio
need depmod kmod
need curl curl
need systemd-sysusers systemd
need deb-systemd-helper init-system-helpers

T0=$EPOCHREALTIME
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- inputs
bash "$HERE/rig.sh" prepare --arch aarch64 2>/dev/null || bash "$HERE/rig.sh" prepare --arch aarch64
info=$(bash "$HERE/rig.sh" info --arch aarch64)
KVER=$(sed -n 's/^kernel=//p' <<<"$info")
KIMAGE=$(sed -n 's/^image=//p' <<<"$info")
AC=$(sed -n 's/^cache=//p' <<<"$info")
if [ -z "$KVER" ] || [ ! -s "$KIMAGE" ] || [ ! -d "$AC/kimage" ]; then die "rig.sh info gave no aarch64 kernel"; fi
APT_CONF=$CACHE/vm/apt/arm64/apt.conf
[ -s "$APT_CONF" ] || die "no private arm64 apt configuration ($APT_CONF); run tests/vm/rig.sh prepare --arch aarch64"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)
DEB=${PICAM_DEB:-$CACHE/debs/picam-stream_${version}-1_arm64.deb}
[ -s "$DEB" ] || die "no package $DEB (run .ci/deb.sh)"
say "package: $DEB ($(stat -c %s "$DEB") bytes, built $(date -u -r "$DEB" +%FT%TZ))"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/picam-debboot.XXXXXX")
QPID='' VPID='' RVPID=''
cleanup() {
    stop_guest "$VPID" "$RVPID" "$QPID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT TERM

# ---------------------------------------------------------------- the system
papt() { APT_CONFIG=$APT_CONF "$@"; }
mkdir -p "$MINE/debs/partial" "$MINE/listing/partial"
uris=$(papt apt-get -qq -o Dir::Cache::archives="$MINE/listing" --print-uris install "${PACKAGES[@]}") ||
    die "apt cannot install ${PACKAGES[*]} for arm64"
mapfile -t debs < <(tr -d "'" <<<"$uris" | awk '{ print $2 }')
[ "${#debs[@]}" -gt 0 ] || die "apt resolved nothing for ${PACKAGES[*]}"
missing=0
for d in "${debs[@]}"; do [ -s "$MINE/debs/$d" ] || missing=$((missing + 1)); done
if [ "$missing" -gt 0 ]; then
    say "downloading $missing package(s) for arm64"
    papt apt-get -q -y -o Dir::Cache::archives="$MINE/debs" install --download-only "${PACKAGES[@]}" \
        > "$MINE/download.log" 2>&1 ||
        { tail -n 20 "$MINE/download.log"; die "download failed (stale lists? run tests/vm/rig.sh prepare --arch aarch64 --refresh)"; }
fi
# Versions the lists no longer name are of no more use.
for f in "$MINE"/debs/*.deb; do
    [ -e "$f" ] || continue
    printf '%s\n' "${debs[@]}" | grep -qxF "${f##*/}" || rm -f "$f"
done

# The probe: what systemd and /proc say about the service, twice a second, on
# the virtio serial port "deb-boot" (a file on the host). Root, not sandboxed.
write_guest_files() {
    local root=$1
    mkdir -p "$root/usr/local/sbin" "$root/etc/systemd/system" "$root/etc/systemd/network" \
        "$root/etc/modules-load.d"
    cat > "$root/usr/local/sbin/deb-boot-probe" <<'EOF'
#!/bin/sh
# Reports the service's state to the host (tests/vm/deb-boot.sh). The port is
# /dev/vport*p1 as soon as virtio_console is loaded; udev's name comes later.
bb=busybox
out=''
while [ -z "$out" ]; do
    for f in /dev/virtio-ports/deb-boot /dev/vport*p1; do [ -e "$f" ] && out=$f && break; done
    [ -n "$out" ] || $bb sleep 0.2
done
exec > "$out" 2>&1
echo "probe: start uptime=$($bb cut -d' ' -f1 /proc/uptime)"
n=0 pid=0 rpid=0 rwatched=0 rdumped=0
rcg=/sys/fs/cgroup/system.slice/picam-stream-rpicam.service
while :; do
    # systemctl is slow under emulation: asked again only when the process is gone.
    if [ "$pid" = 0 ] || [ ! -d "/proc/$pid" ]; then
        pid=$(systemctl show -p MainPID --value picam-stream.service)
    fi
    user='' nnp='' seccomp='' capeff='' groups='' fds=''
    if [ -n "$pid" ] && [ "$pid" != 0 ] && [ -r "/proc/$pid/status" ]; then
        user=$($bb stat -c %U "/proc/$pid")
        nnp=$($bb awk '$1 == "NoNewPrivs:" { print $2 }' "/proc/$pid/status")
        seccomp=$($bb awk '$1 == "Seccomp:" { print $2 }' "/proc/$pid/status")
        capeff=$($bb awk '$1 == "CapEff:" { print $2 }' "/proc/$pid/status")
        groups=$($bb awk '$1 == "Groups:" { $1 = ""; print }' "/proc/$pid/status" | $bb tr -s ' ' ',')
        fds=$($bb ls -l "/proc/$pid/fd" 2>/dev/null | $bb grep -o '/dev/[a-z0-9/_-]*' | $bb sort -u | $bb tr '\n' ',')
    else
        pid=0
    fi
    echo "probe: uptime=$($bb cut -d' ' -f1 /proc/uptime) pid=$pid user=$user nnp=$nnp seccomp=$seccomp capeff=$capeff groups=$groups fds=$fds"
    # The rpicam service's cgroup: each process as PID:EXE:COMM (EXE's base
    # name; COMM is "exe" for a program started as /proc/self/exe). One fork
    # per process: the rest are shell builtins, cheap while the servers work.
    if [ "$rpid" = 0 ] || [ ! -d "/proc/$rpid" ]; then
        rpid=$(systemctl show -p MainPID --value picam-stream-rpicam.service)
    fi
    procs='' count=0
    if [ -r "$rcg/cgroup.procs" ]; then
        while read -r p; do
            exe=$($bb readlink "/proc/$p/exe" 2>/dev/null) comm=''
            read -r comm 2>/dev/null < "/proc/$p/comm"
            procs="$procs$p:${exe##*/}:$comm,"
            count=$((count + 1))
        done < "$rcg/cgroup.procs"
    fi
    read -r up _ < /proc/uptime
    echo "rprobe: uptime=$up pid=$rpid procs=$procs"
    # Its log, once the helper has run and stopped again (or after 40 s).
    [ "$count" -ge 3 ] && rwatched=1
    if [ "$rdumped" = 0 ] && { [ "$rwatched" = 1 ] && [ "$count" = 1 ] || [ "$n" = 80 ]; }; then
        echo "rstate: $(systemctl is-active picam-stream-rpicam.service)"
        journalctl -u picam-stream-rpicam.service -o cat --no-pager 2>&1 | $bb sed 's/^/rjournal: /'
        echo "rjournal: end"
        rdumped=1
    fi
    n=$((n + 1))
    if [ "$n" = 1 ]; then
        for d in /sys/class/video4linux/video*; do
            echo "probe: node $($bb stat -c '%A %U %G %n' "/dev/${d##*/}") $($bb cat "$d/name")"
        done
        echo "probe: state $(systemctl is-active picam-stream.service) sysusers $(systemctl is-active systemd-sysusers.service)"
        echo "probe: video group $($bb grep '^video:' /etc/group) picam $($bb grep '^picam:' /etc/passwd)"
    fi
    if [ "$n" = 6 ]; then
        systemd-analyze time 2>&1 | $bb sed 's/^/probe: /'
        echo "probe: failed-units=$(systemctl list-units --failed --plain --no-legend | $bb awk '{ print $1 }' | $bb tr '\n' ',')"
    fi
    $bb sleep 0.5
done
EOF
    chmod 755 "$root/usr/local/sbin/deb-boot-probe"
    cat > "$root/etc/systemd/system/deb-boot-probe.service" <<'EOF'
[Unit]
Description=Boot test probe (reports picam-stream's state to the host)
# Started once the boot is through, so that it does not slow the boot down.
After=multi-user.target picam-stream.service

[Service]
ExecStart=/usr/local/sbin/deb-boot-probe

[Install]
WantedBy=multi-user.target
EOF
    printf '[Match]\nName=eth0\n\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n' \
        > "$root/etc/systemd/network/10-eth0.network"
    printf '%s\n' virtio_pci virtio_net virtio_console vivid > "$root/etc/modules-load.d/deb-boot.conf"
    printf 'picam-deb\n' > "$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 picam-deb\n' > "$root/etc/hosts"
    # A fixed machine id: not a first boot (no presets applied behind the test's back).
    printf '0123456789abcdef0123456789abcdef\n' > "$root/etc/machine-id"
    : > "$root/etc/fstab"
    # The serial console gets no login prompt (nothing would answer it).
    ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyAMA0.service"
    ln -sf /dev/null "$root/etc/systemd/system/getty@tty1.service"
    ln -sf /dev/null "$root/etc/systemd/system/getty-static.service"
}

key=$( (printf '%s\n' "layout-$LAYOUT" "$KVER" "${MODULES[@]}" "${debs[@]}"; declare -f write_guest_files) |
    sha256sum | cut -c1-16)
BASE=$MINE/root-$key.tar
if [ ! -s "$BASE" ]; then
    t=$EPOCHREALTIME
    say "assembling the system from ${#debs[@]} packages"
    root=$WORK/base
    mkdir -p "$root"
    # Merged /usr, as Debian's bootstrap makes it.
    for d in bin sbin lib; do mkdir -p "$root/usr/$d"; ln -s "usr/$d" "$root/$d"; done
    for d in "${debs[@]}"; do
        # tar (inside dpkg-deb) would replace the /bin -> usr/bin links by directories.
        dpkg-deb --fsys-tarfile "$MINE/debs/$d" | tar -x -C "$root" --keep-directory-symlink
    done
    rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,bug,zsh}
    # base-passwd's postinst copies these; base-files's makes the rest of the layout.
    cp "$root/usr/share/base-passwd/passwd.master" "$root/etc/passwd"
    cp "$root/usr/share/base-passwd/group.master" "$root/etc/group"
    awk -F: '{ print $1 ":*:19000:0:99999:7:::" }' "$root/etc/passwd" > "$root/etc/shadow"
    awk -F: '{ print $1 ":*::" }' "$root/etc/group" > "$root/etc/gshadow"
    chmod 640 "$root/etc/shadow" "$root/etc/gshadow"
    ln -sf dash "$root/usr/bin/sh"
    mkdir -p "$root"/{proc,sys,dev,run,tmp,root,var/tmp,var/log,var/lib/dpkg/info,var/lib/dpkg/updates}
    chmod 1777 "$root/tmp" "$root/var/tmp"
    : > "$root/var/lib/dpkg/status"
    : > "$root/var/lib/dpkg/available"
    mknod -m 600 "$root/dev/console" c 5 1
    mknod -m 666 "$root/dev/null" c 1 3
    # Kernel modules: the closure of MODULES from the rig's unpacked kernel.
    copy_module_closure "$AC/kimage" "$KVER" "$root" "${MODULES[@]}" || die "kernel modules missing"
    write_guest_files "$root"
    systemctl --root="$root" enable systemd-networkd.service deb-boot-probe.service > "$WORK/enable.log" 2>&1 ||
        { cat "$WORK/enable.log"; die "systemctl --root enable failed"; }
    tar -C "$root" -cf "$BASE.tmp" .
    mv "$BASE.tmp" "$BASE"
    rm -rf "$root"
    # Older assemblies are of no more use.
    find "$MINE" -maxdepth 1 -name 'root-*.tar' ! -name "root-$key.tar" -delete
    say "system assembled in $(since "$t") s: $(( $(stat -c %s "$BASE") / 1048576 )) MB ($BASE)"
fi

# ---------------------------------------------------------------- the package
ROOT=$WORK/root
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$BASE"
# The maintainer scripts run on the host against the root (DPKG_ROOT): the
# host's systemd-sysusers --root makes the user, deb-systemd-helper enables
# the unit. The system's own dependencies are not in its (empty) dpkg database.
if dpkg --root="$ROOT" --force-architecture --force-depends --force-script-chrootless -i "$DEB" \
    > "$WORK/install.log" 2>&1; then
    ok "dpkg -i $(basename "$DEB") into the system"
else
    cat "$WORK/install.log"; nok "dpkg -i $(basename "$DEB") into the system"
fi
if grep -qvE '^[[:space:]]*(#|$)' "$ROOT/etc/default/picam-stream"; then
    nok "/etc/default/picam-stream as shipped sets an option: $(grep -vE '^[[:space:]]*(#|$)' "$ROOT/etc/default/picam-stream" | tr '\n' ' ')"
else
    ok "/etc/default/picam-stream as shipped sets no option"
fi
if [ -L "$ROOT/etc/systemd/system/multi-user.target.wants/picam-stream.service" ]; then
    ok "the package enabled its unit"; else nok "the package did not enable its unit"; fi
# The rpicam source in the same sandbox: a second service whose unit is a copy
# of the one the package installed plus one Environment= line, with a stand-in
# for rpicam-vid that sends a luma ramp (dark left, bright right, grey chroma).
RUNIT=$ROOT/etc/systemd/system/picam-stream-rpicam.service
sed '/^ExecStart=/i Environment=PICAM_LISTEN=0.0.0.0:8001 PICAM_WEBRTC_PORT=8001 PICAM_SOURCE=rpicam PICAM_RPICAM_VID=/usr/local/bin/rpicam-vid-standin PICAM_NO_MDNS=1' \
    "$ROOT/usr/lib/systemd/system/picam-stream.service" > "$RUNIT"
mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants" "$ROOT/usr/local/bin" "$ROOT/usr/local/share/deb-boot"
ln -s ../picam-stream-rpicam.service "$ROOT/etc/systemd/system/multi-user.target.wants/"
added=$(diff "$ROOT/usr/lib/systemd/system/picam-stream.service" "$RUNIT" | grep -c '^[<>]' || true)
if [ "$added" = 1 ] && grep -q '^Environment=PICAM_LISTEN=0.0.0.0:8001 PICAM_WEBRTC_PORT=8001 PICAM_SOURCE=rpicam ' "$RUNIT"; then
    ok "picam-stream-rpicam.service: the installed unit plus one Environment= line (ports 8001, PICAM_SOURCE=rpicam)"
else
    nok "picam-stream-rpicam.service differs from the installed unit by $added lines"
fi
python3 -c 'import sys
w, h = 640, 480
sys.stdout.buffer.write(bytes(x * 255 // (w - 1) for x in range(w)) * h + bytes([128]) * (w * h // 2))' \
    > "$ROOT/usr/local/share/deb-boot/ramp-640x480.yuv"
cat > "$ROOT/usr/local/bin/rpicam-vid-standin" <<'EOF'
#!/bin/sh
# Stands in for rpicam-vid (tests/vm/deb-boot.sh): takes --width 640 --height 480
# and sends the same I420 picture to standard output ten times a second.
w='' h=''
while [ $# -gt 0 ]; do
    case $1 in
        --width) w=${2-}; shift ;;
        --height) h=${2-}; shift ;;
    esac
    [ $# -gt 0 ] && shift
done
if [ "$w" != 640 ] || [ "$h" != 480 ]; then
    echo "rpicam-vid-standin: asked for ${w}x${h}, has only 640x480" >&2
    exit 1
fi
while busybox cat /usr/local/share/deb-boot/ramp-640x480.yuv; do busybox sleep 0.1; done
EOF
chmod 755 "$ROOT/usr/local/bin/rpicam-vid-standin"
(cd "$ROOT" && find . -mindepth 1 | sort | cpio --quiet -o -H newc -R 0:0) > "$WORK/initrd.cpio"
rm -rf "$ROOT"
say "initramfs: $(( $(stat -c %s "$WORK/initrd.cpio") / 1048576 )) MB, kernel $KVER; ready after $(since "$T0") s"

# ---------------------------------------------------------------- boot
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
rport=$(free_port)
while [ "$rport" = "$port" ]; do rport=$(free_port); done
console=$WORK/console.log probe=$WORK/probe.log
: > "$probe"
# shellcheck disable=SC2054 # commas belong to qemu's option syntax
q=(qemu-system-aarch64 -nodefaults -no-user-config -display none -no-reboot
    -M virt -cpu cortex-a57 -accel tcg -m 1024 -smp 1
    -kernel "$KIMAGE" -initrd "$WORK/initrd.cpio"
    -append "console=ttyAMA0 rdinit=/sbin/init panic=-1 mitigations=off net.ifnames=0 systemd.show_status=1"
    -serial "file:$console"
    -device virtio-serial-pci,id=vser
    -chardev "file,id=probe,path=$probe" -device virtserialport,bus=vser.0,chardev=probe,name=deb-boot
    -netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:8000,hostfwd=tcp:127.0.0.1:$rport-:8001"
    -device virtio-net-pci,netdev=net0,romfile=)
say "launching the VM (guest port 8000 at 127.0.0.1:$port, 8001 at 127.0.0.1:$rport)"
t_launch=$EPOCHREALTIME
nice -n 10 "${q[@]}" > "$WORK/qemu.log" 2>&1 &
QPID=$!

# The viewer: waits for the server, reads frames of /stream.mjpg into files,
# prints when the first arrived, keeps watching until the host says stop (the
# probe has seen the camera open) or 30 s more pass, and leaves.
cat > "$WORK/viewer.py" <<'EOF'
import http.client, os, sys, time
port, started, deadline, count, outdir, stop = (int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]),
                                                int(sys.argv[4]), sys.argv[5], sys.argv[6])
while True:
    if time.time() > started + deadline:
        sys.exit("no answer on /stream.mjpg before the deadline")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/stream.mjpg")
        resp = conn.getresponse()
        if resp.status == 200:
            break
        conn.close()
    except (OSError, http.client.HTTPException):
        pass
    time.sleep(0.5)
print(f"ctype={resp.getheader('Content-Type', '')}", flush=True)
got = 0
watch_until = None
while got < count or (not os.path.exists(stop) and time.time() < watch_until):
    line = resp.readline(1024)
    if not line:
        sys.exit(f"the stream ended after {got} frames")
    if line.rstrip(b"\r\n") != b"--FRAME":
        continue
    headers = {}
    while True:
        line = resp.readline(1024).rstrip(b"\r\n")
        if not line:
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    data = resp.read(int(headers["content-length"]))
    if got < count:
        with open(f"{outdir}/frame{got}.jpg", "wb") as f:
            f.write(data)
    if got == 0:
        print(f"first_frame={time.time() - started:.1f}", flush=True)
    got += 1
    if got == count:
        watch_until = time.time() + 30
        print("enough", flush=True)
conn.close()
print(f"frames={got}", flush=True)
print(f"left={time.time():.3f}", flush=True)
EOF
mkdir -p "$WORK/frames" "$WORK/rframes"
timeout "$((BOOT_TIMEOUT + 60))" python3 "$WORK/viewer.py" "$port" "$t_launch" "$BOOT_TIMEOUT" 5 "$WORK/frames" \
    "$WORK/stop" > "$WORK/viewer.log" 2> "$WORK/viewer.err" &
VPID=$!
timeout "$((BOOT_TIMEOUT + 60))" python3 "$WORK/viewer.py" "$rport" "$t_launch" "$BOOT_TIMEOUT" 5 "$WORK/rframes" \
    "$WORK/rstop" > "$WORK/rviewer.log" 2> "$WORK/rviewer.err" &
RVPID=$!

# rpicam_running LINE: an rprobe line whose cgroup holds, besides the server
# (MainPID), its guardian (the same binary) and the stand-in (sh running it).
rpicam_running() {
    local line=$1 main procs entry guardian='' helper=''
    main=$(sed -n 's/.* pid=\([0-9]*\) .*/\1/p' <<<"$line")
    procs=${line##* procs=}
    [ -n "$main" ] && [ "$main" != 0 ] || return 1
    IFS=, read -ra entries <<<"$procs"
    for entry in "${entries[@]}"; do
        case $entry in
            "$main":*) ;;
            *:picam-stream:exe) guardian=1 ;;
            *:dash:rpicam-vid-stan) helper=1 ;;
        esac
    done
    [ -n "$guardian" ] && [ -n "$helper" ]
}
# While each viewer watches, the probe must see its service hold the camera
# (vivid) or run the helper under its guardian (rpicam); then the viewer leaves.
held='' rheld='' vrc='' rvrc=''
lines_at_leave='' lines_at_rleave=''
while [ -z "$vrc" ] || [ -z "$rvrc" ]; do
    if [ -z "$vrc" ]; then
        if [ -z "$held" ] && grep -qx enough "$WORK/viewer.log"; then
            held=$(grep -a '^probe: uptime=.* pid=[1-9].* fds=.*/dev/video' "$probe" | tail -n1 || true)
            [ -n "$held" ] && : > "$WORK/stop"
        fi
        if ! kill -0 "$VPID" 2>/dev/null; then
            vrc=0; wait "$VPID" || vrc=$?
            lines_at_leave=$(wc -l < "$probe")
        fi
    fi
    if [ -z "$rvrc" ]; then
        if [ -z "$rheld" ] && grep -qx enough "$WORK/rviewer.log"; then
            line=$(grep -a '^rprobe: ' "$probe" | tail -n1 || true)
            rpicam_running "$line" && rheld=$line && : > "$WORK/rstop"
        fi
        if ! kill -0 "$RVPID" 2>/dev/null; then
            rvrc=0; wait "$RVPID" || rvrc=$?
            lines_at_rleave=$(wc -l < "$probe")
        fi
    fi
    sleep 0.2
done
VPID='' RVPID=''
t_left=$(sed -n 's/^left=//p' "$WORK/viewer.log")
t_left=${t_left:-$EPOCHREALTIME}
t_rleft=$(sed -n 's/^left=//p' "$WORK/rviewer.log")
t_rleft=${t_rleft:-$EPOCHREALTIME}
first_frame=$(sed -n 's/^first_frame=//p' "$WORK/viewer.log")
first_rframe=$(sed -n 's/^first_frame=//p' "$WORK/rviewer.log")
if [ "$vrc" = 0 ]; then
    ok "$(sed -n 's/^frames=//p' "$WORK/viewer.log") frames of /stream.mjpg ($(sed -n 's/^ctype=//p' "$WORK/viewer.log")), the first $first_frame s after the VM's launch"
else
    nok "no 5 frames of /stream.mjpg (exit $vrc): $(cat "$WORK/viewer.err")"
fi
sizes=''
for f in "$WORK"/frames/frame*.jpg; do
    [ -e "$f" ] || continue
    s=$({ djpeg -pnm "$f" 2>/dev/null || true; } | head -c 64 | tr '\n' ' ' | awk '{ print $2 "x" $3 }')
    sizes+="$s "
done
n_ok=$(tr ' ' '\n' <<<"$sizes" | grep -cx '640x480' || true)
if [ "$n_ok" = 5 ]; then ok "5 frames decode with djpeg, all 640x480 (the default size)"; else
    nok "frames decoded by djpeg: '${sizes% }' (want 5 x 640x480)"; fi
if [ -n "$held" ]; then
    ok "while streaming the service held: ${held##* fds=}"
else
    nok "the probe never saw the service hold /dev/video*"
fi
held_pid=$(sed -n 's/.* pid=\([0-9]*\) .*/\1/p' <<<"$held")

status=$(curl -fsS -m 10 "http://127.0.0.1:$port/status" 2>&1 || true)
src=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get("source", ""))' "$status" 2>/dev/null || true)
node=$(grep -o '/dev/video[0-9]*' <<<"$src" | head -n1 || true)
node_line=$(grep -a "^probe: node .* ${node:-none} " "$probe" | head -n1 || true)
if [[ "$src" == V4L2* ]] && [ -n "$node" ] && [[ "$node_line" == *" vivid-"*"-vid-cap" ]]; then
    ok "/status: source is \"$src\", vivid's capture node (${node_line##* })"
else
    nok "/status source \"$src\" is not vivid's V4L2 capture node (${node_line:-no probe line for it})"
fi

# The rpicam service: its frames are the stand-in's ramp. Each decoded frame's
# ten column bands (all rows) must grow brighter from left to right, the left
# tenth dark and the right tenth bright.
if [ "$rvrc" = 0 ]; then
    ok "rpicam: $(sed -n 's/^frames=//p' "$WORK/rviewer.log") frames of :8001/stream.mjpg, the first $first_rframe s after the VM's launch"
else
    nok "rpicam: no 5 frames of :8001/stream.mjpg (exit $rvrc): $(cat "$WORK/rviewer.err")"
fi
ramps=''
for f in "$WORK"/rframes/frame*.jpg; do
    [ -e "$f" ] || continue
    djpeg -pnm -outfile "$f.pnm" "$f" 2>/dev/null || true
    ramps+=$(python3 - "$f.pnm" <<'EOF' 2>&1 || true
import sys
data = open(sys.argv[1], "rb").read()
fields = data.split(maxsplit=4)
kind, w, h = fields[0], int(fields[1]), int(fields[2])
px = fields[4]
ch = 3 if kind == b"P6" else 1
bands = [0.0] * 10
for y in range(h):
    row = px[y * w * ch:(y + 1) * w * ch]
    for b in range(10):
        seg = row[b * w // 10 * ch:(b + 1) * w // 10 * ch]
        bands[b] += sum(seg) / len(seg)
bands = [round(v / h) for v in bands]
ramp = bands[0] < 40 and bands[9] > 215 and all(a < b for a, b in zip(bands, bands[1:]))
print(f"{w}x{h}:{'ramp' if ramp else 'not-a-ramp'}:{'/'.join(map(str, bands))}", end=" ")
EOF
)
done
n_ok=$(tr ' ' '\n' <<<"$ramps" | grep -c '^640x480:ramp:' || true)
if [ "$n_ok" = 5 ]; then ok "rpicam: 5 frames decode at 640x480 and show the stand-in's ramp (band means ${ramps%% *})"; else
    nok "rpicam: frames decoded: '${ramps% }' (want 5 x 640x480, a ramp)"; fi
rstatus=$(curl -fsS -m 10 "http://127.0.0.1:$rport/status" 2>&1 || true)
rsrc=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get("source", ""))' "$rstatus" 2>/dev/null || true)
if [[ "$rsrc" == "camera module through rpicam-vid 640x480 "* ]]; then ok "rpicam: /status: source is \"$rsrc\""; else
    nok "rpicam: /status source \"$rsrc\" is not the camera module through rpicam-vid"; fi
if [ -n "$rheld" ]; then
    ok "rpicam: while streaming its cgroup held the server, its guardian and the stand-in: ${rheld##* procs=}"
else
    nok "rpicam: the probe never saw the guardian and the stand-in in the cgroup: $(grep -a '^rprobe: ' "$probe" | tail -n1)"
fi
rheld_pid=$(sed -n 's/.* pid=\([0-9]*\) .*/\1/p' <<<"$rheld")

# Until the linger (3 s) and a few seconds have passed, the servers may keep
# the camera open and the helper running; then /proc/MAINPID/fd must hold no
# camera node, and the rpicam cgroup nothing but its server. The bound is wide
# (linger + 12 s): the single emulated CPU runs both encoders and the probe,
# and on a busy host the probe's lines come seconds late; the time printed is
# the one to read (3.5-4.5 s on a quiet host).
close_deadline=$((LINGER + 12))
closed_after='' rclosed_after=''
vwait=0 rwait=0
[ "$vrc" = 0 ] && [ -n "$held_pid" ] && vwait=1
[ "$rvrc" = 0 ] && [ -n "$rheld_pid" ] && rwait=1
while [ "$vwait" = 1 ] || [ "$rwait" = 1 ]; do
    if [ "$vwait" = 1 ]; then
        el=$(since "$t_left")
        line=$(tail -n +"$((lines_at_leave + 1))" "$probe" | grep -a "^probe: uptime=.* pid=$held_pid .* fds=" | tail -n1 || true)
        if [ -n "$line" ] && [[ "$line" != *"/dev/video"* && "$line" != *"/dev/media"* ]]; then
            closed_after=$el; vwait=0
        fi
        awk -v e="$el" -v d="$close_deadline" 'BEGIN { exit !(e > d) }' && vwait=0
    fi
    if [ "$rwait" = 1 ]; then
        el=$(since "$t_rleft")
        if tail -n +"$((lines_at_rleave + 1))" "$probe" | grep -aq "^rprobe: uptime=.* pid=$rheld_pid procs=$rheld_pid:picam-stream:picam-stream,\$"; then
            rclosed_after=$el; rwait=0
        fi
        awk -v e="$el" -v d="$close_deadline" 'BEGIN { exit !(e > d) }' && rwait=0
    fi
    sleep 0.2
done
# The rpicam service's log comes once its helper has stopped.
n=0
while [ -n "$rclosed_after" ] && ! grep -aq '^rjournal: end' "$probe" && [ "$n" -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
# The one-time reports come by the 4th probe line.
n=0
while ! grep -aq '^probe: failed-units=' "$probe" && [ "$n" -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
kill "$QPID" 2>/dev/null || true
wait "$QPID" 2>/dev/null || true
QPID=''

last=$(grep -a '^probe: uptime=.* pid=[1-9]' "$probe" | tail -n1 || true)
say "probe: ${last#probe: }"
grep -aE '^probe: (node|state|failed|video|Startup|Bootup|graphical|multi-user)' "$probe" | sed 's/^/  /' || true
if grep -aq '^probe: state active ' "$probe"; then ok "systemctl: picam-stream.service is active"; else
    nok "picam-stream.service is not active"; fi
if [ -n "$held_pid" ] && [[ "$last" == *" pid=$held_pid "* ]]; then ok "MainPID $held_pid all along (no restart)"; else
    nok "MainPID ${held_pid:-(never seen with the camera)} is not the last one seen: $last"; fi
if [[ "$last" == *" user=picam "* ]]; then ok "the service runs as user picam"; else nok "the service does not run as picam"; fi
video_gid=$(sed -n 's/^probe: video group video:[^:]*:\([0-9]*\):.*/\1/p' "$probe" | head -n1)
if [[ -n "$video_gid" && "${last##* groups=}" == *",$video_gid,"* ]]; then
    ok "its supplementary groups hold video ($video_gid)"; else nok "video (${video_gid:-?}) not among its groups: $last"; fi
if [[ "$last" == *" nnp=1 "* ]]; then ok "NoNewPrivs is 1"; else nok "NoNewPrivs is not 1"; fi
if [[ "$last" == *" seccomp=2 "* ]]; then ok "a seccomp filter is in force (Seccomp 2)"; else nok "no seccomp filter"; fi
if [[ "$last" == *" capeff=0000000000000000 "* ]]; then ok "no effective capabilities"; else nok "effective capabilities"; fi
if grep -aqE "^probe: node crw-rw---- root video ${node:-none} " "$probe"; then ok "udev made $node root:video 0660"; else
    nok "${node:-the camera node} is not root:video 0660: $(grep -a '^probe: node' "$probe" | head -n1)"; fi
if grep -aq '^probe: failed-units=$' "$probe" && grep -aq '^probe: state .* sysusers active' "$probe"; then
    ok "systemd-sysusers ran and no unit failed"; else
    nok "$(grep -aE '^probe: (failed|state)' "$probe" | tr '\n' ' ')"; fi
if [ -n "$closed_after" ]; then
    ok "after the viewer left, the server held no /dev/video* or /dev/media* within $closed_after s (linger $LINGER s)"
elif [ -z "$held_pid" ]; then
    nok "the closing of the camera was not checked: the service was never seen holding it"
else
    nok "the server still held a camera node $close_deadline s after the viewer left"
fi


rlast=$(grep -a '^rprobe: uptime=.* pid=[1-9]' "$probe" | tail -n1 || true)
say "rprobe: ${rlast#rprobe: }"
sed -n 's/^rjournal: /  /p' "$probe" | grep -v '^  end$' || true
if [ -n "$rclosed_after" ]; then
    ok "rpicam: after the viewer left, the helper and its guardian were gone within $rclosed_after s (linger $LINGER s): the cgroup holds only the server"
elif [ -z "$rheld_pid" ]; then
    nok "rpicam: the helper's stop was not checked: it was never seen running"
else
    nok "rpicam: $close_deadline s after the viewer left the cgroup still held: ${rlast##* procs=}"
fi
rstate=$(sed -n 's/^rstate: //p' "$probe" | head -n1)
if [ "$rstate" = active ] && [ -n "$rheld_pid" ] && [[ "$rlast" == *" pid=$rheld_pid "* ]]; then
    ok "rpicam: picam-stream-rpicam.service is active, MainPID $rheld_pid all along (no restart)"
else
    nok "rpicam: state '${rstate:-not reported}', MainPID ${rheld_pid:-(never seen running the helper)} against the last seen: $rlast"
fi
journal=$(sed -n 's/^rjournal: //p' "$probe" | grep -v '^end$' || true)
warnings=$(grep -E '^[0-9TZ:.-]+ +(WARN|ERROR) ' <<<"$journal" || true)
if ! grep -aq '^rjournal: end' "$probe"; then
    nok "rpicam: the probe reported no log of picam-stream-rpicam"
elif [ -z "$warnings" ] && grep -q ' INFO ' <<<"$journal"; then
    ok "rpicam: its log ($(grep -c ' INFO ' <<<"$journal") lines) has no warning or error"
else
    nok "rpicam: its log has warnings or errors (or no line of the server): ${warnings:-none}"
fi
# A binary with WebRTC says where its media go: the second service's own UDP port.
if grep -q ' WebRTC: ' <<<"$journal"; then
    if grep -q ' WebRTC: .*media on UDP port 8001$' <<<"$journal"; then
        ok "rpicam: WebRTC's media on UDP port 8001, beside the first service's 8000"
    else
        nok "rpicam: WebRTC not on UDP port 8001: $(grep ' WebRTC: ' <<<"$journal")"
    fi
fi
if [ "$FAIL" != 0 ] || [ "${PICAM_DEB_BOOT_SHOW_CONSOLE:-0}" = 1 ]; then
    printf -- '---- guest console ----\n'; cat "$console"
    printf -- '---- probe ----\n'; cat "$probe"
    printf -- '---- qemu ----\n'; cat "$WORK/qemu.log"
fi
say "time from VM launch to first frame: ${first_frame:-none} s; whole test: $(since "$T0") s"
echo "deb-boot: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
