"""Logs: logfmt, one event per line, journald ``<N>`` priorities under systemd, the request id
on a call's lines (also those its card job logs on the reader's worker thread); a real
``carddaemon -v serve`` (DEBUG) through issue (the demo store issues its cards at start), read,
debit, credit, a payment code scan and a member QR token never logs a master key, a diversified
key, a record MAC of the card, the payment code or the member token (nor its MAC)."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import grpc

from daemon.api.v1 import common_pb2
from daemon.api.v1 import diagnostics_service_pb2 as d
from daemon.api.v1 import diagnostics_service_pb2_grpc as dg
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.api.v1 import simulator_service_pb2 as s
from daemon.api.v1 import simulator_service_pb2_grpc as sg
from daemon.keystore import Keystore
from daemon.logs import REQUEST_ID, LogfmtFormatter, setup
from daemon.membercard.layout import SLOT_MAC_BLOCKS
from daemon.readers.workers import JobContext, ReaderWorker
from sim.scanners.codes import make_member_token
from tests.api.conftest import BIN, store_folder

WECHAT = "134567890123456789"  # a WeChat Pay payment code


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


def test_the_request_id_follows_a_job_onto_the_reader_worker_thread() -> None:
    out = io.StringIO()
    setup(logging.DEBUG, out)
    log = logging.getLogger("carddaemon.test.job")
    threads: list[str] = []

    def job(_ctx: JobContext) -> str:
        threads.append(threading.current_thread().name)
        log.info("on the card")
        return REQUEST_ID.get()

    def connect() -> object:
        raise AssertionError("the job takes no connection")

    try:
        with ReaderWorker("front", connect) as worker:  # type: ignore[arg-type]
            token = REQUEST_ID.set("sale-8")
            try:
                assert worker.submit_within(job, 5).result(5) == "sale-8"
            finally:
                REQUEST_ID.reset(token)
            assert worker.submit_within(job, 5).result(5) == ""  # a copy, not a leftover
    finally:
        setup(logging.WARNING)
    assert threads == ["reader-worker[front]"] * 2
    lines = [line for line in out.getvalue().splitlines() if "carddaemon.test.job" in line]
    assert lines == [
        'level=info logger=carddaemon.test.job request_id=sale-8 msg="on the card"',
        'level=info logger=carddaemon.test.job msg="on the card"',
    ]


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
                tech_sock = config.parent / "run" / "technician.sock"
                with grpc.insecure_channel(f"unix:{tech_sock}") as tech_channel:
                    dump = dg.DiagnosticsServiceStub(tech_channel).DumpCard(
                        d.DumpCardRequest(reader="readers/front", sectors=[1, 2]), timeout=20
                    )
                macs = [
                    block.data[5:16].hex()
                    for sector in dump.sectors
                    for block in sector.blocks
                    if block.block in SLOT_MAC_BLOCKS
                ]
                assert len(macs) == len(SLOT_MAC_BLOCKS)
                assert all(int(x, 16) for x in macs)
                token = make_member_token(b"log-test-member-key", "10086", int(time.time()) + 300)
                for data, aim in ((WECHAT, "]Q1"), (token, "]Q1")):
                    sim.InjectScan(
                        s.InjectScanRequest(scanner="scanners/front", data=data.encode(), aim=aim),
                        timeout=10,
                    )
                time.sleep(0.5)  # the scanner thread classifies and publishes them
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
    for mac in macs:  # the record MACs of the card, whole or their first 8 bytes
        for form in (mac, mac[:16], " ".join(mac[i : i + 2] for i in range(0, 16, 2))):
            assert form.lower() not in text.lower(), "a record MAC is in the logs"
    assert WECHAT not in text, "a payment code is in the logs"
    assert token not in text, "a member token is in the logs"
    assert token.rsplit(".", 1)[1] not in text, "a member token's MAC is in the logs"
    # the Debit's lines carry its request id, those of its card job on the worker thread too
    debit = [line for line in lines if "request_id=log-sale-1" in line]
    assert any("logger=daemon.readers.workers" in line for line in debit), debit
    jobs = [line for line in lines if "logger=daemon.readers.workers" in line and "job " in line]
    ids = [line.split("request_id=", 1)[1].split()[0] for line in jobs if "request_id=" in line]
    assert ids == ["log-sale-1", "log-topup-1"], jobs  # reads and dumps have no request id


def test_credential_shapes_are_scrubbed_from_any_message() -> None:
    token = make_member_token(b"log-test-member-key", "10086", 1796301165)
    record = logging.LogRecord(
        "third.party", logging.INFO, __file__, 1, "got %s then %s, member 8860123403721",
        (token, WECHAT), None,
    )  # fmt: skip
    line = LogfmtFormatter().format(record)
    assert WECHAT not in line
    assert "1345**********6789" in line
    assert token.rsplit(".", 1)[1] not in line
    assert "CDM1.10086.1796301165.****" in line
    assert "8860123403721" in line  # a member id (13 digits) is not a credential
