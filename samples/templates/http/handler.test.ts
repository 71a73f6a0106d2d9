// handler.test.ts -- the HTTP body log, tested with paste-host/testing:
// responses however the bytes are cut, the bodies still in the log after a
// restart, and every body answered 201 durable after a power failure at any
// persist step of a workload.
import { afterEach, expect, it } from "vitest";
import { crashImages, openHandler, type Harness } from "paste-host/testing";

const HANDLER = "assembly/handler.ts";
let h: Harness | undefined;
afterEach(() => {
  h?.close();   // removes the temporary pool, even when the test failed
  h = undefined;
});

const post = (body: string) => `POST /events HTTP/1.1\r\nHost: test\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

it("answers a POST 201 with its sequence number, however the bytes are cut", async () => {
  h = await openHandler(HANDLER);
  const c = h.connect();
  expect(c.send(post("first")).text()).toMatch(/^HTTP\/1\.1 201 Created\r\n[\s\S]*\r\n\r\n1\n$/);
  expect(c.send(post("second"), { split: 7 }).text()).toMatch(/^HTTP\/1\.1 201 Created\r\n[\s\S]*X-Seq: 2\r\n/);
  expect(c.send("GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").text()).toMatch(/^HTTP\/1\.1 200 /);
});

it("keeps the bodies across a restart", async () => {
  h = await openHandler(HANDLER);
  h.connect().send(post("kept"));
  expect(h.restart().replayed).toBe(1);
  expect(h.records().map(String)).toEqual(["kept"]);
  expect(h.connect().send(post("next")).text()).toContain("X-Seq: 2\r\n");
});

it("every body answered 201 is in the log after a power failure at any persist step", async () => {
  const r = await crashImages({
    handler: HANDLER,
    workload: (w) => {
      const c = w.connect();
      for (let i = 0; i < 6; i++) c.send(post(`body ${i}`), { split: [20] });
    },
    check: (after, at) => {
      const logged = new Set(after.records().map(String));
      for (const reply of at.replies) {
        if (reply.data.toString().startsWith("HTTP/1.1 201")) expect(logged.has(`body ${reply.send}`), `body ${reply.send}`).toBe(true);
      }
    },
    images: 60,
  });
  expect(r.failures).toEqual([]);
});
