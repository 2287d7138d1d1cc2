"""How a command prints: rich tables for people, one JSON document with ``--json``, JSON lines
for live commands (``watch``, ``scans``), and nothing on a closed pipe.

Why rich: tables that size their columns to the values and never cut one (a cut would need a
mark; rich wraps instead), progress bars with rate and ETA, and no colour when stdout is not a
terminal, so ``| grep`` and golden tests see plain text. Off a terminal the width is
``$COLUMNS`` or 200, so a piped table keeps one line per row.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from rich import box
from rich.console import Console
from rich.table import Table

__all__ = ["Output", "enum_name", "proto_dict", "quiet_closed_pipe", "when", "yuan"]

_PIPE_WIDTH: Final = 200


def proto_dict(message: Message) -> dict[str, Any]:
    """A protobuf message as JSON-ready data: the proto's own field names, zero values kept
    (a balance of 0 is shown as 0, not left out), bytes as upper-case hex as technicians read
    them (an ATR, block 0), not base64."""
    data: dict[str, Any] = json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    _hex_bytes(message, data)
    return data


def _hex_bytes(message: Message, data: dict[str, Any]) -> None:
    for field in message.DESCRIPTOR.fields:
        if field.name not in data:
            continue
        value = getattr(message, field.name)
        repeated = field.is_repeated
        if field.type == FieldDescriptor.TYPE_BYTES:
            data[field.name] = [v.hex().upper() for v in value] if repeated else value.hex().upper()
        elif field.type == FieldDescriptor.TYPE_MESSAGE and not _is_map(field):
            if repeated:
                for item, shown in zip(value, data[field.name], strict=True):
                    if isinstance(shown, dict):
                        _hex_bytes(item, shown)
            elif isinstance(data[field.name], dict):
                _hex_bytes(value, data[field.name])


def _is_map(field: Any) -> bool:
    kind = field.message_type
    return kind is not None and bool(kind.GetOptions().map_entry)


def when(stamp: Any) -> str:
    """A protobuf Timestamp as local time ``2026-12-03 14:05:09``; ``-`` when unset."""
    if not stamp.seconds and not stamp.nanos:
        return "-"
    moment = dt.datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def yuan(fen: int) -> str:
    """An amount in fen as store staff read it: ``¥1,234.50``."""
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def enum_name(enum: Any, value: int, prefix: str) -> str:
    """``PrintJob.STATE_UNCERTAIN`` -> ``uncertain``."""
    try:
        name: str = enum.Name(value)
    except ValueError:
        return str(value)
    return name.removeprefix(prefix).lower().replace("_", " ")


class _Console(Console):
    """rich's Console, but a closed pipe is ``BrokenPipeError`` for ``main`` to end quietly
    with 0 (rich's own handler exits 1, as if the command had found a problem)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def _console(stream: Any) -> Console:
    width: int | None = None
    if not stream.isatty():
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() and int(columns) > 0 else _PIPE_WIDTH
    return _Console(file=stream, width=width, highlight=False, markup=False, emoji=False)


class Output:
    """One command's stdout: ``json`` decides between JSON and text."""

    def __init__(self, json_mode: bool) -> None:
        self.json = json_mode
        self.console = _console(sys.stdout)
        self.errors = _console(sys.stderr)

    def document(self, data: Any) -> None:
        """The one JSON document of a non-live command."""
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n")
        sys.stdout.flush()

    def json_line(self, data: Any) -> None:
        """One JSON line of a live command, flushed at once (``| jq`` sees it now)."""
        sys.stdout.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def say(self, text: str = "") -> None:
        """A line for people (never wrapped)."""
        self.console.print(text, soft_wrap=True)

    def warn(self, text: str) -> None:
        """A line on stderr (the result on stdout stays clean for a pipe)."""
        self.errors.print(text, soft_wrap=True)

    def follow(
        self, events: Iterable[Message], text: Callable[[Message], str], count: int = 0
    ) -> int:
        """A live command's stream: each event as a JSON line or as ``text(event)``, until
        ``count`` of them (0: no end) or Ctrl-C; exit code 0."""
        seen = 0
        try:
            for event in events:
                if self.json:
                    self.json_line(proto_dict(event))
                else:
                    self.say(text(event))
                seen += 1
                if count and seen >= count:
                    break
        except KeyboardInterrupt:
            pass
        return 0

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[str]],
        *,
        title: str | None = None,
        empty: str = "(none)",
    ) -> None:
        """A table of ``rows``; ``empty`` when there are none."""
        shown = [list(row) for row in rows]
        if title:
            self.say(title)
        if not shown:
            self.say(empty)
            return
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, highlight=False)
        for i, column in enumerate(columns):
            cells = [row[i] for row in shown if i < len(row)]
            # a UID, a reader id or an amount is copied whole: never split over two lines
            # (longer text such as an ATR or a PC/SC name folds in a narrow terminal instead)
            whole = all(len(cell) <= 24 and " " not in cell for cell in cells)
            table.add_column(column, overflow="fold", no_wrap=whole)
        for row in shown:
            table.add_row(*row)
        if self.console.is_terminal:
            self.console.print(table)
            return
        with self.console.capture() as captured:  # no padding after the last column in a pipe
            self.console.print(table)
        text = "\n".join(line.rstrip() for line in captured.get().splitlines())
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def quiet_closed_pipe() -> None:
    """The reader of stdout went away (``| head``): point stdout at /dev/null so Python's exit
    flush cannot raise again, and let the command end quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (a test's capture)
        pass
