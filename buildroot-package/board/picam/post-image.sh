#!/bin/sh
# Runs before Buildroot's board/raspberrypi/post-image.sh (which makes
# sdcard.img): lets the firmware detect the camera module and load the
# overlay of its sensor (IMX219, OV5647, IMX708, ...).
set -e

CONFIG_TXT="${BINARIES_DIR}/rpi-firmware/config.txt"

if ! grep -q '^camera_auto_detect=' "${CONFIG_TXT}"; then
	cat << __EOF__ >> "${CONFIG_TXT}"

# Camera module: detected by the firmware at boot (picam-stream)
camera_auto_detect=1
__EOF__
fi
