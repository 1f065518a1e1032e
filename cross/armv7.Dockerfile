# cross image for the 32-bit ARMv7 Pi targets (Pi 2, and Pi 3/4/400/Zero 2 W
# on a 32-bit OS): armv7-unknown-linux-gnueabihf (Debian's cross gcc) and
# armv7-unknown-linux-musleabihf (static, linked by zig).
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
RUN bash /opt/picam-cross/install-deps.sh apt armv7 \
 && bash /opt/picam-cross/install-deps.sh zig /opt/zig \
 && bash /opt/picam-cross/install-deps.sh zig-linker armv7-unknown-linux-musleabihf /usr/local/bin \
 && rm -rf /var/lib/apt/lists/* /root/.cache
COPY --from=zigbuild /opt/zigbuild/bin/cargo-zigbuild /usr/local/bin/cargo-zigbuild
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
