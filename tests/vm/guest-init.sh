#!/bin/busybox sh
# shellcheck shell=dash
# /init of the test VM (see README.md beside this file). Runs as PID 1 from the
# initramfs that rig.sh builds. Its own messages go to the kernel console (a log
# file on the host); the test command's stdout and stderr go to two virtio serial
# ports that the host copies to its own stdout and stderr. Everything the host
# asks for is in the 9p share mounted at /rig:
#   /rig/cmd        shell script with the command to run (always present)
#   /rig/modules    modules to load, one per line, "name [param=value ...]"
#   /rig/share      present when the host shares a directory (mounted at /host)
# and it reports back through the same share:
#   /rig/started    written just before the command starts
#   /rig/exit       the command's exit code
#   /rig/error      why the rig itself failed (module load, mount, ...)
#   /rig/dmesg      the kernel log at the end

/bin/busybox mkdir -p /proc /sys /dev /tmp /run /root /host /rig
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mkdir -p /dev/pts /dev/shm
/bin/busybox mount -t devpts devpts /dev/pts
/bin/busybox mount -t tmpfs tmpfs /dev/shm
/bin/busybox mount -t tmpfs tmpfs /tmp
/bin/busybox mount -t tmpfs tmpfs /run
# Applets only where no real program (kmod, v4l-utils, ...) already sits.
/bin/busybox --install -s 2>/dev/null

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb
umask 022

# udev is not running: this makes the /dev/char/MAJOR:MINOR links it would make
# for video, subdev and media nodes (media-ctl and v4l2-ctl -z look them up
# there). Run it again after loading a driver by hand.
mkdir -p /usr/local/sbin
cat > /usr/local/sbin/rig-devlinks <<'EOF'
#!/bin/sh
mkdir -p /dev/char
for l in /dev/char/*; do
    [ -L "$l" ] && [ ! -e "$l" ] && rm -f "$l"
done
for d in /sys/class/video4linux/* /sys/bus/media/devices/*; do
    [ -r "$d/dev" ] || continue
    read -r mm < "$d/dev"
    ln -sfn "../${d##*/}" "/dev/char/$mm"
done
exit 0
EOF
chmod 755 /usr/local/sbin/rig-devlinks

msg() { echo "rig-init: $*"; }
mounted() { grep -q "^[^ ]* $1 " /proc/mounts; }

# Stop the VM; the host reads the result from /rig.
finish() {
    mounted /rig && dmesg > /rig/dmesg 2>/dev/null
    sync
    mounted /host && umount /host 2>/dev/null
    mounted /rig && umount /rig 2>/dev/null
    poweroff -f
    sleep 5
    echo o > /proc/sysrq-trigger
}

fail() {
    msg "error: $*"
    mounted /rig && echo "$*" > /rig/error
    finish
}

modprobe -a virtio_pci virtio_console virtio_net 9pnet_virtio 9p || fail "could not load the virtio and 9p modules"

ninep_opts=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$ninep_opts" rig /rig || fail "could not mount the rig's control share"
msg "control share mounted after $(cut -d' ' -f1 /proc/uptime) s"

if [ -e /rig/share ]; then
    mount -t 9p -o "$ninep_opts" host /host || fail "could not mount the shared host directory at /host"
fi

# The ports show up shortly after virtio_console binds; wait a bounded time.
out='' err='' n=0
while [ -z "$out" ] || [ -z "$err" ]; do
    for p in /sys/class/virtio-ports/*; do
        [ -e "$p/name" ] || continue
        case "$(cat "$p/name")" in
            rig.out) out=/dev/${p##*/} ;;
            rig.err) err=/dev/${p##*/} ;;
        esac
    done
    [ -n "$out" ] && [ -n "$err" ] && [ -c "$out" ] && [ -c "$err" ] && break
    out='' err=''
    n=$((n + 1))
    [ "$n" -gt 100 ] && fail "the output ports did not appear within 10 s"
    sleep 0.1
done

hostname rig
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
    ip addr add 10.0.2.15/24 dev eth0
    ip link set eth0 up
    ip route add default via 10.0.2.2
fi

if [ -s /rig/modules ]; then
    while read -r line; do
        [ -n "$line" ] || continue
        # shellcheck disable=SC2086 # "name param=value ..." splits on purpose
        if ! modprobe $line 2>"$err"; then
            fail "modprobe $line failed"
        fi
    done < /rig/modules
fi

rig-devlinks
cd /host 2>/dev/null || cd /
: > /rig/started
sh /rig/cmd < /dev/null > "$out" 2> "$err"
rc=$?
cd /
echo "$rc" > /rig/exit
msg "command exited with $rc after $(cut -d' ' -f1 /proc/uptime) s"
finish
