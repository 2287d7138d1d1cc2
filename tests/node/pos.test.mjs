// A POS written in another language proves the contract: Node.js, @grpc/grpc-js and
// @grpc/proto-loader against `carddaemon-demo serve` (the daemon on the simulated store) started
// as a real process, over the POS socket only. Run by `make node-test` (`node --test tests/node/`).
//
// The contract is loaded from proto/carddaemon/v1/*.proto as a POS developer would load it. The
// well-known types it imports (google/protobuf/timestamp.proto, duration.proto) come bundled
// with protobufjs, which proto-loader uses; the test checks they resolved. The error details
// (grpc-status-details-bin: google.rpc.Status with a google.rpc.ErrorInfo) are decoded by a few
// lines of protobuf wire format below, so the test needs no googleapis protos.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PROTO_DIR = join(ROOT, 'proto');
const DEMO = join(ROOT, '.venv', 'bin', 'carddaemon-demo');
const START_TIMEOUT_MS = 60_000;
const CALL_MS = 10_000;

// The simulated store's cards (demo/simulator.py DEMO_CARDS): gold lies on readers/front.
const GOLD = { cardId: 'gold', uid: '9E1A4B01', memberId: '8860000000017', tier: '金卡' };
const FRONT = 'readers/front';

const files = readdirSync(join(PROTO_DIR, 'carddaemon', 'v1'))
  .filter((name) => name.endsWith('.proto'))
  .map((name) => `carddaemon/v1/${name}`);
const definition = protoLoader.loadSync(files, {
  includeDirs: [PROTO_DIR],
  keepCase: true, // field names as in the .proto (request_id), as in every other language
  longs: String, // int64/uint64 as decimal strings: compared as BigInt below
  enums: String,
  defaults: true,
  oneofs: true,
});
const v1 = grpc.loadPackageDefinition(definition).carddaemon.v1;

// --- google.rpc.Status / ErrorInfo from grpc-status-details-bin --------------------------------

