"""Each reader-worker job runs inside one PC/SC transaction, on both paths.

A "foreign PC/SC client" (another program on the store PC with its own shared connection to
the reader) must not get a command in between a job's AUTHENTICATE and its READ/WRITE: MIFARE
authentication state belongs to the card, so a command slipped in there would ride on the job's
session. Orders are asserted on the simulated reader's ``history``, which records every APDU
that reached the card on both paths (in-process, or through pcscd + vpcd).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import pytest

from daemon.errors import (
    CardDaemonError,
    CardRemoved,
    PcscUnavailable,
    ReaderBusy,
    ReaderError,
    ResponseLost,
)
from daemon.readers.connection import CardConnection, Response, Transacted
from daemon.readers.workers import JobContext, ReaderWorker
from sim.backend import SimBackend
from sim.reader import SimReader
from sim.store import transport_card
from tests.pcscd_stack import Stack

UID_A = bytes.fromhex("11223344")
UID_B = bytes.fromhex("A1B2C3D4")
NEW_DATA = bytes(range(0x40, 0x50))
LOAD_KEY = bytes.fromhex("FF82000006FFFFFFFFFFFF")  # slot 0: the transport key
AUTH_4 = bytes.fromhex("FF860000050100046000")  # block 4, key A, slot 0
READ_4 = bytes.fromhex("FFB0000410")
WRITE_4 = bytes.fromhex("FFD6000410") + NEW_DATA
GET_UID = bytes.fromhex("FFCA000000")
AUTH_0 = bytes.fromhex("FF860000050100006000")  # block 0 (sector 0), key A, slot 0
WAIT = 30.0  # generous bound for "does not hang"; never a timing assertion
# How long the job keeps the reader after the foreign client started sending: without a
# transaction that client's GET DATA completes within milliseconds on either path.
HOLD_S = 0.5


def _ok(response: Response) -> Response:
    assert response.ok, response
    return response


def _transacted(connection: CardConnection) -> Transacted:
    assert isinstance(connection, Transacted)
    return connection


class Background(threading.Thread):
    """Runs ``call`` at once; its result (or typed error) lands in ``outcome``."""

    def __init__(self, call: Callable[[], object]) -> None:
        super().__init__(name="foreign-pcsc-client")
        self._call = call
        self.outcome: list[object] = []
        self.start()

    def run(self) -> None:
        try:
            self.outcome.append(self._call())
        except CardDaemonError as exc:
            self.outcome.append(exc)


def _worker(stack: Stack) -> ReaderWorker:
    name = stack.name(0)
    return ReaderWorker(name, lambda: stack.backend.connect(name))


def test_a_foreign_client_cannot_slip_between_authenticate_and_write(stack: Stack) -> None:
    stack.insert(0, transport_card(UID_A))
    reader = stack.readers[0]
    authenticated, sending, foreign_done = threading.Event(), threading.Event(), threading.Event()
    done_while_job_held: list[bool] = []

    def job(ctx: JobContext) -> bytes:
        conn = ctx.connection
        _ok(conn.transmit(LOAD_KEY))
        _ok(conn.transmit(AUTH_4))
        authenticated.set()
        assert sending.wait(WAIT)
        done_while_job_held.append(foreign_done.wait(HOLD_S))
        _ok(conn.transmit(WRITE_4))
        return _ok(conn.transmit(READ_4)).data

    def foreign_send() -> Response:
        sending.set()
        try:
            return foreign.transmit(GET_UID)
        finally:
            foreign_done.set()

    foreign = stack.backend.connect(stack.name(0))
    with contextlib.closing(foreign), _worker(stack) as worker:
        future = worker.submit_within(job, WAIT)
        assert authenticated.wait(WAIT)
        thread = Background(foreign_send)
        assert future.result(WAIT) == NEW_DATA
        thread.join(WAIT)
    assert done_while_job_held == [False]  # it waited for the whole job
    [answer] = thread.outcome
    assert isinstance(answer, Response)
    assert answer.data == UID_A
    apdus = [apdu for apdu, _ in reader.history]
    assert apdus[-5:] == [LOAD_KEY, AUTH_4, WRITE_4, READ_4, GET_UID]
    stack.remove(0)


def test_a_job_whose_card_left_fails_at_begin_and_sends_nothing(stack: Stack) -> None:
    stack.insert(0, transport_card(UID_A))
    reader = stack.readers[0]
    reached: list[bool] = []

    def read_uid(ctx: JobContext) -> bytes:
        conn = ctx.connection  # begins the transaction
        reached.append(True)
        return _ok(conn.transmit(GET_UID)).data

    with _worker(stack) as worker:
        assert worker.submit_within(read_uid, WAIT).result(WAIT) == UID_A  # connection open
        stack.remove(0)
        count = reader.apdu_count
        reached.clear()
        with pytest.raises(CardRemoved, match="begin transaction"):
            worker.submit_within(read_uid, WAIT).result(WAIT)
        assert reached == []
        assert reader.apdu_count == count
        stack.insert(0, transport_card(UID_B))  # the worker opens a fresh connection
        assert worker.submit_within(read_uid, WAIT).result(WAIT) == UID_B
    stack.remove(0)


def test_a_card_pulled_mid_job_ends_the_hold_and_the_reader_is_free_again(stack: Stack) -> None:
    stack.insert(0, transport_card(UID_A))

    def pulled(ctx: JobContext) -> bytes:
        conn = ctx.connection
        _ok(conn.transmit(LOAD_KEY))
        _ok(conn.transmit(AUTH_4))
        stack.readers[0].remove()  # the customer takes the card away
        return conn.transmit(READ_4).data

    with _worker(stack) as worker:
        with pytest.raises((CardRemoved, ResponseLost)):
            worker.submit_within(pulled, WAIT).result(WAIT)
        stack.wait_until(0, False)
        stack.insert(0, transport_card(UID_B))
        with contextlib.closing(stack.backend.connect(stack.name(0))) as raw:
            foreign = _transacted(raw)  # another client gets the reader: no hold survived

            def foreign_job() -> bytes:
                foreign.begin_transaction()
                uid = _ok(raw.transmit(GET_UID)).data
                foreign.end_transaction()
                return uid

            thread = Background(foreign_job)
            thread.join(WAIT)
            assert thread.outcome == [UID_B]
        assert worker.submit_within(lambda ctx: ctx.connection.atr, WAIT).result(WAIT)
    stack.remove(0)


def test_a_failed_job_resets_the_card_so_no_one_inherits_its_authentication(
    stack: Stack,
) -> None:
    stack.insert(0, transport_card(UID_A))

    def fails_after_auth(ctx: JobContext) -> None:
        conn = ctx.connection
        _ok(conn.transmit(LOAD_KEY))
        _ok(conn.transmit(AUTH_4))
        raise ReaderError("the job gave up after authenticating")

    with _worker(stack) as worker, pytest.raises(ReaderError, match="gave up"):
        worker.submit_within(fails_after_auth, WAIT).result(WAIT)
    with contextlib.closing(stack.backend.connect(stack.name(0))) as foreign:
        assert not foreign.transmit(READ_4).ok  # never authenticated itself
    stack.remove(0)


# --- simulator only: the bound and the ends of a hold --------------------------------------


def test_sim_foreign_command_waits_only_up_to_the_bound_then_reader_busy() -> None:
    reader = SimReader("ACS ACR1252 1S CL Reader PICC 00 00")
    reader.insert(transport_card(UID_A))
    reader.transaction_wait_s = 0.05
    with SimBackend([reader]) as backend:
        holder = _transacted(backend.connect(reader.name))
        foreign = _transacted(backend.connect(reader.name))
        holder.begin_transaction()
        holder.begin_transaction()  # nests, as in pcscd
        with pytest.raises(ReaderBusy, match=r"ACR1252.*GET DATA.*PC/SC transaction"):
            backend.connect(reader.name).transmit(GET_UID)
        with pytest.raises(ReaderBusy, match="begin transaction"):
            foreign.begin_transaction()
        holder.end_transaction()
        with pytest.raises(ReaderBusy):  # still held once
            backend.connect(reader.name).transmit(GET_UID)
        holder.end_transaction()
        with pytest.raises(ReaderError, match="none was begun"):
            holder.end_transaction()
        foreign.begin_transaction()
        backend.connect(reader.name).close()
        assert isinstance(holder, CardConnection)
        holder.close()  # closing the holder's handle (foreign holds now) changes nothing
        with pytest.raises(ReaderBusy):
            backend.connect(reader.name).transmit(GET_UID)
        assert isinstance(foreign, CardConnection)
        foreign.close()  # a disconnect ends the hold
        assert _ok(backend.connect(reader.name).transmit(GET_UID)).data == UID_A


def test_sim_service_restart_ends_every_hold() -> None:
    reader = SimReader("ACS ACR1252 1S CL Reader PICC 00 00")
    reader.insert(transport_card(UID_A))
    reader.transaction_wait_s = 0.05
    with SimBackend([reader]) as backend:
        holder = _transacted(backend.connect(reader.name))
        holder.begin_transaction()
        backend.stop_service()
        backend.start_service()
        with pytest.raises(PcscUnavailable, match="end transaction"):
            holder.end_transaction()
        assert _ok(backend.connect(reader.name).transmit(GET_UID)).data == UID_A


def test_a_job_wrapping_a_pulled_card_error_leaves_the_reader_usable(stack: Stack) -> None:
    """No reset for a card that is gone, even when a higher layer wrapped the transport error
    (a reset sent right after a pull left pcscd's vpcd slot blind to the next card)."""
    stack.insert(0, transport_card(UID_A))

    def wraps(ctx: JobContext) -> None:
        conn = ctx.connection
        _ok(conn.transmit(LOAD_KEY))
        stack.readers[0].remove()  # pulled while pcscd still thinks the card is there
        try:
            conn.transmit(AUTH_4)
        except (CardRemoved, ResponseLost) as exc:
            raise ReaderError("payment step failed") from exc

    with _worker(stack) as worker:
        with pytest.raises(ReaderError, match="payment step"):
            worker.submit_within(wraps, WAIT).result(WAIT)
        stack.wait_until(0, False)
        stack.insert(0, transport_card(UID_B))
        assert worker.submit_within(lambda ctx: ctx.connection.atr, WAIT).result(WAIT)
    with contextlib.closing(stack.backend.connect(stack.name(0))) as other:
        assert _ok(other.transmit(GET_UID)).data == UID_B
    stack.remove(0)


def test_a_successful_jobs_clean_up_runs_after_its_result_inside_its_hold(stack: Stack) -> None:
    """``JobContext.after``: the caller gets the result first (the clean-up is not its wait),
    then the clean-up runs before any other client gets the reader: here it re-authenticates to
    sector 0, so a foreign READ of the job's sector right after the job is refused."""
    stack.insert(0, transport_card(UID_A))
    answered = threading.Event()
    order: list[str] = []

    def reads(ctx: JobContext) -> bytes:
        conn = ctx.connection

        def close_door() -> None:
            assert answered.wait(WAIT)  # the caller already has the result
            order.append("clean-up")
            _ok(conn.transmit(AUTH_0))

        ctx.after(close_door)
        _ok(conn.transmit(LOAD_KEY))
        _ok(conn.transmit(AUTH_4))
        return _ok(conn.transmit(READ_4)).data

    with _worker(stack) as worker:
        assert len(worker.submit_within(reads, WAIT).result(WAIT)) == 16
        order.append("result")
        answered.set()
        with contextlib.closing(stack.backend.connect(stack.name(0))) as foreign:
            assert not foreign.transmit(READ_4).ok  # waits for the job's hold, then refused
        assert worker.wait_idle(WAIT)
    assert order == ["result", "clean-up"]
    stack.remove(0)
