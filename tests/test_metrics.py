"""Metrics: ``[api] metrics_address`` (loopback only), ``/metrics`` served with the listeners and
closed with them, the expected series after a full flow (read, debit, an unconfirmed write
settled by the next read, a payment-code scan) and none of the flow's UIDs, member ids,
request ids or scanned codes anywhere in the scrape."""

from __future__ import annotations

import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest

from daemon._config_table import Table
from daemon.api.settings import parse_api
from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.errors import ConfigError, FraudDetected
from daemon.events import subscriber_kind
from daemon.membercard.layout import SLOT_MAC_BLOCKS
from daemon.membercard.requests import ReadCard
from sim.backend import SimBackend
from tests.api.conftest import BIN, run_api, store_folder
from tests.api.test_cards import SPEC, UID, cny, member_on_front, reason
from tests.api.test_scanners import EAN, WECHAT, front, next_scan, snapshot, watch


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        text: str = answer.read().decode()
        return text


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9464", "127.0.0.1:9464"),
        ("[::1]:9464", "[::1]:9464"),
        ("localhost:9464", "127.0.0.1:9464"),
        ("127.0.0.2:0", "127.0.0.2:0"),
    ],
)
def test_a_loopback_metrics_address_is_accepted(address: str, expected: str) -> None:
    api = parse_api(Table("api", {"metrics_address": address}), None)
    assert api.metrics_address == expected


