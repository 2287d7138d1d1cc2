"""``[api]`` is validated at start like every other section: the error names the key."""

from __future__ import annotations

import grp
import os
from pathlib import Path

import pytest

from daemon.api.settings import ROLES
from daemon.config import load_config, parse_config
from daemon.errors import ConfigError

BASE = '[daemon]\nkeystore_credentials = true\nstate_dir = "/var/lib/carddaemon"\n'


def _api(text: str, tmp_path: Path | None = None) -> object:
    if tmp_path is None:
        return parse_config(BASE + text).api
    path = tmp_path / "carddaemon.toml"
    path.write_text(BASE + text, encoding="utf-8")
    return load_config(path, load_keys=False).api


def test_defaults_are_one_socket_per_role_in_run_carddaemon() -> None:
    api = parse_config(BASE).api
    assert [(item.role, str(item.socket), item.mode) for item in api.listeners] == [
        (role, f"/run/carddaemon/{role}.sock", 0o660) for role in ROLES
    ]
    assert api.tcp is None
    assert (api.max_wait_ms, api.max_streams) == (60_000, 16)


def test_sockets_live_in_the_runtime_dir_and_groups_must_exist(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    api = _api(
        f'[api]\nruntime_dir = "run"\n[api.pos]\nsocket = "till.sock"\nmode = 0o660\n'
        f'group = "{group}"\n[api.issuer]\nenabled = false\n',
        tmp_path,
    )
    pos = api.listener("pos")  # type: ignore[attr-defined]
    assert (pos.socket, pos.group) == (tmp_path / "run" / "till.sock", group)
    assert not api.listener("issuer").enabled  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[api]\nmax_wait = 5\n", "api.max_wait", "max_wait_ms"),
        ("[api]\nmax_streams = 0\n", "api.max_streams", "1..1024"),
        ("[api.pos]\nmode = 0o666\n", "api.pos.mode", "every user"),
        ("[api.pos]\nmode = 0o060\n", "api.pos.mode", "unable to use its own socket"),
        ('[api.pos]\nmode = "rw-rw----"\n', "api.pos.mode", "octal"),
        ('[api.pos]\ngroup = "no-such-group-xyz"\n', "api.pos.group", "no such group"),
        ('[api.cashier]\nsocket = "x"\n', "api.cashier", "pos, technician, issuer"),
        ('[api.tcp]\naddress = "50443"\n', "api.tcp.address", "HOST:PORT"),
        (
            '[api.tcp]\naddress = "0.0.0.0:50443"\ncert_file = "/nonexistent.crt"\n',
            "api.tcp.cert_file",
            "not a readable file",
        ),
    ],
)
def test_a_bad_api_setting_names_its_key(text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + text)
    assert err.value.key == key
    assert words in str(err.value)


def test_tls_roles_must_be_known_roles(tmp_path: Path) -> None:
    for name in ("s.crt", "s.key", "ca.crt"):
        (tmp_path / name).write_text("-----BEGIN-----\n", encoding="utf-8")
    text = (
        '[api.tcp]\naddress = "127.0.0.1:50443"\ncert_file = "s.crt"\nkey_file = "s.key"\n'
        'client_ca_file = "ca.crt"\nroles = { "lane-1" = "pos", "hq" = "admin" }\n'
    )
    with pytest.raises(ConfigError) as err:
        _api(text, tmp_path)
    assert err.value.key == "api.tcp.roles.hq"
    api = _api(text.replace('"admin"', '"issuer"'), tmp_path)
    assert api.tcp.roles == {"lane-1": "pos", "hq": "issuer"}  # type: ignore[attr-defined]
