"""End-to-end encryption support: keys, cross-signing, device lists, to-device, key backup."""