@pytest.mark.parametrize(
    "address", ["0.0.0.0:9464", "192.168.1.20:9464", "[::]:9464", "store-pc:9464", "9464", "x:y"]
)
def test_a_non_loopback_metrics_address_is_refused_naming_the_key(address: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_api(Table("api", {"metrics_address": address}), None)
    assert "api.metrics_address" in str(err.value)


def test_no_metrics_address_no_endpoint() -> None:
    assert parse_api(Table("api", {}), None).metrics_address is None


def test_subscriber_kinds_are_low_cardinality() -> None:
    assert subscriber_kind("WaitForCard readers/front") == "WaitForCard"
    assert subscriber_kind("pos") == "pos"
    assert subscriber_kind("#17") == "other"
    assert subscriber_kind("") == "other"


def test_metrics_after_a_full_flow_name_no_card_member_request_or_code(tmp_path: Path) -> None:
    port = _free_port()
    with run_api(tmp_path, f'metrics_address = "127.0.0.1:{port}"\n') as api:
        member_on_front(api)
        pos = mg.MemberCardServiceStub(api.channel("pos"))
        read = pos.ReadCard(m.ReadCardRequest(reader="front", expected_uid=UID), timeout=10)
        member_id = read.card.member_id
        assert member_id
        sale = m.DebitRequest(
            expected_uid=UID, reader="front", request_id="mx-sale-1", amount=cny(100)
        )
        pos.Debit(sale, timeout=10)
        backend = api.station.backend
        assert isinstance(backend, SimBackend)
        reader = backend.reader(api.station.reader("front").name)
        card = reader.card
        request_ids = ["mx-sale-1"]
        for n in range(4, 16):  # the card pulled after the n-th APDU: until it hit the write
            request_ids.append(f"mx-sale-{n}")
            pool = api.station.pool
            assert pool is not None
            pool.worker(reader.name).wait_idle(5)  # the last job's clean-up
            reader.faults.arm()
            reader.faults.remove_after(n)
            with pytest.raises(grpc.RpcError) as err:
                pos.Debit(
                    m.DebitRequest(
                        expected_uid=UID, reader="front", request_id=request_ids[-1],
                        amount=cny(200),
                    ),
                    timeout=10,
                )  # fmt: skip
            reader.faults.clear()
            with api.station.hub.subscribe(sources="readers/front", kinds="card_present") as seen:
                reader.insert(card)  # type: ignore[arg-type]
                seen.wait_for(lambda e: not e.snapshot, 10)
            if reason(err.value) == "WRITE_UNCONFIRMED":
                break
        assert reason(err.value) == "WRITE_UNCONFIRMED"
        settled = pos.ReadCard(m.ReadCardRequest(reader="front"), timeout=10)
        assert request_ids[-1] in settled.resolved_request_ids
        stream = watch(api, "pos")
        snapshot(stream)
        front(api).inject(WECHAT.encode(), aim="]Q1")
        assert next_scan(stream).scan.text == WECHAT
        front(api).inject(EAN.encode())
        assert next_scan(stream).scan.text == EAN
        assert card is not None
        reader.remove()  # taken away, forged (both record MACs broken) and presented again
        for block in SLOT_MAC_BLOCKS:
            data = bytearray(card.block(block))
            data[10] ^= 0xFF
            card.program(block, bytes(data))
        with api.station.hub.subscribe(sources="readers/front", kinds="card_present") as seen:
            reader.insert(card)  # type: ignore[arg-type]
            seen.wait_for(lambda e: not e.snapshot, 10)
        with pytest.raises(FraudDetected) as forged:  # in process: the station's job hook
            api.station.card("front", ReadCard())
        fraud = forged.value.reason
        del forged
        text = _scrape(port)
        stream.cancel()  # type: ignore[attr-defined]
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
        assert missing.value.code == 404
        missing.value.close()

    debit = 'grpc_method="carddaemon.v1.MemberCardService/Debit"'
    expected = [
        f'grpc_server_handled_total{{grpc_code="OK",{debit}}}',
        f'grpc_server_handled_total{{grpc_code="FAILED_PRECONDITION",{debit}}}',
        f"grpc_server_handling_seconds_bucket{{{debit},le=",
        f"grpc_server_started_total{{{debit}}}",
        'carddaemon_apdus_total{reader="front"}',
        'carddaemon_apdu_errors_total{reader="front"}',
        'carddaemon_writes_unconfirmed_total{reader="front"}',
        "carddaemon_writes_resolved_total{outcome=",
        f'carddaemon_fraud_refusals_total{{reason="{fraud}"}} 1.0',
        'carddaemon_journal_write_seconds_count{op="record_intent"}',
        'carddaemon_journal_write_seconds_count{op="finish"}',
        "carddaemon_value_journal_pending 0.0",
        'carddaemon_spool_jobs{printer="receipt",state="QUEUED"}',
        'carddaemon_printer_status{printer="receipt",state="ready"}',
        "carddaemon_scans_total 2.0",
        'carddaemon_event_subscribers{kind="pos"} 1.0',
        "# TYPE carddaemon_events_dropped_total counter",
        'carddaemon_reader_up{reader="front"} 1.0',
        "carddaemon_build_info{version=",
    ]
    missing_series = [series for series in expected if series not in text]
    assert not missing_series, text
    forbidden = {
        UID,
        member_id, SPEC.member_id, *request_ids, "issue-1", WECHAT, EAN,
    }  # fmt: skip
    for secret in forbidden:
        assert secret.lower() not in text.lower(), f"{secret!r} is in /metrics"
    with pytest.raises(urllib.error.URLError, match="refused"):  # closed with the listeners
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_carddaemon_serve_serves_metrics_until_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    config = store_folder(tmp_path / "store", f'metrics_address = "127.0.0.1:{port}"\n')
    process = subprocess.Popen(
        [str(BIN / "carddaemon"), "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    try:
        lines = []
        for line in process.stdout:
            lines.append(line.strip())
            if line.strip() == "ready":
                break
        assert f"metrics:   http://127.0.0.1:{port}/metrics" in lines, lines
        text = _scrape(port)
        assert 'carddaemon_reader_up{reader="front"} 1.0' in text
        assert "carddaemon_value_journal_pending 0.0" in text
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert rest.splitlines()[-1] == "stopped"
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_metrics_port_in_use_stops_the_start_naming_the_key(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = store_folder(tmp_path / "store", f'metrics_address = "127.0.0.1:{port}"\n')
        done = subprocess.run(
            [str(BIN / "carddaemon"), "serve", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0
    assert "api.metrics_address" in done.stdout + done.stderr, done.stdout + done.stderr
    assert not (config.parent / "run" / "pos.sock").exists()  # the listeners were closed
