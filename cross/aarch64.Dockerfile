# cross image for the 64-bit Pi targets (Pi 3, 3B+, 4, 400, Zero 2 W on a
# 64-bit OS): aarch64-unknown-linux-gnu (Debian's cross gcc) and
# aarch64-unknown-linux-musl (static, linked by zig).  The gnu target also
# builds the `libcamera` feature against Debian's arm64 libcamera (see below).
# Build context: this cross/ directory (see Cross.toml).
ARG BASE_IMAGE=debian:bookworm-slim

# cargo-zigbuild, built with Debian's Rust (bookworm-security's rustc-web)
FROM ${BASE_IMAGE} AS zigbuild
COPY install-deps.sh /opt/picam-cross/install-deps.sh
RUN bash /opt/picam-cross/install-deps.sh debian-rust \
 && CARGO_HOME=/tmp/cargo bash /opt/picam-cross/install-deps.sh zigbuild /opt/zigbuild \
 && rm -rf /tmp/cargo

# Debian's arm64 libcamera (headers, pkg-config file, .so) in a private root,
# from the suite LIBCAMERA_SUITE of the image's own Debian mirror.  trixie's is
# libcamera 0.4: binaries built with the feature need libcamera.so.0.4 on the Pi.
# A mirror that cannot serve it costs only the feature (the build warns).
FROM ${BASE_IMAGE} AS libcamera
ARG LIBCAMERA_SUITE=trixie
COPY install-deps.sh /opt/picam-cross/install-deps.sh
RUN LIBCAMERA_SUITE=${LIBCAMERA_SUITE} LIBCAMERA_OPTIONAL=1 bash /opt/picam-cross/install-deps.sh libcamera arm64 /opt/libcamera/arm64

FROM ${BASE_IMAGE}
COPY install-deps.sh /opt/picam-cross/install-deps.sh
RUN bash /opt/picam-cross/install-deps.sh apt aarch64 libcamera-aarch64 \
 && bash /opt/picam-cross/install-deps.sh zig /opt/zig \
 && bash /opt/picam-cross/install-deps.sh zig-linker aarch64-unknown-linux-musl /usr/local/bin \
 && bash /opt/picam-cross/install-deps.sh no-libcamera /usr/local/bin \
 && rm -rf /var/lib/apt/lists/* /root/.cache
COPY --from=zigbuild /opt/zigbuild/bin/cargo-zigbuild /usr/local/bin/cargo-zigbuild
COPY --from=libcamera /opt/libcamera/arm64 /opt/libcamera/arm64
# CPU that `cross test` emulates (cortex-a53: Pi 3 / Zero 2 W, cortex-a72: Pi 4 / 400)
ARG QEMU_CPU=cortex-a72
ENV PATH=/opt/zig/bin:$PATH \
    XDG_CACHE_HOME=/tmp/xdg-cache \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -cpu ${QEMU_CPU} -L /usr/aarch64-linux-gnu" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=/usr/local/bin/zigcc-aarch64-unknown-linux-musl \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER="qemu-aarch64-static -cpu ${QEMU_CPU} -L /usr/aarch64-linux-gnu" \
    PICAM_TEST_EXEC_WRAPPER="qemu-aarch64-static -cpu ${QEMU_CPU} -L /usr/aarch64-linux-gnu"
# `--features libcamera` for aarch64-unknown-linux-gnu: pkg-config reads the
# private root, bindgen parses the headers for the target, the C++ shim is
# compiled by the cross g++.  The libcamera.so of a newer Debian needs a newer
# glibc and libstdc++ than this image's cross sysroot: the program is linked
# against the older ones (so it asks no more than it uses) and
# --allow-shlib-undefined leaves libcamera.so's own needs to the Pi's libraries;
# -rpath-link finds libcamera-base.so in the root.  The musl target cannot use
# a glibc libcamera: pkg-config says so.
ENV PKG_CONFIG_SYSROOT_DIR_aarch64_unknown_linux_gnu=/opt/libcamera/arm64 \
    PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/opt/libcamera/arm64/usr/lib/aarch64-linux-gnu/pkgconfig \
    PKG_CONFIG_PATH_aarch64_unknown_linux_gnu= \
    CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++ \
    BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu=--sysroot=/usr/aarch64-linux-gnu \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined -C link-arg=-Wl,-rpath-link,/opt/libcamera/arm64/usr/lib/aarch64-linux-gnu" \
    PKG_CONFIG_aarch64_unknown_linux_musl=/usr/local/bin/pkg-config-no-libcamera
