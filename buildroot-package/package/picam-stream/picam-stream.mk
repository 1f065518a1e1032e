################################################################################
#
# picam-stream
#
################################################################################

PICAM_STREAM_VERSION = 0.1.0
PICAM_STREAM_SITE = $(call github,picam-stream,picam-stream,v$(PICAM_STREAM_VERSION))
PICAM_STREAM_LICENSE = MIT or Apache-2.0
PICAM_STREAM_LICENSE_FILES = LICENSE-MIT LICENSE-APACHE

# Building the checkout that holds this tree instead (docs/buildroot.md):
#   make PICAM_STREAM_OVERRIDE_SRCDIR=/path/to/picam-stream
# Nothing is downloaded then, so nothing is vendored: cargo builds
# offline from the crates that "cargo fetch --locked" put in
# $(DL_DIR)/br-cargo-home beforehand.
PICAM_STREAM_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude target --exclude buildroot-package --exclude tests/browser

# user: picam, in the video group for /dev/video*, /dev/media* and
# /dev/dma_heap/*
PICAM_STREAM_USERS = picam -1 picam -1 * - - video picam-stream

ifeq ($(BR2_PACKAGE_PICAM_STREAM_LIBCAMERA),y)
# bindgen loads libclang on the host and parses libcamera's headers in
# the staging directory.
PICAM_STREAM_DEPENDENCIES += host-clang host-pkgconf libcamera
PICAM_STREAM_CARGO_ENV += \
	LIBCLANG_PATH=$(HOST_DIR)/lib \
	BINDGEN_EXTRA_CLANG_ARGS="--sysroot=$(STAGING_DIR)" \
	PKG_CONFIG_ALLOW_CROSS=1
# cargo install builds again, so both steps need the feature.
PICAM_STREAM_CARGO_BUILD_OPTS += --features libcamera
PICAM_STREAM_CARGO_INSTALL_OPTS += --features libcamera
endif

ifeq ($(BR2_PACKAGE_PICAM_STREAM_BOOT_CONFIG),y)
define PICAM_STREAM_INSTALL_BOOT_CONFIG
	$(INSTALL) -D -m 0755 $(PICAM_STREAM_PKGDIR)/picam-config \
		$(TARGET_DIR)/usr/sbin/picam-config
endef
PICAM_STREAM_POST_INSTALL_TARGET_HOOKS += PICAM_STREAM_INSTALL_BOOT_CONFIG

define PICAM_STREAM_INSTALL_BOOT_CONFIG_SYSV
	$(INSTALL) -D -m 0755 $(PICAM_STREAM_PKGDIR)/S30picam-config \
		$(TARGET_DIR)/etc/init.d/S30picam-config
endef

define PICAM_STREAM_INSTALL_BOOT_CONFIG_SYSTEMD
	$(INSTALL) -D -m 0644 $(PICAM_STREAM_PKGDIR)/picam-config.service \
		$(TARGET_DIR)/usr/lib/systemd/system/picam-config.service
endef
endif

define PICAM_STREAM_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(PICAM_STREAM_PKGDIR)/S99picam-stream \
		$(TARGET_DIR)/etc/init.d/S99picam-stream
	$(PICAM_STREAM_INSTALL_BOOT_CONFIG_SYSV)
endef

define PICAM_STREAM_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(PICAM_STREAM_PKGDIR)/picam-stream.service \
		$(TARGET_DIR)/usr/lib/systemd/system/picam-stream.service
	$(PICAM_STREAM_INSTALL_BOOT_CONFIG_SYSTEMD)
endef

$(eval $(cargo-package))
