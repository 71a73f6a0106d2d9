// walclient.ts -- `paste-host wal-client`: drive the wal-append sample and
// check every acknowledgement. Frames go out over several connections with a
// window in flight; each connection must get exactly one 8-byte ack per frame,
// in order, with increasing sequence numbers, and no two frames may share one.

import { connect, type Socket } from "node:net";
import { WalClientFailedError } from "../core/errors.js";
import { parseListen } from "../server/server.js";

export interface WalClientOptions {
  connect: string;
  frames: number;
  size: number;
  conns: number;
  /** Frames in flight per connection. */
  window: number;
  /** Trim acknowledged frames every 1000 acks (or 4 MiB) per connection. */
  trim?: boolean;
  onProgress?: (acked: number) => void;
}

export interface WalClientResult {
  sent: number;
  acked: number;
  /** Frames refused: too long (the connection then closes), or for a full pool (full of them). */
  refused: number;
  full: number;
  seconds: number;
  firstSeq: number;
  lastSeq: number;
  errors: string[];
}

export { WalClientFailedError as WalClientError };

/** The reply to a frame the server could not log because its pool is full (wal-append). */
const FULL = 0xffffffffffffffffn;

/** frame -- payload k of a run: its number, then a pattern the server never sees as structure. */
export function walFrame(k: number, size: number): Buffer {
  const b = Buffer.alloc(4 + size);
  b.writeUInt32LE(size, 0);
  for (let i = 0; i < size; i++) b[4 + i] = (k * 131 + i) & 0xff;
  if (size >= 8) b.writeBigUInt64LE(BigInt(k), 4);
  return b;
}

export async function runWalClient(o: WalClientOptions): Promise<WalClientResult> {
  const { host, port } = parseListen(o.connect);
  const t0 = process.hrtime.bigint();
  const seqs = new Set<number>();
  const errors: string[] = [];
  let acked = 0;
  let [refused, full] = [0, 0];
  let sent = 0;
  let next = 0;
  const runOne = (id: number) =>
    new Promise<void>((resolve) => {
      const sock: Socket = connect(port, host);
      sock.setNoDelay(true);
      let inflight = 0;
      let pending = Buffer.alloc(0);
      let last = 0;
      let done = false;
      const expect: ("frame" | "trim")[] = [];   // what each coming reply answers, in order
      let sinceTrim = 0;
      const finish = (err?: string) => {
        if (done) return;
        done = true;
        if (err) errors.push(`connection ${id}: ${err}`);
        sock.destroy();
        resolve();
      };
      const pump = () => {
        while (inflight < o.window && next < o.frames) {
          sock.write(walFrame(next++, o.size));
          expect.push("frame");
          inflight++;
          sent++;
        }
        if (expect.length === 0 && next >= o.frames) finish();
      };
      sock.on("connect", pump);
      sock.on("error", (e) => finish(e.message));
      sock.on("close", () => finish(inflight ? `closed with ${inflight} frames unacknowledged` : undefined));
      sock.on("data", (d) => {
        pending = Buffer.concat([pending, d]);
        while (pending.length >= 8) {
          const raw = pending.readBigUInt64LE(0);
          const seq = Number(raw);
          pending = pending.subarray(8);
          if (expect.shift() === "trim") continue;   // frames released by a trim
          inflight--;
          if (raw === 0n || raw === FULL) {
            [refused, full] = [refused + 1, full + (raw === FULL ? 1 : 0)];
            continue;
          }
          if (seq <= last) errors.push(`connection ${id}: ack ${seq} after ${last}`);
          if (seqs.has(seq)) errors.push(`connection ${id}: seq ${seq} acknowledged twice`);
          seqs.add(seq);
          last = seq;
          acked++;
          // every 1000 frames or 4 MiB, whichever comes first: a pool holds many times that
          if (o.trim && (++sinceTrim >= 1000 || sinceTrim * o.size >= 4 << 20)) {
            const t = Buffer.alloc(12);
            t.writeUInt32LE(0xffffffff, 0);
            t.writeBigUInt64LE(BigInt(last), 4);
            sock.write(t);
            expect.push("trim");
            sinceTrim = 0;
          }
          if (acked % 10000 === 0) o.onProgress?.(acked);
        }
        pump();
      });
    });
  await Promise.all(Array.from({ length: o.conns }, (_, i) => runOne(i)));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const all = [...seqs];
  if (acked + refused !== sent) errors.push(`${sent} frames sent, ${acked + refused} acknowledged`);
  return {
    sent, acked, refused, full, seconds, errors,
    firstSeq: all.length ? Math.min(...all.slice(0, 100000)) : 0,
    lastSeq: all.length ? all.reduce((a, b) => Math.max(a, b), 0) : 0,
  };
}
