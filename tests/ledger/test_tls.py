"""The store's link to the chain ledger over the network, as the docs configure it: TLS with
``sslmode = "verify-full"`` and the ledger's CA, scram-sha-256 with the store role's password
from a 0600 connection file. Against a private PostgreSQL of its own on 127.0.0.1 with
``ssl = on``, a certificate made here and ``pg_hba.conf`` allowing only ``hostssl`` with
scram-sha-256 (``hostnossl ... reject``). Everything goes through what the station uses
(``parse_config`` -> ``StoreLedger`` -> ``read_conninfo`` -> the pool): the right settings ship
an outbox row over TLS; a wrong password, a certificate of another CA, a host name the
certificate does not name and a plain connection are each refused, saying which it was, and
the password shows in no error and no log line."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from daemon.config import parse_config
from daemon.errors import LedgerUnavailable
from daemon.journal import Journal
from daemon.ledger.devserver import ADMIN, PrivatePostgres
from daemon.ledger.migrate import add_store, migrate
from daemon.ledger.settings import LedgerConfig
from daemon.ledger.store import StoreLedger
from tests.ledger.chain import committed_debit

STORE = "tls1"
ROLE = f"ledger_store_{STORE}"
PASSWORD = "Tls-s3cret-9f2Q"  # the store role's, on a throw-away server
WRONG = "Wrong-pw-77Zx"
HBA = f"""\
local all {ADMIN} trust
hostssl ledger all 127.0.0.1/32 scram-sha-256
hostnossl all all 127.0.0.1/32 reject
"""


@dataclass
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _authority(name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def _server_cert(ca: Authority) -> tuple[bytes, bytes]:
    """The ledger's certificate for localhost / 127.0.0.1 signed by ``ca``: (cert, key) PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TlsLedger:
    pg: PrivatePostgres
    ca: Authority
    other_ca: Authority

    @property
    def admin(self) -> str:
        return self.pg.conninfo()

    @property
    def port(self) -> int:
        assert self.pg.tcp_port is not None
        return self.pg.tcp_port


@pytest.fixture(scope="module")
def tls_ledger() -> Iterator[TlsLedger]:
    ca, other = _authority("Chain Ledger CA"), _authority("Somebody Else's CA")
    cert, key = _server_cert(ca)
    settings = {  # relative to the data directory, beside which install() puts the files
        "ssl": "on",
        "ssl_cert_file": "../server.crt",
        "ssl_key_file": "../server.key",
        "password_encryption": "scram-sha-256",
    }
    with PrivatePostgres(tcp_port=_free_port(), settings=settings, hba=HBA) as pg:
        pg.install("server.crt", cert, 0o644)
        pg.install("server.key", key, 0o600)
        pg.start()
        migrate(pg.conninfo())
        add_store(pg.conninfo(), STORE, password=PASSWORD)
        yield TlsLedger(pg, ca, other)


def _store_config(
    tls_ledger: TlsLedger,
    tmp_path: Path,
    *,
    password: str = PASSWORD,
    host: str = "host=127.0.0.1",
    ca: Authority | None = None,
    sslmode: str = "verify-full",
) -> LedgerConfig:
    """What a store PC holds: the 0600 connection file and the ``[ledger]`` section."""
    conn = tmp_path / "ledger.conn"
    conn.write_text(
        f"{host} port={tls_ledger.port} dbname=ledger user={ROLE} password={password}\n"
    )
    conn.chmod(0o600)
    (tmp_path / "ledger-ca.crt").write_bytes((ca or tls_ledger.ca).pem)
    text = (
        f'[daemon]\nkeystore_file = "{tmp_path}/keys.toml"\n\n[ledger]\nstore = "{STORE}"\n'
        f'terminal = "pc-1"\nconninfo_file = "ledger.conn"\nsslmode = "{sslmode}"\n'
        'sslrootcert = "ledger-ca.crt"\nship_interval_ms = 20\nbackoff_max_ms = 500\n'
    )
    config = parse_config(text, base_dir=tmp_path).ledger
    assert config is not None
    return config


