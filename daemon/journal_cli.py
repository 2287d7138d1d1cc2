"""Moved to :mod:`daemon.cli.journal` (``carddaemon journal backup|verify``); kept so
``from daemon.journal_cli import verify`` goes on working."""

from daemon.cli.journal import JournalDamaged, add_parser, backup, verify

__all__ = ["JournalDamaged", "add_parser", "backup", "verify"]
