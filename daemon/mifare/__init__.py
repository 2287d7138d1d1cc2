"""MIFARE Classic, hardware-free: blocks, trailers, access bits, value blocks, block 0, MAD.

Pure functions and dataclasses only: nothing here talks to a reader, so every rule can be
tested exhaustively. ``daemon.readers`` and this package never import each other; the card
session that combines them lives above both.
"""

from daemon.mifare.access import (
    TRANSPORT,
    AccessCondition,
    AccessConditions,
    BlockKind,
    Key,
    Operation,
    allows,
    allows_block,
    effective_keys,
    permitted_keys,
    sector_warnings,
)
from daemon.mifare.block0 import Block0, Finding, Severity, bcc, check_block0, parse_block0
from daemon.mifare.dictionary import is_well_known, probe_order
from daemon.mifare.dump import CardDump, decode_dump
from daemon.mifare.geometry import (
    BLOCK_SIZE,
    KEY_SIZE,
    CardSize,
    access_group,
    block_count,
    blocks_in_sector,
    data_blocks,
    first_block,
    is_manufacturer_block,
    is_trailer,
    sector_count,
    sector_of_block,
    trailer_block,
)
from daemon.mifare.mad import GPB_MAD_V1, MAD_KEY_A, AdminCode, Mad1, mad_crc8
from daemon.mifare.trailer import (
    DEFAULT_KEY,
    SectorTrailer,
    TrailerReadback,
    build_trailer,
    parse_trailer_read,
    transport_trailer,
)
from daemon.mifare.value import (
    ValueBlock,
    decode_value_block,
    encode_value_block,
    is_value_block,
)

__all__ = [
    "BLOCK_SIZE",
    "DEFAULT_KEY",
    "GPB_MAD_V1",
    "KEY_SIZE",
    "MAD_KEY_A",
    "TRANSPORT",
    "AccessCondition",
    "AccessConditions",
    "AdminCode",
    "Block0",
    "BlockKind",
    "CardDump",
    "CardSize",
    "Finding",
    "Key",
    "Mad1",
    "Operation",
    "SectorTrailer",
    "Severity",
    "TrailerReadback",
    "ValueBlock",
    "access_group",
    "allows",
    "allows_block",
    "bcc",
    "block_count",
    "blocks_in_sector",
    "build_trailer",
    "check_block0",
    "data_blocks",
    "decode_dump",
    "decode_value_block",
    "effective_keys",
    "encode_value_block",
    "first_block",
    "is_manufacturer_block",
    "is_trailer",
    "is_value_block",
    "is_well_known",
    "mad_crc8",
    "parse_block0",
    "parse_trailer_read",
    "permitted_keys",
    "probe_order",
    "sector_count",
    "sector_of_block",
    "sector_warnings",
    "trailer_block",
    "transport_trailer",
]