def _refused(
    config: LedgerConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture, words: str
) -> str:
    """Start the store's ledger part as the station does, let its shipper try on its own
    until it logs ``words``, then ship and ask by hand; return the error shown. Nothing may be
    shipped, the online check falls back, and nothing may show the password."""
    caplog.set_level(logging.DEBUG)
    with Journal(tmp_path / "journal.db") as journal:
        part = StoreLedger(config, journal)
        try:
            committed_debit(journal, "tls-refused", "04A1B2C3", 1, 500)
            part.start()
            deadline = time.monotonic() + 15
            while words not in (part.shipper.last_error or "") and time.monotonic() < deadline:
                time.sleep(0.02)
            assert words in caplog.text  # the shipper's warning, once per change
            with pytest.raises(LedgerUnavailable) as caught:
                part.shipper.flush(timeout_s=0.5)
            assert part.outbox.backlog() == 1
            assert part.check.ask("04A1B2C3", 1, "00000001", budget_s=0.3) is None
            assert part.check.fallbacks == 1
        finally:
            part.close()
    message = caught.value.message
    assert "no connection to the chain ledger" in message
    assert words in message
    for secret in (PASSWORD, WRONG):
        assert secret not in message
        assert secret not in caplog.text
    return message


def test_verified_tls_and_scram_ship_an_outbox_row(
    tls_ledger: TlsLedger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = _store_config(tls_ledger, tmp_path)
    assert dict(config.tls) == {
        "sslmode": "verify-full", "sslrootcert": str(tmp_path / "ledger-ca.crt"),
    }  # fmt: skip
    with Journal(tmp_path / "journal.db") as journal:
        part = StoreLedger(config, journal)
        try:
            committed_debit(journal, "tls-debit-1", "04C0FFEE", 4, 1_250)
            assert part.outbox.backlog() == 1
            part.shipper.flush(timeout_s=10)
            assert part.outbox.backlog() == 0
            with part.link.connection(5) as conn:
                row = conn.execute(
                    "SELECT ssl, version, current_user FROM pg_stat_ssl"
                    " WHERE pid = pg_backend_pid()"
                ).fetchone()
                assert conn.info.host == "127.0.0.1"
                assert conn.pgconn.ssl_in_use
            assert row is not None
            assert row[0] is True
            assert str(row[1]).startswith("TLSv1.")
            assert row[2] == ROLE
        finally:
            part.close()
    with psycopg.connect(tls_ledger.admin) as admin:
        events = admin.execute(
            "SELECT e.op, e.amount, s.code FROM ledger.card_events e"
            " JOIN ledger.stores s ON s.id = e.store_id WHERE e.request_id = %s",
            ("tls-debit-1",),
        ).fetchall()
        stored = admin.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (ROLE,)
        ).fetchone()
    assert events == [("debit", 1_250, STORE)]
    assert stored is not None
    assert str(stored[0]).startswith("SCRAM-SHA-256$")
    assert PASSWORD not in caplog.text


def test_a_wrong_password_is_refused_by_name_and_never_shown(
    tls_ledger: TlsLedger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _store_config(tls_ledger, tmp_path, password=WRONG)
    message = _refused(config, tmp_path, caplog, "password authentication failed")
    assert f'password authentication failed for user "{ROLE}"' in message
    assert "check the store role's password in the connection string" in message
    # the server checked it with scram-sha-256 over TLS, as pg_hba.conf says
    log = tls_ledger.pg.log.read_text(errors="replace")
    assert "hostssl ledger all 127.0.0.1/32 scram-sha-256" in log
    assert WRONG not in log
    assert PASSWORD not in log


def test_a_certificate_of_another_ca_is_refused(
    tls_ledger: TlsLedger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _store_config(tls_ledger, tmp_path, ca=tls_ledger.other_ca)
    message = _refused(config, tmp_path, caplog, "certificate verify failed")
    assert "not signed by the CA in ledger.sslrootcert" in message


def test_a_host_name_the_certificate_does_not_name_is_refused(
    tls_ledger: TlsLedger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _store_config(
        tls_ledger, tmp_path, host="host=ledger.wrong.example hostaddr=127.0.0.1"
    )
    message = _refused(config, tmp_path, caplog, "does not match host name")
    assert 'does not match host name "ledger.wrong.example"' in message
    assert "not a name the ledger's certificate carries" in message


def test_a_plain_connection_is_refused_by_the_server(
    tls_ledger: TlsLedger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _store_config(tls_ledger, tmp_path, sslmode="disable")
    message = _refused(config, tmp_path, caplog, "no encryption")
    assert "pg_hba.conf rejects connection" in message
    assert 'set ledger.sslmode = "verify-full"' in message
    # the same from any client: the server itself refuses a connection without TLS
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(
            f"host=127.0.0.1 port={tls_ledger.port} dbname=ledger user={ROLE}"
            f" password={PASSWORD} sslmode=disable",
            connect_timeout=5,
        )
