"""What the daemon's reader layer costs per APDU over real pcscd + vpcd + pyscard.

One run, one private pcscd (no debug logging), one simulated ACR1252U served through vpcd. The
same sequence - LOAD KEY, AUTHENTICATE, 3 x READ BINARY, UPDATE BINARY, READ BINARY - is sent
alternately by raw pyscard (``smartcard.scard.SCardTransmit`` on its own handle) and by the
reader layer (``PcscBackend.connect`` -> ``PcscConnection`` -> ``StorageCard``). The simulated
reader charges its air time to a virtual clock, so only the host path is measured.

    .venv/bin/python bench/pcsc_latency.py [ROUNDS]     (root: it runs pcscd in a namespace)
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from types import ModuleType

RUN_DIR = tempfile.mkdtemp(prefix="carddaemon-bench-pcscd-")
# libpcsclite reads this once, at the first PC/SC call: set it before anything can call.
os.environ["PCSCLITE_CSOCK_NAME"] = os.path.join(RUN_DIR, "pcscd.comm")

from daemon.diagnostics.report import percentile  # noqa: E402
from daemon.readers.apdu import (  # noqa: E402
    KeyType,
    general_authenticate,
    load_key,
    read_binary,
    update_binary,
)
from daemon.readers.pcsc import PcscBackend  # noqa: E402
from daemon.readers.storage import StorageCard  # noqa: E402
from sim.pcscd import PrivatePcscd  # noqa: E402
from sim.reader import SimReader  # noqa: E402
from sim.store import transport_card  # noqa: E402
from sim.vpcd import VpcdBridge  # noqa: E402

FRIENDLY = "ACS ACR1252 1S CL Reader PICC"
KEY = b"\xff" * 6
DATA = bytes(range(16))
SEQUENCE = [
    load_key(KEY, 0).apdu,
    general_authenticate(4, KeyType.A, 0).apdu,
    read_binary(4).apdu,
    read_binary(5).apdu,
    read_binary(6).apdu,
    update_binary(4, DATA).apdu,
    read_binary(4).apdu,
]


def _raw_round(scard: ModuleType, handle: int, protocol: int) -> float:
    transmit = scard.SCardTransmit
    t0 = time.perf_counter()
    for apdu in SEQUENCE:
        hresult, response = transmit(handle, protocol, list(apdu))
        if hresult != 0 or response[-2:] != [0x90, 0x00]:
            raise SystemExit(f"raw APDU {apdu[:4].hex()} failed: {hresult:#x} {response}")
    return (time.perf_counter() - t0) * 1e3


def _layer_round(card: StorageCard) -> float:
    t0 = time.perf_counter()
    card.load_key(KEY, 0)
    card.authenticate(4, KeyType.A, 0)
    card.read_block(4)
    card.read_block(5)
    card.read_block(6)
    card.write_block(4, DATA)
    card.read_block(4)
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    try:
        _run(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
    finally:
        shutil.rmtree(RUN_DIR, ignore_errors=True)  # also when pcscd or the card fails


def _run(rounds: int) -> None:
    reader = SimReader(f"{FRIENDLY} 00 00", model="acr1252u", latency="none")
    reader.insert(transport_card())
    with (
        PrivatePcscd([FRIENDLY], run_dir=RUN_DIR, debug=False) as pcscd,
        VpcdBridge([(reader, pcscd.slot(FRIENDLY).port)]) as bridge,
        PcscBackend() as backend,
    ):
        bridge.wait_connected()
        from smartcard import scard

        name = pcscd.slot(FRIENDLY).reader_name
        deadline = time.monotonic() + 10
        states = backend.wait_for_change(None, 0)
        while not states[name].present:
            if time.monotonic() > deadline:
                raise SystemExit("pcscd never saw the simulated card")
            states = backend.wait_for_change(states, 0.5)
        _, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        hresult, handle, protocol = scard.SCardConnect(
            context, name, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1
        )
        if hresult != 0:
            raise SystemExit(f"raw connect failed: {hresult:#x}")
        raw: list[float] = []
        layer: list[float] = []
        with StorageCard(backend.connect(name)) as card:
            for _ in range(20):  # warm-up
                _raw_round(scard, handle, protocol)
                _layer_round(card)
            for _ in range(rounds):  # alternated, so drift hits both paths alike
                raw.append(_raw_round(scard, handle, protocol))
                layer.append(_layer_round(card))
        scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(context)
    n = len(SEQUENCE)
    raw_p50, layer_p50 = statistics.median(raw) / n, statistics.median(layer) / n
    print(f"pcscd + vpcd + pyscard, {rounds} rounds of {n} APDUs (auth + 3 reads + write + read)")
    print(f"{'path':<8}{'p50 ms/APDU':>14}{'p99 ms/APDU':>14}{'p50 ms/seq':>13}")
    for label, values in (("raw", raw), ("layer", layer)):
        p50 = statistics.median(values)
        print(f"{label:<8}{p50 / n:>14.4f}{percentile(values, 99) / n:>14.4f}{p50:>13.3f}")
    print(
        f"pcsc_latency: raw_p50_ms={raw_p50:.4f} layer_p50_ms={layer_p50:.4f} "
        f"overhead_per_apdu_ms={layer_p50 - raw_p50:.4f}"
    )


if __name__ == "__main__":
    main()
