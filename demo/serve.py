"""``carddaemon-demo serve``: the daemon on the simulated store, in the foreground (``make run``).

A fresh store folder (``demo/store.toml`` as ``carddaemon.toml``, a new key file, the journal
and spool under ``state/``, the sockets under ``run/``: no root needed), then ``carddaemon
serve --config <folder>/carddaemon.toml`` in this process, with the demo cards laid out on the
readers (``gold`` on ``readers/front``, ``silver`` on ``readers/back``). It prints the socket
paths and commands that work from another terminal at once. Ctrl-C (SIGINT) or SIGTERM stops
it cleanly: running calls finish, the sockets are removed, the journal is closed.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from daemon.api.run import run
from daemon.api.server import Service
from daemon.api.services import build_services
from daemon.errors import CardDaemonError
from daemon.station import Station
from demo.folder import make_store_folder
from demo.simulator import DEMO_CARDS, SimulatorServicer

__all__ = ["main", "prepare_folder"]

#: the [api] lines appended to the store's config: sockets inside the store folder
API_TABLE = '\n[api]\nruntime_dir = "run"\n'


def prepare_folder(folder: Path) -> Path:
    """A fresh store folder in ``folder`` (new or empty) with its sockets in ``run/``; the
    config's path. A folder of an earlier run is refused: its journal remembers cards that
    lived only in that run's memory."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(
            f"{folder}: not an empty folder (the simulated cards live only in one run's memory,"
            " so each run needs a fresh store folder)"
        )
    config = make_store_folder(folder)
    with config.open("a", encoding="utf-8") as out:
        out.write(API_TABLE)
    return config


def _banner(station: Station, services: Sequence[Service], out: TextIO) -> None:
    api = station.config.api
    sockets = {item.role: item.socket for item in api.listeners if item.enabled}
    pos = shlex.quote(str(sockets.get("pos", api.runtime_dir / "pos.sock")))
    tool = Path(sys.executable).parent / "carddaemon"
    cli = shlex.quote(str(tool)) if tool.exists() else "carddaemon"
    print(f"simulated store in {station.config.daemon.state_dir.parent}", file=out)
    print("sockets:", file=out)
    for role, path in sockets.items():
        print(f"  {role:<11} {path}", file=out)
    sim = next((s.servicer for s in services if isinstance(s.servicer, SimulatorServicer)), None)
    if sim is not None:
        print("cards:", file=out)
        for demo in DEMO_CARDS:
            where = sim.catalogue.where(demo.card_id)
            lies = f"on readers/{where}" if where else "in the drawer"
            text = sim.catalogue.descriptions[demo.card_id]
            print(f"  {demo.card_id:<8} {demo.uid}  {lies:<20} {text}", file=out)
    print("try, from another terminal:", file=out)
    for command in (
        "readers",
        "read readers/front",
        "sim cards",
        "sim remove readers/back",
        "sim present readers/back blank",
    ):
        print(f"  {cli} --socket {pos} {command}", file=out)
    print("Ctrl-C stops the daemon.", file=out, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carddaemon-demo serve", description=__doc__)
    parser.add_argument(
        "--folder", type=Path, default=None, help="store folder (new or empty; default: a new "
        "temporary folder, removed at exit)",
    )  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # "backend 'sim' is not one of carddaemon's own": true, and known
        logging.getLogger("daemon.config").setLevel(logging.ERROR)
    temporary = args.folder is None
    folder: Path = args.folder or Path(tempfile.mkdtemp(prefix="carddaemon-store-"))
    try:
        config = prepare_folder(folder)
    except (OSError, ValueError) as exc:
        parser.error(f"--folder {exc}")

    def build(station: Station) -> list[Service]:
        services = build_services(station)
        for item in services:
            if isinstance(item.servicer, SimulatorServicer):
                item.servicer.catalogue.lay_out()
        _banner(station, services, sys.stdout)
        return services

    try:
        return run(config, build)
    except CardDaemonError as exc:
        print(f"carddaemon-demo serve: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    except KeyboardInterrupt:  # Ctrl-C before the listeners took over the signal
        print("stopped", flush=True)
        return 0
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
