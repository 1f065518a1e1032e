# cross image for the 32-bit ARMv7 Pi targets (Pi 2, and Pi 3/4/400/Zero 2 W
# on a 32-bit OS): armv7-unknown-linux-gnueabihf (Debian's cross gcc) and
# armv7-unknown-linux-musleabihf (static, linked by zig).  The gnu target also
# builds the `libcamera` feature against Debian's armhf libcamera (see below).
# Build context: this cross/ directory (see Cross.toml).
ARG BASE_IMAGE=debian:bookworm-slim

# cargo-zigbuild, built with Debian's Rust (bookworm-security's rustc-web)
FROM ${BASE_IMAGE} AS zigbuild
COPY install-deps.sh /opt/picam-cross/install-deps.sh
RUN bash /opt/picam-cross/install-deps.sh debian-rust \
 && CARGO_HOME=/tmp/cargo bash /opt/picam-cross/install-deps.sh zigbuild /opt/zigbuild \
 && rm -rf /tmp/cargo

# Debian's armhf libcamera (headers, pkg-config file, .so) in a private root,
# from the suite LIBCAMERA_SUITE of the image's own Debian mirror.  trixie's is
# libcamera 0.4: binaries built with the feature need libcamera.so.0.4 on the Pi.
# A mirror that cannot serve it costs only the feature (the build warns).
FROM ${BASE_IMAGE} AS libcamera
ARG LIBCAMERA_SUITE=trixie
COPY install-deps.sh /opt/picam-cross/install-deps.sh
RUN LIBCAMERA_SUITE=${LIBCAMERA_SUITE} LIBCAMERA_OPTIONAL=1 bash /opt/picam-cross/install-deps.sh libcamera armhf /opt/libcamera/armhf

FROM ${BASE_IMAGE}
COPY install-deps.sh /opt/picam-cross/install-deps.sh
RUN bash /opt/picam-cross/install-deps.sh apt armv7 libcamera-armv7 \
 && bash /opt/picam-cross/install-deps.sh zig /opt/zig \
 && bash /opt/picam-cross/install-deps.sh zig-linker armv7-unknown-linux-musleabihf /usr/local/bin \
 && bash /opt/picam-cross/install-deps.sh no-libcamera /usr/local/bin \
 && rm -rf /var/lib/apt/lists/* /root/.cache
COPY --from=zigbuild /opt/zigbuild/bin/cargo-zigbuild /usr/local/bin/cargo-zigbuild
COPY --from=libcamera /opt/libcamera/armhf /opt/libcamera/armhf
# CPU that `cross test` emulates (cortex-a7: Pi 2 v1.1; later Pis run ARMv7 code too)
ARG QEMU_CPU=cortex-a7
ENV PATH=/opt/zig/bin:$PATH \
    XDG_CACHE_HOME=/tmp/xdg-cache \
    CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc \
    CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc \
    AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar \
    CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="qemu-arm-static -cpu ${QEMU_CPU} -L /usr/arm-linux-gnueabihf" \
    CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_LINKER=/usr/local/bin/zigcc-armv7-unknown-linux-musleabihf \
    CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUNNER="qemu-arm-static -cpu ${QEMU_CPU} -L /usr/arm-linux-gnueabihf" \
    CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-Clink-self-contained=no" \
    PICAM_TEST_EXEC_WRAPPER="qemu-arm-static -cpu ${QEMU_CPU} -L /usr/arm-linux-gnueabihf"
# `--features libcamera` for armv7-unknown-linux-gnueabihf, as in
# aarch64.Dockerfile: pkg-config reads the private root, bindgen parses the
# headers for the target, the cross g++ compiles the C++ shim, and the program
# is linked against this image's older glibc with --allow-shlib-undefined (the
# newer libcamera.so's own needs are the Pi's libraries' business).  The musl
# target cannot use a glibc libcamera: pkg-config says so.
ENV PKG_CONFIG_SYSROOT_DIR_armv7_unknown_linux_gnueabihf=/opt/libcamera/armhf \
    PKG_CONFIG_LIBDIR_armv7_unknown_linux_gnueabihf=/opt/libcamera/armhf/usr/lib/arm-linux-gnueabihf/pkgconfig \
    PKG_CONFIG_PATH_armv7_unknown_linux_gnueabihf= \
    CXX_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-g++ \
    BINDGEN_EXTRA_CLANG_ARGS_armv7_unknown_linux_gnueabihf=--sysroot=/usr/arm-linux-gnueabihf \
    CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined -C link-arg=-Wl,-rpath-link,/opt/libcamera/armhf/usr/lib/arm-linux-gnueabihf" \
    PKG_CONFIG_armv7_unknown_linux_musleabihf=/usr/local/bin/pkg-config-no-libcamera
