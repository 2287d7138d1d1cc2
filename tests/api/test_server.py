"""The listeners: sockets and their modes, health, reflection, caps, mutual TLS."""

from __future__ import annotations

import datetime as dt
import os
import socket
import stat
import time
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from daemon.api.v1 import member_card_service_pb2 as m
from daemon.api.v1 import member_card_service_pb2_grpc as mg
from daemon.api.v1 import reader_service_pb2 as r
from daemon.api.v1 import reader_service_pb2_grpc as rg
from daemon.errors import ConfigError
from sim.backend import SimBackend
from tests.api.conftest import Api, run_api
from tests.api.test_cards import reason

READERS = "carddaemon.v1.ReaderService"


def health(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status)


def wait_health(channel: grpc.Channel, service: str, wanted: int) -> None:
    deadline = time.monotonic() + 10
    while health(channel, service) != wanted:
        assert time.monotonic() < deadline, f"{service} never became {wanted}"
        time.sleep(0.02)


def test_one_socket_per_role_with_the_configured_mode_whatever_the_umask(
    tmp_path: Path,
) -> None:
    old = os.umask(0o077)  # a strict umask would leave group members unable to connect
    try:
        with run_api(tmp_path, "[api.pos]\nmode = 0o660\n[api.technician]\nmode = 0o600\n") as api:
            modes = {role: stat.S_IMODE(api.socket(role).stat().st_mode) for role in
                     ("pos", "technician", "issuer")}  # fmt: skip
            assert all(stat.S_ISSOCK(api.socket(role).stat().st_mode) for role in modes)
    finally:
        os.umask(old)
    assert modes == {"pos": 0o660, "technician": 0o600, "issuer": 0o660}
    assert not api.socket("pos").exists()  # removed on stop


def test_health_says_serving_and_follows_the_readers(api: Api) -> None:
    channel = api.channel("pos")
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    assert health(channel) == serving
    wait_health(channel, READERS, serving)
    backend = api.station.backend
    assert isinstance(backend, SimBackend)
    for reader in backend.readers:
        reader.unplug()
    wait_health(channel, READERS, not_serving)
    wait_health(channel, "carddaemon.v1.MemberCardService", not_serving)
    backend.readers[0].replug()
    wait_health(channel, READERS, serving)


def test_reflection_only_on_the_technician_socket(api: Api) -> None:
    def services(role: str) -> list[str]:
        stub = reflection_pb2_grpc.ServerReflectionStub(api.channel(role))
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = list(stub.ServerReflectionInfo(iter([ask]), timeout=5))
        return [s.name for s in answer.list_services_response.service]

    assert "carddaemon.v1.DiagnosticsService" in services("technician") or READERS in services(
        "technician"
    )
    with pytest.raises(grpc.RpcError) as err:
        services("pos")
    assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_a_flood_of_streams_is_refused_and_the_tills_keep_working(tmp_path: Path) -> None:
    with run_api(tmp_path, "max_streams = 3\n") as api:
        stub = rg.ReaderServiceStub(api.channel("pos"))
        streams = [stub.WatchReaders(r.WatchReadersRequest(), timeout=20) for _ in range(3)]
        for stream in streams:
            assert next(stream).header.snapshot  # each one is open and served
        extra = stub.WatchReaders(r.WatchReadersRequest(), timeout=20)
        with pytest.raises(grpc.RpcError) as err:
            next(extra)
        assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason(err.value) == "TOO_MANY_STREAMS"
        assert stub.ListReaders(r.ListReadersRequest(), timeout=5).readers  # unary calls go on
        for stream in streams:
            stream.cancel()
        deadline = time.monotonic() + 10
        while True:  # the slots come back once the clients have gone
            again = stub.WatchReaders(r.WatchReadersRequest(), timeout=20)
            try:
                assert next(again).header.snapshot
                again.cancel()
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline
                time.sleep(0.05)


def test_an_oversized_message_is_refused(tmp_path: Path) -> None:
    with run_api(tmp_path, "max_message_bytes = 4096\n") as api:
        stub = mg.MemberCardServiceStub(api.channel("pos"))
        with pytest.raises(grpc.RpcError) as err:
            stub.ReadCard(m.ReadCardRequest(reader="front", expected_uid="A" * 10_000), timeout=5)
        assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert stub.GetOperation(m.GetOperationRequest(request_id="x"), timeout=5)


def test_a_second_daemon_on_the_same_socket_is_refused(api: Api, tmp_path: Path) -> None:
    from daemon.api.server import _clear_stale

    with pytest.raises(ConfigError) as err:
        _clear_stale(api.socket("pos"), "api.pos.socket")
    assert "already listening" in str(err.value)
    stale = tmp_path / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(stale))
    dead.close()  # a socket file nobody listens on any more: left by a crash
    _clear_stale(stale, "api.pos.socket")
    assert not stale.exists()
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a socket"):
        _clear_stale(tmp_path / "file", "api.pos.socket")


# --- mutual TLS ---------------------------------------------------------------------------


def _cert(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
          ca: bool = False) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name), x509.DNSName("localhost")]),
            critical=False,
        )
    signer = issuer[1] if issuer else key
    return builder.sign(signer, hashes.SHA256()), key


def _pem(item: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(item, x509.Certificate):
        return item.public_bytes(serialization.Encoding.PEM)
    return item.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_tcp_needs_a_client_certificate_and_takes_the_role_from_it(tmp_path: Path) -> None:
    ca = _cert("carddaemon test CA", None, ca=True)
    server = _cert("localhost", ca)
    issuer_client = _cert("issuing-station-01", ca)
    stranger = _cert("someone-else", ca)
    tls = tmp_path / "tls"
    tls.mkdir()
    for name, data in {
        "ca.crt": _pem(ca[0]),
        "server.crt": _pem(server[0]),
        "server.key": _pem(server[1]),
    }.items():
        (tls / name).write_bytes(data)
    port = _free_port()
    extra = (
        f'[api.tcp]\naddress = "127.0.0.1:{port}"\ncert_file = "{tls}/server.crt"\n'
        f'key_file = "{tls}/server.key"\nclient_ca_file = "{tls}/ca.crt"\n'
        'roles = { "issuing-station-01" = "issuer" }\n'
    )
    with run_api(tmp_path, extra) as api:
        address = api.station.config.api.tcp.address  # type: ignore[union-attr]

        def channel(client: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None):  # type: ignore[no-untyped-def]
            creds = grpc.ssl_channel_credentials(
                root_certificates=_pem(ca[0]),
                private_key=_pem(client[1]) if client else None,
                certificate_chain=_pem(client[0]) if client else None,
            )
            made = grpc.secure_channel(f"localhost:{port}", creds)
            api.channels.append(made)
            return made

        assert address.startswith("127.0.0.1")
        readers = rg.ReaderServiceStub(channel(issuer_client))
        assert readers.ListReaders(r.ListReadersRequest(), timeout=10).readers
        with pytest.raises(grpc.RpcError) as err:  # the issuer role may not pay
            mg.MemberCardServiceStub(channel(issuer_client)).Debit(
                m.DebitRequest(reader="front", request_id="x"), timeout=10
            )
        assert reason(err.value) == "ROLE_NOT_ALLOWED"
        with pytest.raises(grpc.RpcError) as err:  # a valid certificate with no role
            rg.ReaderServiceStub(channel(stranger)).ListReaders(r.ListReadersRequest(), timeout=10)
        assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:  # no client certificate: no TLS session
            rg.ReaderServiceStub(channel(None)).ListReaders(r.ListReadersRequest(), timeout=10)
        assert err.value.code() is grpc.StatusCode.UNAVAILABLE


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
