"""Card readers: PC/SC Part 3 APDUs, vendor dialects and reader backends."""
