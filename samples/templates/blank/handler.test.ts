// handler.test.ts -- the line log, tested with paste-host/testing: the
// replies, however the bytes are cut; the state after a restart; and what a
// reply promises (the line is durable) at every persist step of a workload.
import { afterEach, expect, it } from "vitest";
import { crashImages, openHandler, type Harness } from "paste-host/testing";

const HANDLER = "assembly/handler.ts";
let h: Harness | undefined;
afterEach(() => {
  h?.close();   // removes the temporary pool, even when the test failed
  h = undefined;
});

it("answers each line with its sequence number and the count, however the bytes are cut", async () => {
  h = await openHandler(HANDLER);
  const c = h.connect();
  expect(c.send("alpha\nbeta\n").text()).toBe("1 1\n2 2\n");
  expect(c.send("gamma\n", { split: 1 }).text()).toBe("3 3\n");   // one byte per receive, a batch each
  expect(h.records().map(String)).toEqual(["alpha\n", "beta\n", "gamma\n"]);
});

it("counts the lines again after a restart", async () => {
  h = await openHandler(HANDLER);
  h.connect().send("one\ntwo\n");
  expect(h.restart().replayed).toBe(2);
  expect(h.connect().send("three\n").text()).toBe("3 3\n");
});

it("every acknowledged line survives a power failure at any persist step", async () => {
  const r = await crashImages({
    handler: HANDLER,
    workload: (w) => {
      const c = w.connect();
      for (let i = 0; i < 6; i++) c.send(`line ${i}\n`, { split: [3] });   // each line over two batches
    },
    check: (after, at) => {
      const logged = new Set(after.records().map(String));
      for (const reply of at.replies) expect(logged.has(`line ${reply.send}\n`), `line ${reply.send}`).toBe(true);
    },
    images: 60,
  });
  expect(r.failures).toEqual([]);
});
