"""farm-loadgen: realistic alert traffic at a chosen volume, with an end-to-end account."""
