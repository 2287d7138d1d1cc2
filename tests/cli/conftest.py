"""The CLI as its users run it: ``carddaemon`` subprocesses against one ``carddaemon serve`` of
the simulated store per test module (``store``), reading their stdout, stderr and exit code."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import (
    BIN,
    Served,
    api,
    grpc_runtime,
    serve_config,
    served,
    store_folder,
)

__all__ = ["BIN", "Run", "Store", "api", "grpc_runtime", "served", "start_served"]

CARDDAEMON = str(BIN / "carddaemon")


@dataclass(frozen=True)
class Run:
    """One finished ``carddaemon`` command."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@dataclass
class Store:
    """A served simulated store; ``run(...)`` runs ``carddaemon ARGS`` against its sockets
    (``CARDDAEMON_RUN_DIR``: each command picks its role's socket itself)."""

    served: Served

    @property
    def run_dir(self) -> Path:
        return self.served.config.parent / "run"

    def env(self, **extra: str) -> dict[str, str]:
        # no COLUMNS: a table piped to a file is 200 wide, one line per row
        env = {k: v for k, v in os.environ.items() if k not in ("CARDDAEMON_SOCKET", "COLUMNS")}
        env.update(CARDDAEMON_RUN_DIR=str(self.run_dir), **extra)
        return env

    def run(self, *args: str, timeout: float = 60, stdin: str | None = None) -> Run:
        done = subprocess.run(
            [CARDDAEMON, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.env(),
            input=stdin,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return Run(done.returncode, done.stdout, done.stderr)


@contextlib.contextmanager
def start_served(folder: Path, extra: str = "") -> Iterator[Served]:
    """``carddaemon serve`` on a simulated store in ``folder`` until the generator closes."""
    with serve_config(store_folder(folder, extra)) as handle:
        yield handle


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One served simulated store shared by the tests of a module (each test leaves the
    cards as it found them: in the drawer)."""
    with start_served(tmp_path_factory.mktemp("store") / "store") as served_store:
        yield Store(served_store)
