"""Logs: logfmt, one event per line, journald ``<N>`` priorities under systemd, the request id
on a call's lines; a real ``carddaemon -v serve`` (DEBUG) through issue (the demo store issues
its cards at start), read, debit and credit never logs a master key or a diversified key."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import grpc

from daemon.api.v1 import common_pb2
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.api.v1 import simulator_service_pb2 as s
from daemon.api.v1 import simulator_service_pb2_grpc as sg
from daemon.keystore import Keystore
from daemon.logs import REQUEST_ID, LogfmtFormatter, setup
from tests.api.conftest import BIN, store_folder


def test_logfmt_journald_priority_and_request_id() -> None:
    out = io.StringIO()
    setup(logging.DEBUG, out)
    try:
        os.environ.pop("JOURNAL_STREAM", None)
        log = logging.getLogger("carddaemon.test")
        token = REQUEST_ID.set("sale-7")
        log.warning('card "x"\nleft')
        REQUEST_ID.reset(token)
        log.debug("plain")
        lines = out.getvalue().splitlines()
        assert lines == [
            'level=warning logger=carddaemon.test request_id=sale-7 msg="card \\"x\\"\\nleft"',
            "level=debug logger=carddaemon.test msg=plain",
        ]
    finally:
        setup(logging.WARNING)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, None)
    assert LogfmtFormatter(journald=True).format(record).startswith("<3>level=error")


def test_a_full_flow_at_debug_logs_no_secret(tmp_path: Path) -> None:
    config = store_folder(tmp_path / "store")
    env = dict(os.environ, JOURNAL_STREAM="8:12345")
    log = tmp_path / "daemon.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [str(BIN / "carddaemon"), "-v", "serve", "--config", str(config)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        try:
            pos_sock = config.parent / "run" / "pos.sock"
            deadline = time.monotonic() + 30
            while not pos_sock.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            with grpc.insecure_channel(f"unix:{pos_sock}") as channel:
                sim = sg.SimulatorServiceStub(channel)
                cards = sim.ListSimulatedCards(s.ListSimulatedCardsRequest(), timeout=10).cards
                gold = next(c for c in cards if c.card_id == "gold")
                sim.PresentCard(
                    s.PresentCardRequest(reader="readers/front", card_id="gold"), timeout=15
                )
                pos = mg.MemberCardServiceStub(channel)
                pos.ReadCard(m.ReadCardRequest(reader="readers/front"), timeout=15)
                money = common_pb2.Money(currency_code="CNY", amount_fen=500)
                pos.Debit(
                    m.DebitRequest(
                        reader="readers/front", request_id="log-sale-1",
                        expected_uid=gold.uid, amount=money,
                    ),
                    timeout=15,
                )  # fmt: skip
                pos.Credit(
                    m.CreditRequest(
                        reader="readers/front", request_id="log-topup-1",
                        expected_uid=gold.uid, amount=money,
                    ),
                    timeout=15,
                )  # fmt: skip
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    text = log.read_text()
    lines = [line for line in text.splitlines() if line.startswith("<")]
    assert lines, text[:2000]
    assert any(line.startswith("<7>level=debug") for line in lines)
    keys = Keystore.from_file(config.parent / "keys.toml")
    uid = bytes.fromhex(gold.uid)
    secrets = {keys.master(p, keys.current_version(p)).reveal().hex() for p in keys._masters}
    for group in range(4):
        for key_type in ("A", "B"):
            secrets.add(keys.card_key(uid, sector_group=group, key_type=key_type).reveal().hex())
    for secret in secrets:
        for form in (secret, secret.upper(), " ".join(secret[i : i + 2] for i in range(0, 12, 2))):
            assert form.lower() not in text.lower(), "a key is in the logs"
