// handler.test.ts -- the key-value store (RESP, as redis-cli speaks it),
// tested with paste-host/testing: replies however the bytes are cut, the
// index rebuilt by replay after a restart, and every acknowledged SET
// readable after a power failure at any persist step of a workload.
import { afterEach, expect, it } from "vitest";
import { crashImages, openHandler, type Harness } from "paste-host/testing";

const HANDLER = "assembly/handler.ts";
let h: Harness | undefined;
afterEach(() => {
  h?.close();   // removes the temporary pool, even when the test failed
  h = undefined;
});

/** resp -- a command as a RESP array of bulk strings. */
const resp = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join("")}`;

it("answers SET and GET, however the bytes are cut", async () => {
  h = await openHandler(HANDLER);
  const c = h.connect();
  expect(c.send(resp("SET", "greeting", "hello")).text()).toBe("+OK\r\n");
  expect(c.send(resp("GET", "greeting"), { split: 1 }).text()).toBe("$5\r\nhello\r\n");
  expect(c.send(resp("GET", "nobody")).text()).toBe("$-1\r\n");
});

it("rebuilds its index from the log after a restart", async () => {
  h = await openHandler(HANDLER);
  h.connect().send(resp("SET", "a", "1") + resp("SET", "b", "2") + resp("DEL", "a"));
  h.restart();
  const c = h.connect();
  expect(c.send(resp("GET", "b")).text()).toBe("$1\r\n2\r\n");
  expect(c.send(resp("GET", "a")).text()).toBe("$-1\r\n");
});

it("every acknowledged SET reads back after a power failure at any persist step", async () => {
  const r = await crashImages({
    handler: HANDLER,
    workload: (w) => {
      const c = w.connect();
      for (let i = 0; i < 6; i++) c.send(resp("SET", `key:${i}`, `value:${i}`), { split: [5] });
    },
    check: (after, at) => {
      const c = after.connect();
      for (const reply of at.replies) {
        if (reply.data.toString() !== "+OK\r\n") continue;
        const v = `value:${reply.send}`;
        expect(c.send(resp("GET", `key:${reply.send}`)).text()).toBe(`$${v.length}\r\n${v}\r\n`);
      }
    },
    images: 60,
  });
  expect(r.failures).toEqual([]);
});
