// handler.test.ts -- the frame log (u32 length, then the payload; the reply
// is the frame's u64 sequence number), tested with paste-host/testing:
// replies however the bytes are cut, numbering that goes on after a restart,
// and every acknowledged frame durable after a power failure at any persist
// step of a workload.
import { afterEach, expect, it } from "vitest";
import { crashImages, openHandler, type Harness } from "paste-host/testing";

const HANDLER = "assembly/handler.ts";
let h: Harness | undefined;
afterEach(() => {
  h?.close();   // removes the temporary pool, even when the test failed
  h = undefined;
});

/** frame -- a payload with its little-endian u32 length in front. */
function frame(payload: string): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(payload.length, 0);
  return Buffer.concat([head, Buffer.from(payload)]);
}
const seqs = (b: Buffer) => Array.from({ length: b.length / 8 }, (_, i) => Number(b.readBigUInt64LE(i * 8)));

it("answers each frame with its sequence number, however the bytes are cut", async () => {
  h = await openHandler(HANDLER);
  const c = h.connect();
  expect(seqs(c.send(Buffer.concat([frame("one"), frame("two")])).read())).toEqual([1, 2]);
  expect(seqs(c.send(frame("three"), { split: 1 }).read())).toEqual([3]);
  expect(h.records().map(String)).toEqual(["one", "two", "three"]);
});

it("goes on numbering after a restart", async () => {
  h = await openHandler(HANDLER);
  h.connect().send(Buffer.concat([frame("a"), frame("b")]));
  expect(h.restart().replayed).toBe(2);
  expect(seqs(h.connect().send(frame("c")).read())).toEqual([3]);
});

it("every acknowledged frame is in the log after a power failure at any persist step", async () => {
  const r = await crashImages({
    handler: HANDLER,
    workload: (w) => {
      const c = w.connect();
      for (let i = 0; i < 6; i++) c.send(frame(`frame ${i}`), { split: [2, 6] });
    },
    check: (after, at) => {
      const logged = new Set(after.records().map(String));
      for (const reply of at.replies) expect(logged.has(`frame ${reply.send}`), `frame ${reply.send}`).toBe(true);
    },
    images: 60,
  });
  expect(r.failures).toEqual([]);
});
