"""A store folder: a config file and a fresh key file side by side, as on a store PC.

The simulated store's config (``demo/store.toml``) is a file in the repository; to run it, it
is copied unchanged into a new folder next to a newly created key file (keys never live in the
repository), and loaded from there exactly as ``/etc/carddaemon/carddaemon.toml`` is. Its
relative ``state_dir`` then puts the journal and the spool in that folder too, so every run
starts clean and leaves nothing elsewhere.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from daemon.keystore import Keystore

__all__ = ["STORE_CONFIG", "make_store_folder"]

#: the simulated store's config file in the repository
STORE_CONFIG = Path(__file__).with_name("store.toml")


def make_store_folder(folder: Path, config: Path = STORE_CONFIG) -> Path:
    """Copy ``config`` into ``folder`` (created if needed) as ``carddaemon.toml``, create
    ``keys.toml`` (0600) beside it and return the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "carddaemon.toml"
    shutil.copyfile(config, target)
    Keystore.create_file(folder / "keys.toml")
    return target
