# cross image for the 64-bit Pi targets (Pi 3, 3B+, 4, 400, Zero 2 W on a
# 64-bit OS): aarch64-unknown-linux-gnu (Debian's cross gcc) and
# aarch64-unknown-linux-musl (static, linked by zig).
# Build context: this cross/ directory (see Cross.toml).
ARG BASE_IMAGE=debian:bookworm-slim

# cargo-zigbuild, built with Debian's Rust (bookworm-security's rustc-web)
FROM ${BASE_IMAGE} AS zigbuild
COPY install-deps.sh /opt/picam-cross/install-deps.sh
RUN bash /opt/picam-cross/install-deps.sh debian-rust \
 && CARGO_HOME=/tmp/cargo bash /opt/picam-cross/install-deps.sh zigbuild /opt/zigbuild \
 && rm -rf /tmp/cargo

FROM ${BASE_IMAGE}
COPY install-deps.sh /opt/picam-cross/install-deps.sh
RUN bash /opt/picam-cross/install-deps.sh apt aarch64 \
 && bash /opt/picam-cross/install-deps.sh zig /opt/zig \
 && bash /opt/picam-cross/install-deps.sh zig-linker aarch64-unknown-linux-musl /usr/local/bin \
 && rm -rf /var/lib/apt/lists/* /root/.cache
COPY --from=zigbuild /opt/zigbuild/bin/cargo-zigbuild /usr/local/bin/cargo-zigbuild
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
