"""ScannerService over the real sockets: scans in order, in clear only for the POS role."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from daemon.api.v1 import scanner_service_pb2 as s
from daemon.api.v1 import scanner_service_pb2_grpc as sg
from daemon.scanners.gtin import gs1_check_digit
from sim.scanners.backend import SimScanner
from tests.api.conftest import Api, run_api
from tests.api.test_cards import reason

EAN = "690123456789" + str(gs1_check_digit("690123456789"))
WECHAT = "134567890123456789"  # 18 digits starting 13: a WeChat Pay payment code
WECHAT_MASKED = "1345**********6789"
_K = s.Scanner


def front(api: Api) -> SimScanner:
    backend = api.station.scanner("front").backend
    assert isinstance(backend, SimScanner)
    assert backend.wait_open(10)
    return backend


def watch(api: Api, role: str, **request: object) -> Iterator[s.WatchScansResponse]:
    stub = sg.ScannerServiceStub(api.channel(role))
    stream: Iterator[s.WatchScansResponse] = stub.WatchScans(
        s.WatchScansRequest(**request),  # type: ignore[arg-type]
        timeout=20,
    )
    return stream


def snapshot(stream: Iterator[s.WatchScansResponse]) -> s.WatchScansResponse:
    first = next(stream)
    assert first.header.snapshot
    assert first.WhichOneof("event") == "status"
    assert first.status.name == "scanners/front"
    return first


def next_scan(stream: Iterator[s.WatchScansResponse]) -> s.WatchScansResponse:
    for message in stream:
        if message.WhichOneof("event") == "scan":
            return message
    raise AssertionError("stream ended")


def test_list_and_get_say_state_and_backend(api: Api) -> None:
    front(api)
    stub = sg.ScannerServiceStub(api.channel("technician"))
    listed = stub.ListScanners(s.ListScannersRequest(), timeout=10).scanners
    assert [x.name for x in listed] == ["scanners/front"]
    got = stub.GetScanner(s.GetScannerRequest(name="scanners/front"), timeout=10).scanner
    assert (got.backend, got.state, got.one_shot) == ("sim", _K.STATE_CONNECTED, False)
    assert got.detail == "simulated scanner front"
    assert got.state_change_time.seconds > 0


def test_unknown_scanner_is_not_found(api: Api) -> None:
    stub = sg.ScannerServiceStub(api.channel("pos"))
    for call in (
        lambda: stub.GetScanner(s.GetScannerRequest(name="scanners/nope"), timeout=10),
        lambda: stub.ArmScanner(s.ArmScannerRequest(name="nope"), timeout=10),
        lambda: next(stub.WatchScans(s.WatchScansRequest(scanners=["scanners/nope"]), timeout=10)),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() is grpc.StatusCode.NOT_FOUND
        assert reason(err.value) == "DEVICE_NOT_FOUND"
    with pytest.raises(grpc.RpcError) as err:
        stub.GetScanner(s.GetScannerRequest(name="printers/front"), timeout=10)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_product_then_payment_in_order_clear_on_pos_masked_on_technician(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scanner = front(api)
    pos, tech = watch(api, "pos"), watch(api, "technician")
    snapshot(pos)
    snapshot(tech)
    assert scanner.inject(EAN.encode(), aim="]E0")
    assert scanner.inject(WECHAT.encode(), aim="]Q1")
    seen = {role: (next_scan(stream), next_scan(stream)) for role, stream in
            (("pos", pos), ("technician", tech))}  # fmt: skip
    for role, (product, payment) in seen.items():
        assert product.header.sequence < payment.header.sequence, role
        assert product.header.source == "scanners/front"
        p = product.scan
        assert (p.scanner, p.kind, p.symbology, p.aim, p.text, p.masked, p.valid) == (
            "scanners/front",
            s.SCAN_KIND_PRODUCT,
            "EAN13",
            "]E0",
            EAN,
            False,
            True,
        )
        assert (p.product.kind, p.product.gtin14, p.product.check_ok) == ("EAN13", "0" + EAN, True)
        assert payment.scan.kind == s.SCAN_KIND_PAYMENT
        assert payment.scan.payment == s.PAYMENT_PROVIDER_WECHAT_PAY
        assert payment.scan.symbology == "QR"
        assert payment.scan.receive_time.ToNanoseconds() <= (
            payment.header.publish_time.ToNanoseconds()
        )
    assert (seen["pos"][1].scan.text, seen["pos"][1].scan.masked) == (WECHAT, False)
    assert (seen["technician"][1].scan.text, seen["technician"][1].scan.masked) == (
        WECHAT_MASKED,
        True,
    )
    assert seen["pos"][0].header.sequence == seen["technician"][0].header.sequence
    assert WECHAT not in caplog.text  # never logged, by the daemon or gRPC


def test_resume_after_replays_what_was_missed_and_a_future_one_is_refused(api: Api) -> None:
    scanner = front(api)
    pos = watch(api, "pos")
    snapshot(pos)
    scanner.inject(EAN.encode(), aim="]E0")
    first = next_scan(pos)
    scanner.inject(WECHAT.encode(), aim="]Q1")
    next_scan(pos)
    resumed = watch(api, "issuer", resume_after=first.header.sequence)
    missed = next(resumed)  # not a snapshot: the payment scan, masked for the issuer
    assert not missed.header.snapshot
    assert missed.header.sequence > first.header.sequence
    assert (missed.scan.kind, missed.scan.text, missed.scan.masked) == (
        s.SCAN_KIND_PAYMENT,
        WECHAT_MASKED,
        True,
    )
    too_far = watch(api, "pos", resume_after=first.header.sequence + 1000)
    with pytest.raises(grpc.RpcError) as err:
        next(too_far)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "resume_after" in (err.value.details() or "")


def test_kind_and_scanner_filters(api: Api) -> None:
    scanner = front(api)
    only = watch(api, "pos", scanners=["front"], kinds=[s.SCAN_KIND_PAYMENT])
    snapshot(only)  # state messages always come
    scanner.inject(EAN.encode(), aim="]E0")
    scanner.inject(WECHAT.encode(), aim="]Q1")
    got = next_scan(only)
    assert got.scan.kind == s.SCAN_KIND_PAYMENT


def test_a_scanner_unplugged_mid_stream_says_so_then_comes_back(api: Api) -> None:
    scanner = front(api)
    stream = watch(api, "pos")
    assert snapshot(stream).status.state == _K.STATE_CONNECTED
    scanner.unplug()
    gone = next(stream)
    assert not gone.header.snapshot
    assert (gone.status.name, gone.status.state) == ("scanners/front", _K.STATE_DISCONNECTED)
    scanner.replug()
    back = next(stream)
    assert back.status.state == _K.STATE_CONNECTED
    assert back.header.sequence > gone.header.sequence
    assert scanner.wait_open(10)
    scanner.inject(EAN.encode(), aim="]E0")
    assert next_scan(stream).scan.text == EAN


def test_one_shot_scanner_delivers_one_scan_until_armed(tmp_path: Path) -> None:
    extra = '\n[scanners.lane]\nbackend = "sim"\none_shot = true\n'
    with run_api(tmp_path, extra) as api:
        lane = api.station.scanner("lane").backend
        assert isinstance(lane, SimScanner)
        assert lane.wait_open(10)
        stub = sg.ScannerServiceStub(api.channel("pos"))
        stream = watch(api, "pos", scanners=["scanners/lane"])
        assert next(stream).status.name == "scanners/lane"
        lane.inject(EAN.encode(), aim="]E0")
        assert next_scan(stream).scan.text == EAN
        got = stub.GetScanner(s.GetScannerRequest(name="scanners/lane"), timeout=10).scanner
        assert (got.one_shot, got.armed) == (True, False)
        assert api.station.scans is not None
        ignored = api.station.scans.stats.ignored_while_disarmed
        lane.inject(WECHAT.encode(), aim="]Q1")  # ignored: not re-armed
        deadline = time.monotonic() + 10  # the scanner thread has read it before the till arms
        while api.station.scans.stats.ignored_while_disarmed == ignored:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        armed = stub.ArmScanner(s.ArmScannerRequest(name="scanners/lane"), timeout=10).scanner
        assert armed.armed
        lane.inject(b"second", aim="]C0")
        after = next_scan(stream)
        assert (after.scan.text, after.scan.kind) == ("second", s.SCAN_KIND_TEXT)
        with pytest.raises(grpc.RpcError) as err:  # arming is the till's
            sg.ScannerServiceStub(api.channel("technician")).ArmScanner(
                s.ArmScannerRequest(name="scanners/lane"), timeout=10
            )
        assert reason(err.value) == "ROLE_NOT_ALLOWED"


def test_over_tls_the_certificates_role_decides_clear_or_masked(tmp_path: Path) -> None:
    from tests.api.test_server import _cert, _free_port, _pem

    ca = _cert("carddaemon test CA", None, ca=True)
    server = _cert("localhost", ca)
    clients = {"pos": _cert("till-01", ca), "issuer": _cert("issuing-station-01", ca)}
    tls = tmp_path / "tls"
    tls.mkdir()
    (tls / "ca.crt").write_bytes(_pem(ca[0]))
    (tls / "server.crt").write_bytes(_pem(server[0]))
    (tls / "server.key").write_bytes(_pem(server[1]))
    port = _free_port()
    extra = (
        f'[api.tcp]\naddress = "127.0.0.1:{port}"\ncert_file = "{tls}/server.crt"\n'
        f'key_file = "{tls}/server.key"\nclient_ca_file = "{tls}/ca.crt"\n'
        'roles = { "till-01" = "pos", "issuing-station-01" = "issuer" }\n'
    )
    with run_api(tmp_path, extra) as api:
        streams = {}
        for role, (cert, key) in clients.items():
            creds = grpc.ssl_channel_credentials(
                root_certificates=_pem(ca[0]),
                private_key=_pem(key),
                certificate_chain=_pem(cert),
            )
            channel = grpc.secure_channel(f"localhost:{port}", creds)
            api.channels.append(channel)
            streams[role] = sg.ScannerServiceStub(channel).WatchScans(
                s.WatchScansRequest(), timeout=20
            )
            snapshot(streams[role])
        front(api).inject(WECHAT.encode(), aim="]Q1")
        assert (next_scan(streams["pos"]).scan.text) == WECHAT
        shown = next_scan(streams["issuer"]).scan
        assert (shown.text, shown.masked) == (WECHAT_MASKED, True)