/** Fields of one protobuf message: number -> list of values (varint as BigInt, bytes as Buffer). */
function fields(buf) {
  const out = new Map();
  let at = 0;
  const varint = () => {
    let value = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buf[at++];
      if (byte === undefined) throw new Error('truncated varint');
      value |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
      shift += 7n;
    }
  };
  while (at < buf.length) {
    const key = Number(varint());
    const number = key >> 3;
    let value;
    switch (key & 7) {
      case 0:
        value = varint();
        break;
      case 2: {
        const length = Number(varint());
        value = buf.subarray(at, at + length);
        at += length;
        break;
      }
      case 1:
        value = buf.subarray(at, at + 8);
        at += 8;
        break;
      case 5:
        value = buf.subarray(at, at + 4);
        at += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${key & 7}`);
    }
    if (!out.has(number)) out.set(number, []);
    out.get(number).push(value);
  }
  return out;
}

const text = (value) => (value === undefined ? '' : Buffer.from(value).toString('utf8'));
const ERROR_INFO = 'type.googleapis.com/google.rpc.ErrorInfo';

/** The ErrorInfo of a failed call: { reason, domain, metadata }. */
function errorInfo(err) {
  const raw = err.metadata?.get('grpc-status-details-bin')?.[0];
  assert.ok(raw, `no grpc-status-details-bin on ${err.code} ${err.details}`);
  const status = fields(Buffer.from(raw));
  assert.equal(Number(status.get(1)?.[0] ?? 0n), err.code, 'Status.code is the call status');
  for (const any of status.get(3) ?? []) {
    const parts = fields(any);
    if (text(parts.get(1)?.[0]) !== ERROR_INFO) continue;
    const info = fields(parts.get(2)?.[0] ?? Buffer.alloc(0));
    const metadata = {};
    for (const entry of info.get(3) ?? []) {
      const kv = fields(entry);
      metadata[text(kv.get(1)?.[0])] = text(kv.get(2)?.[0]);
    }
    return { reason: text(info.get(1)?.[0]), domain: text(info.get(2)?.[0]), metadata };
  }
  assert.fail(`no ErrorInfo in the status details of ${err.code} ${err.details}`);
}

// --- the daemon as a process -------------------------------------------------------------------

let daemon;
let exited;
let output = '';
let folder;
let sockets;
let clients;

function startDaemon(storeFolder) {
  const child = spawn(DEMO, ['serve', '--folder', storeFolder], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  exited = new Promise((resolveExit) => {
    child.on('exit', (code, signal) => resolveExit({ code, signal }));
  });
  const ready = new Promise((resolveReady, rejectReady) => {
    const timer = setTimeout(
      () => rejectReady(new Error(`carddaemon-demo serve not ready:\n${output}`)),
      START_TIMEOUT_MS,
    );
    const found = {};
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      output += chunk;
      pending += chunk;
      let newline;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        const listening = /^listening: (\S+)\s+(unix:\S+)$/.exec(line);
        if (listening) found[listening[1]] = listening[2];
        if (line === 'ready') {
          clearTimeout(timer);
          resolveReady(found);
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      rejectReady(new Error(`carddaemon-demo serve exited (${code ?? signal}):\n${output}`));
    });
  });
  return { child, ready };
}

function call(client, method, request, deadlineMs = CALL_MS) {
  return new Promise((resolveCall, rejectCall) => {
    client[method](request, { deadline: Date.now() + deadlineMs }, (err, response) =>
      err ? rejectCall(err) : resolveCall(response),
    );
  });
}

/** The call fails; its error (code, details, metadata). */
async function failure(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  return assert.fail('the call succeeded');
}

const cny = (fen) => ({ currency_code: 'CNY', amount_fen: String(fen) });

before(async () => {
  assert.ok(definition['google.protobuf.Timestamp'], 'well-known types resolved');
  folder = mkdtempSync(join(tmpdir(), 'carddaemon-node-'));
  const started = startDaemon(join(folder, 'store'));
  daemon = started.child;
  sockets = await started.ready;
  assert.ok(sockets.pos, `no POS listener in:\n${output}`);
  const credentials = grpc.credentials.createInsecure();
  clients = {
    readers: new v1.ReaderService(sockets.pos, credentials),
    cards: new v1.MemberCardService(sockets.pos, credentials),
    sim: new v1.SimulatorService(sockets.pos, credentials),
    issuing: new v1.IssuingService(sockets.pos, credentials),
    printers: new v1.PrinterService(sockets.pos, credentials),
    scanners: new v1.ScannerService(sockets.pos, credentials),
  };
  assert.ok(sockets.technician, `no technician listener in:\n${output}`);
  clients.techScanners = new v1.ScannerService(sockets.technician, credentials);
});

after(async () => {
  for (const client of Object.values(clients ?? {})) client.close();
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
    daemon.kill('SIGKILL'); // only when a test failed before the clean stop below
    await exited;
  }
  if (folder) rmSync(folder, { recursive: true, force: true });
});

// --- one till's session, in order ---------------------------------------------------------------

/** Events of one server stream (WatchReaders by default), as they arrive; `next(pred)` waits
 * for a matching one. */
function watch(open = () => clients.readers.WatchReaders({ readers: [] })) {
  const stream = open();
  const seen = [];
  const waiters = [];
  let ended = null;
  stream.on('data', (message) => {
    seen.push(message);
    for (const waiter of [...waiters]) {
      if (waiter.pred(message)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(message);
      }
    }
  });
  stream.on('error', (err) => {
    ended = err;
  });
  const next = (pred, ms = CALL_MS) =>
    new Promise((resolveNext, rejectNext) => {
      const hit = seen.find(pred);
      if (hit) return resolveNext(hit);
      const waiter = { pred, resolve: resolveNext };
      waiters.push(waiter);
      setTimeout(() => {
        if (waiters.includes(waiter)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          rejectNext(new Error(`no such event within ${ms} ms (stream error: ${ended})`));
        }
      }, ms);
    });
  return { stream, seen, next, error: () => ended };
}

let events;
let member;
let sale;

test('WatchReaders: a snapshot first, then events with increasing sequence numbers', async () => {
  events = watch();
  const first = await events.next(() => true);
  assert.equal(first.header.snapshot, true, 'the first message is a snapshot');
  const front = await events.next((m) => m.header.snapshot && m.snapshot?.reader?.name === FRONT);
  assert.equal(front.snapshot.reader.state, 'STATE_CARD_PRESENT');
  assert.equal(front.snapshot.reader.card.uid, GOLD.uid);
  // a live event: the gold card taken away and laid back by the simulator
  await call(clients.sim, 'RemoveCard', { reader: FRONT });
  await events.next((m) => m.event === 'card_removed' && m.card_removed.reader === FRONT);
  await call(clients.sim, 'PresentCard', { reader: FRONT, card_id: GOLD.cardId });
  const back = await events.next(
    (m) => m.event === 'card_present' && !m.header.snapshot && m.card_present.reader === FRONT,
  );
  assert.equal(back.card_present.card.uid, GOLD.uid);
  const live = events.seen.filter((m) => !m.header.snapshot).map((m) => BigInt(m.header.sequence));
  assert.ok(live.length >= 2 && live[0] > 0n, `live sequences ${live}`);
  for (let i = 1; i < live.length; i++) assert.ok(live[i] > live[i - 1], `${live}`);
  const lastSnapshot = events.seen.findLastIndex((m) => m.header.snapshot);
  assert.ok(
    events.seen.slice(lastSnapshot + 1).length >= 2,
    'the live events come after the snapshot',
  );
});

test('WaitForCard, then ReadCard: the member on the card', async () => {
  const waited = await call(clients.readers, 'WaitForCard', {
    reader: FRONT,
    timeout: { seconds: '5', nanos: 0 },
  });
  assert.equal(waited.card.uid, GOLD.uid);
  const read = await call(clients.cards, 'ReadCard', { reader: FRONT, expected_uid: GOLD.uid });
  member = read.card;
  assert.equal(member.uid, GOLD.uid);
  assert.equal(member.member_id, GOLD.memberId);
  assert.equal(member.tier_name, GOLD.tier);
  assert.equal(member.balance.currency_code, 'CNY');
  assert.ok(BigInt(member.balance.amount_fen) > 10_000n, `balance ${member.balance.amount_fen}`);
});

test('Debit with a request_id; the same request_id again replays the same result', async () => {
  const request = {
    reader: FRONT,
    request_id: `node-sale-${process.pid}-1`,
    expected_uid: member.uid,
    expected_balance: member.balance,
    amount: cny(1_000),
  };
  const paid = (await call(clients.cards, 'Debit', request)).result;
  assert.equal(paid.replayed, false);
  assert.equal(paid.balance_before.amount_fen, member.balance.amount_fen);
  assert.equal(
    BigInt(paid.balance_after.amount_fen),
    BigInt(member.balance.amount_fen) - 1_000n,
  );
  const again = (await call(clients.cards, 'Debit', request)).result;
  assert.equal(again.replayed, true);
  for (const key of ['request_id', 'uid', 'balance_before', 'balance_after', 'points_after']) {
    assert.deepEqual(again[key], paid[key], key);
  }
  sale = paid;
});

const RECEIPT = 'printers/receipt';
const SCANNER = 'scanners/front';

test('PrintReceipt naming the Debit: the job reaches PRINTED; OpenDrawer by request_id', async () => {
  const printer = watch(() => clients.printers.WatchPrinter({ printer: RECEIPT }));
  await printer.next((m) => m.header.snapshot);
  const amount = cny(sale.balance_before.amount_fen - sale.balance_after.amount_fen);
  assert.equal(amount.amount_fen, '1000');
  const receipt = {
    header: { store_name: '悦来便利店', lines: ['上海市浦东新区世纪大道100号'] },
    items: [{ name: '三只松鼠每日坚果 Nuts', quantity: 1, unit_price: amount, amount }],
    totals: { subtotal: amount, discount: cny(0), total: amount },
    payments: [{ method: '储值卡支付', amount }],
    receipt_no: `node-${process.pid}`,
    time_text: '2026-11-23 14:05',
    footer_lines: ['谢谢惠顾'],
    card_request_id: sale.request_id, // the member block comes from the daemon's journal
  };
  const requestId = `node-receipt-${process.pid}-1`;
  const { job } = await call(clients.printers, 'PrintReceipt', {
    printer: RECEIPT,
    request_id: requestId,
    receipt,
  });
  assert.match(job.name, /^printers\/receipt\/jobs\/\d+$/);
  assert.equal(job.request_id, requestId);
  const printed = await printer.next(
    (m) => m.event === 'job' && m.job.name === job.name && m.job.state === 'STATE_PRINTED',
  );
  assert.ok(!printed.header.snapshot);
  const got = await call(clients.printers, 'GetPrintJob', { name: job.name });
  assert.equal(got.job.state, 'STATE_PRINTED');
  // the same request_id again does not print twice
  const again = await call(clients.printers, 'PrintReceipt', {
    printer: RECEIPT,
    request_id: requestId,
    receipt,
  });
  assert.equal(again.job.name, job.name);
  // a receipt naming an operation that never happened is refused
  const err = await failure(
    call(clients.printers, 'PrintReceipt', {
      printer: RECEIPT,
      request_id: `node-receipt-${process.pid}-2`,
      receipt: { ...receipt, card_request_id: `node-no-such-sale-${process.pid}` },
    }),
  );
  assert.equal(err.code, grpc.status.FAILED_PRECONDITION, `${err.code} ${err.details}`);
  assert.equal(errorInfo(err).reason, 'OPERATION_NOT_COMMITTED');
  const drawerId = `node-drawer-${process.pid}-1`;
  const opened = await call(clients.printers, 'OpenDrawer', {
    printer: RECEIPT,
    request_id: drawerId,
  });
  assert.equal(opened.replayed, false);
  const reopened = await call(clients.printers, 'OpenDrawer', {
    printer: RECEIPT,
    request_id: drawerId,
  });
  assert.equal(reopened.replayed, true, 'a retried OpenDrawer does not kick twice');
  printer.stream.cancel();
});

test('two simulated scans in order: in clear on the POS socket, masked on the technician', async () => {
  const pos = watch(() => clients.scanners.WatchScans({}));
  const tech = watch(() => clients.techScanners.WatchScans({}));
  await pos.next((m) => m.header.snapshot);
  await tech.next((m) => m.header.snapshot);
  const product = '6901234567892'; // EAN-13
  const payment = '134567890123456789'; // a WeChat Pay payment code
  for (const [data, aim] of [
    [product, ']E0'],
    [payment, ']Q1'],
  ]) {
    const done = await call(clients.sim, 'InjectScan', {
      scanner: SCANNER,
      data: Buffer.from(data),
      aim,
    });
    assert.equal(done.delivered, true);
  }
  const scans = async (stream) => {
    const first = await stream.next((m) => m.event === 'scan');
    const second = await stream.next((m) => m.event === 'scan' && m !== first);
    return [first, second];
  };
  const [posProduct, posPayment] = await scans(pos);
  const [techProduct, techPayment] = await scans(tech);
  assert.ok(BigInt(posProduct.header.sequence) < BigInt(posPayment.header.sequence));
  assert.equal(posProduct.scan.kind, 'SCAN_KIND_PRODUCT');
  assert.equal(posProduct.scan.text, product);
  assert.equal(posPayment.scan.kind, 'SCAN_KIND_PAYMENT');
  assert.equal(posPayment.scan.payment, 'PAYMENT_PROVIDER_WECHAT_PAY');
  assert.equal(posPayment.scan.text, payment);
  assert.equal(posPayment.scan.masked, false);
  assert.equal(techProduct.header.sequence, posProduct.header.sequence);
  assert.equal(techPayment.header.sequence, posPayment.header.sequence);
  assert.equal(techPayment.scan.kind, 'SCAN_KIND_PAYMENT');
  assert.equal(techPayment.scan.masked, true);
  assert.equal(techPayment.scan.text, '1345**********6789');
  assert.ok(!techPayment.scan.text.includes(payment));
  pos.stream.cancel();
  tech.stream.cancel();
});

test('a second Debit with the old expected_balance is ABORTED / BALANCE_CHANGED', async () => {
  const err = await failure(
    call(clients.cards, 'Debit', {
      reader: FRONT,
      request_id: `node-sale-${process.pid}-2`,
      expected_uid: member.uid,
      expected_balance: member.balance, // the balance before the first sale
      amount: cny(500),
    }),
  );
  assert.equal(err.code, grpc.status.ABORTED, `${err.code} ${err.details}`);
  const info = errorInfo(err);
  assert.equal(info.domain, 'carddaemon');
  assert.equal(info.reason, 'BALANCE_CHANGED');
  const read = await call(clients.cards, 'ReadCard', { reader: FRONT, expected_uid: member.uid });
  assert.equal(read.card.balance.amount_fen, sale.balance_after.amount_fen, 'nothing charged');
});

test('a card pulled mid-Debit is WRITE_UNCONFIRMED, then settled after re-presenting', async () => {
  const requestId = `node-sale-${process.pid}-3`;
  // the card executes the 9th APDU from now (a write of the debit), then leaves the field
  await call(clients.sim, 'InjectFault', {
    reader: FRONT,
    fault: 'FAULT_REMOVE_AFTER',
    apdu: 9,
  });
  const err = await failure(
    call(clients.cards, 'Debit', {
      reader: FRONT,
      request_id: requestId,
      expected_uid: member.uid,
      amount: cny(2_000),
    }),
  );
  await call(clients.sim, 'ClearFaults', { reader: FRONT });
  assert.equal(err.code, grpc.status.FAILED_PRECONDITION, `${err.code} ${err.details}`);
  const info = errorInfo(err);
  assert.equal(info.reason, 'WRITE_UNCONFIRMED');
  assert.equal(info.metadata.outcomeUnknown, 'true');
  assert.match(err.details, /GetOperation/);
  const pending = await call(clients.cards, 'GetOperation', { request_id: requestId });
  assert.equal(pending.state, 'STATE_PENDING');
  assert.equal(pending.uid, member.uid);

  // the customer lays the card on the reader again
  await call(clients.sim, 'RemoveCard', { reader: FRONT }); // whatever the fault left there
  await call(clients.sim, 'PresentCard', { reader: FRONT, card_id: GOLD.cardId });
  const read = await call(clients.cards, 'ReadCard', { reader: FRONT, expected_uid: member.uid });
  assert.ok(read.resolved_request_ids.includes(requestId), `${read.resolved_request_ids}`);
  const settled = await call(clients.cards, 'GetOperation', { request_id: requestId });
  assert.ok(
    ['STATE_COMMITTED', 'STATE_NOT_APPLIED'].includes(settled.state),
    `settled: ${settled.state}`,
  );
  const before = BigInt(sale.balance_after.amount_fen);
  const charged = settled.state === 'STATE_COMMITTED';
  assert.equal(BigInt(read.card.balance.amount_fen), charged ? before - 2_000n : before);
  if (charged) assert.equal(settled.result.balance_after.amount_fen, read.card.balance.amount_fen);
});

test('Refund of part of the Debit: money back on the card, linked to the sale', async () => {
  const refund = (
    await call(clients.cards, 'Refund', {
      reader: FRONT,
      request_id: `node-refund-${process.pid}`,
      expected_uid: member.uid,
      original_request_id: sale.request_id,
      amount: cny(400),
    })
  ).result;
  assert.equal(refund.type, 'OPERATION_TYPE_REFUND');
  assert.equal(refund.original_request_id, sale.request_id);
  assert.equal(
    BigInt(refund.balance_after.amount_fen),
    BigInt(refund.balance_before.amount_fen) + 400n,
  );
  const original = await call(clients.cards, 'GetOperation', { request_id: sale.request_id });
  assert.deepEqual(
    original.reversals.map((r) => r.request_id),
    [`node-refund-${process.pid}`],
  );
  assert.equal(original.amount_left.amount_fen, '600');
});

test('an issuer-only call over the POS socket is PERMISSION_DENIED', async () => {
  const err = await failure(
    call(clients.issuing, 'IssueCard', {
      reader: 'readers/back',
      request_id: `node-issue-${process.pid}`,
    }),
  );
  assert.equal(err.code, grpc.status.PERMISSION_DENIED, `${err.code} ${err.details}`);
  const info = errorInfo(err);
  assert.equal(info.reason, 'ROLE_NOT_ALLOWED');
  assert.match(err.details, /pos/);
});

test('SIGTERM stops the daemon cleanly (exit 0)', async () => {
  events.stream.cancel();
  for (const client of Object.values(clients)) client.close();
  assert.equal(events.error()?.code ?? grpc.status.CANCELLED, grpc.status.CANCELLED);
  daemon.kill('SIGTERM');
  const { code, signal } = await exited;
  assert.equal(signal, null, output);
  assert.equal(code, 0, output);
  assert.match(output, /^stopped$/m);
});
