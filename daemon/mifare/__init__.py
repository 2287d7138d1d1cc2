"""MIFARE Classic, hardware-free: blocks, trailers, access bits, value blocks, block 0, MAD."""
