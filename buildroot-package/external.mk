include $(sort $(wildcard $(BR2_EXTERNAL_PICAM_PATH)/package/*/*.mk))
