// http-wal.fuzz.test.ts -- http-wal against Node's HTTP/1.1 parser (llhttp)
// on generated request streams (gen/http.ts), split at random points. For
// each stream both must agree on which requests are accepted, with which
// bodies, and where the connection is closed; and after the run, every body
// http-wal acknowledged is in its log, byte for byte, and nothing else is.
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { walkLog } from "../../host/core/logwalk.js";
import { Pool } from "../../host/core/pool.js";
import { root, startServer, type Server } from "../helpers.js";
import { fuzz } from "./config.js";
import { httpStream, streamBytes } from "./gen/http.js";
import { referenceServer, responses, type Outcome } from "./http-ref.js";
import { converse, splitAt } from "./wire.js";

/** After the stream: a line that is no request, so both refuse it and close (unless a body is still owed). */
const SENTINEL = "\r\nX\r\n\r\n";

const kinds = (o: Outcome[]) => o.map((x) => x.kind);

describe("http-wal against Node's HTTP/1.1 parser", () => {
  const dir = mkdtempSync("/dev/shm/paste-fuzz-http-");
  const pool = join(dir, "http.pool");
  const ref = referenceServer();
  let wal: Server | undefined;
  let refPort = 0;

  beforeAll(async () => {
    // PASTE_FUZZ_HANDLER: `npm run fuzz -- --only http-wal --handler yours.wasm`
    wal = await startServer({ pool, handler: process.env.PASTE_FUZZ_HANDLER ?? join(root, "samples", "http-wal", "http-wal.wasm") });
    refPort = await ref.listening;
  });
  afterAll(async () => {
    ref.server.close();
    await wal?.stop("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("frames every generated stream as llhttp does, and logs exactly the bodies it acknowledged", async () => {
    const f = fuzz<[fc.Arbitrary<unknown>]>("http-wal", 40);
    const acked = new Map<number, Buffer>();
    await fc.assert(fc.asyncProperty(httpStream, async (st) => {
      f.tick();
      const { bytes: text, closing } = streamBytes(st.requests);
      const bytes = Buffer.from(closing ? text : text + SENTINEL, "latin1");
      const chunks = splitAt(bytes, st.cuts);
      const [got, want] = await Promise.all([converse(wal!.port, chunks, { idleMs: 250 }), converse(refPort, chunks, { idleMs: 250 })]);
      const ledger = ref.ledger(want.localPort);
      const ours = responses(got.data);
      const theirs = ledger.outcomes.filter((o) => o.kind !== "pending");
      const sent = `the stream ${JSON.stringify(bytes.toString("latin1")).replace(/(.)\1{15,}/g, (run, c) => `${c}<x${run.length}>`)}`;
      expect(kinds(ours.outcomes), `outcomes of ${sent}`).toEqual(kinds(theirs));
      expect(got.closed, `closed after ${sent}`).toBe(ledger.closing);
      let k = 0;
      for (const o of theirs) if (o.kind === "accepted") acked.set(ours.seqs[k++], o.body);
    }), f.parameters);

    // the log holds what was acknowledged, byte for byte, and nothing else
    // (http-wal keeps the newest 16384 bodies: older ones are trimmed)
    expect(await wal!.stop("SIGTERM")).toBe(0);
    const p = Pool.open(pool, { readOnly: true });
    try {
      const recs = [...walkLog(p)];
      const first = recs.length ? recs[0].seq : Infinity;
      for (const r of recs) {
        expect(acked.has(r.seq), `record ${r.seq} was acknowledged`).toBe(true);
        expect(r.data.equals(acked.get(r.seq)!), `record ${r.seq} holds its body`).toBe(true);
      }
      const kept = [...acked.keys()].filter((s) => s >= first);
      expect(kept.length, "every acknowledged body still retained is in the log").toBe(recs.length);
    } finally {
      p.close();
    }
  }, fuzz("http-wal", 40).timeoutMs);
});
