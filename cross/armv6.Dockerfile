# cross image for the ARMv6 Pi targets (Pi Zero, Zero W/WH, Pi 1: ARM1176JZF-S):
# arm-unknown-linux-gnueabihf and arm-unknown-linux-musleabihf, both linked by
# zig, whose start files and C library are built for ARMv6 (Debian's armhf ones
# are ARMv7/Thumb-2 and die with "Illegal instruction" on a Pi Zero).
# Build context: this cross/ directory (see Cross.toml).
ARG BASE_IMAGE=debian:bookworm-slim

# cargo-zigbuild, built with Debian's Rust (bookworm-security's rustc-web)
FROM ${BASE_IMAGE} AS zigbuild
COPY install-deps.sh /opt/picam-cross/install-deps.sh
RUN bash /opt/picam-cross/install-deps.sh debian-rust \
 && CARGO_HOME=/tmp/cargo bash /opt/picam-cross/install-deps.sh zigbuild /opt/zigbuild \
 && rm -rf /tmp/cargo

FROM ${BASE_IMAGE}
# glibc version the gnu build links against: 2.31 = Raspberry Pi OS bullseye
ARG ARMV6_GLIBC=2.31
COPY install-deps.sh /opt/picam-cross/install-deps.sh
RUN bash /opt/picam-cross/install-deps.sh apt armv6 \
 && bash /opt/picam-cross/install-deps.sh zig /opt/zig \
 && ARMV6_GLIBC=${ARMV6_GLIBC} bash /opt/picam-cross/install-deps.sh zig-linker arm-unknown-linux-gnueabihf /usr/local/bin \
 && bash /opt/picam-cross/install-deps.sh zig-linker arm-unknown-linux-musleabihf /usr/local/bin \
 && bash /opt/picam-cross/install-deps.sh no-libcamera /usr/local/bin \
 && rm -rf /var/lib/apt/lists/* /root/.cache
COPY --from=zigbuild /opt/zigbuild/bin/cargo-zigbuild /usr/local/bin/cargo-zigbuild
# CPU that `cross test` emulates.  arm1176 is the Pi Zero's own core; the
# static musl build runs on it.  The glibc build needs an armhf loader and libc
# at run time and Debian's are ARMv7, so Cross.toml builds its image with
# QEMU_CPU=cortex-a7 (.ci/armv6-scan.py proves its own code is ARMv6).
ARG QEMU_CPU=arm1176
ENV PATH=/opt/zig/bin:$PATH \
    XDG_CACHE_HOME=/tmp/xdg-cache \
    CARGO_TARGET_ARM_UNKNOWN_LINUX_GNUEABIHF_LINKER=/usr/local/bin/zigcc-arm-unknown-linux-gnueabihf \
    CARGO_TARGET_ARM_UNKNOWN_LINUX_GNUEABIHF_RUNNER="qemu-arm-static -cpu ${QEMU_CPU} -L /usr/arm-linux-gnueabihf" \
    CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_LINKER=/usr/local/bin/zigcc-arm-unknown-linux-musleabihf \
    CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUNNER="qemu-arm-static -cpu ${QEMU_CPU} -L /usr/arm-linux-gnueabihf" \
    CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-Clink-self-contained=no" \
    PICAM_TEST_EXEC_WRAPPER="qemu-arm-static -cpu ${QEMU_CPU} -L /usr/arm-linux-gnueabihf"
# No `--features libcamera` here: Debian's armhf libcamera is ARMv7 code and a
# musl binary cannot load a glibc one (the Buildroot package builds libcamera
# for the Pi Zero); pkg-config says so.
ENV PKG_CONFIG_arm_unknown_linux_gnueabihf=/usr/local/bin/pkg-config-no-libcamera \
    PKG_CONFIG_arm_unknown_linux_musleabihf=/usr/local/bin/pkg-config-no-libcamera
