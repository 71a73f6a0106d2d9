// paste-host/testing, as a handler author uses it: a handler on a temporary
// pool, sends cut anywhere, restarts that rebuild the state, several
// harnesses in one process that never reach each other, and crashImages,
// which must pass a correct handler and fail one that acknowledges early.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PasteError } from "../host/core/errors.js";
import { crashImages, openHandler, type CrashPoint, type Harness } from "../host/testing.js";
import { buildFixture, root } from "./helpers.js";

const lineLog = join(root, "samples", "templates", "blank", "handler.ts");
let lineLogWasm: Uint8Array;
let ackEarly: string;
const open: Harness[] = [];
let scratch = "";

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "paste-harness-test-"));
  const { buildHandler } = await import("../host/core/build.js");
  const { readFileSync } = await import("node:fs");
  lineLogWasm = readFileSync(await buildHandler(lineLog, join(scratch, "line-log.wasm")));
  ackEarly = await buildFixture("ack-early");
});

afterAll(() => {
  for (const h of open.splice(0)) h.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** harness -- openHandler, closed after the file even if a test fails. */
async function harness(handler: string | Uint8Array): Promise<Harness> {
  const h = await openHandler(handler);
  open.push(h);
  return h;
}

function close(h: Harness): void {
  open.splice(open.indexOf(h), 1);
  h.close();
}

describe("a harness", () => {
  it("builds the handler from source, answers sends however they are cut, and restarts into the same state", async () => {
    const h = await harness(lineLog);
    const a = h.connect();
    const b = h.connect();
    expect(a.send("alpha\nbeta\n").text()).toBe("1 1\n2 2\n");
    expect(a.send("gamma\n", { split: 1 }).text()).toBe("3 3\n");             // a byte per receive, a batch each
    b.send("del");                                                            // half a line on b ...
    expect(a.send("x\n", { split: [1] }).text()).toBe("4 4\n");               // ... while a goes on
    expect(b.read().length).toBe(0);                                          // nothing for b until its line is whole
    expect(b.send("ta\nep", { split: [1, 2, 4], batch: "one" }).text()).toBe("5 5\n");
    expect(h.records().map(String)).toEqual(["alpha\n", "beta\n", "gamma\n", "x\n", "delta\n"]);

    const rec = h.restart();
    expect(rec.replayed).toBe(5);
    expect(rec.wasClean).toBe(true);
    expect(h.connect().send("after\n").text()).toBe("6 6\n");                  // the count came back from the log
    expect(h.restart({ clean: false }).wasClean).toBe(false);
    expect(h.connect().send("again\n").text()).toBe("7 7\n");
    expect(h.handlerErrors).toEqual([]);

    const pool = h.poolPath;
    expect(existsSync(pool)).toBe(true);
    close(h);
    expect(existsSync(pool)).toBe(false);                                      // the temporary pool is gone
  });

  it("two harnesses at once stay independent, and a closed one answers PASTE_ERR_CLOSED", async () => {
    const one = await harness(lineLogWasm);
    const two = await harness(lineLogWasm);
    const c1 = one.connect();
    const c2 = two.connect();
    expect(c1.send("a\n").text()).toBe("1 1\n");
    expect(c2.send("b\n").text()).toBe("1 1\n");
    expect(c1.send("c\n").text()).toBe("2 2\n");
    expect(one.records().map(String)).toEqual(["a\n", "c\n"]);
    expect(two.records().map(String)).toEqual(["b\n"]);
    two.restart();
    expect(c1.send("d\n").text()).toBe("3 3\n");
    expect(c2.send("e\n").text()).toBe("2 2\n");

    close(one);
    let code = "no error";
    try {
      c1.send("f\n");
    } catch (e) {
      code = (e as PasteError).code;
    }
    expect(code).toBe("PASTE_ERR_CLOSED");
    expect(c2.send("g\n").text()).toBe("3 3\n");
    expect(two.records().map(String)).toEqual(["b\n", "e\n", "g\n"]);
  });
});

describe("crashImages", () => {
  // Each line is sent in two receives, so it spans two batches: "line i" is request i.
  const workload = (h: Harness) => {
    const c = h.connect();
    for (let i = 0; i < 6; i++) c.send(`line ${i}\n`, { split: [3] });
  };
  // What a reply promises: its line is durable. After recovery, each line acknowledged is in the log.
  let judged = 0;
  const check = (h: Harness, at: CrashPoint) => {
    judged += at.replies.length;
    const logged = new Set(h.records().map(String));
    for (const r of at.replies) expect(logged.has(`line ${r.send}\n`), `line ${r.send} was acknowledged`).toBe(true);
  };

  it("passes the line log: every acknowledged line survives every crash image", async () => {
    judged = 0;
    const r = await crashImages({ handler: lineLogWasm, workload, check, images: 40, seed: 2 });
    expect(judged).toBeGreaterThan(r.images);   // the images were judged against replies that had left, not vacuously
    expect(r.images).toBeGreaterThan(0);
    expect(r.failures).toEqual([]);
    expect(r.passed).toBe(r.images);
  });

  it("fails a handler that acknowledges a line before logging it, naming the image", async () => {
    const keepDir = join(scratch, "kept");
    const r = await crashImages({ handler: ackEarly, workload, check, images: 40, seed: 2, keepDir });
    expect(r.failures.length).toBeGreaterThan(0);
    expect(r.failures[0].problem).toMatch(/^the check failed after recovery: line \d+ was acknowledged/);
    expect(existsSync(r.failures[0].image!)).toBe(true);
  });
});
