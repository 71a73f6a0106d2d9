// A handler's trace(): its messages reach the host's logger with their level,
// and a chatty handler is held to a burst of 100 and then 20 per second, the
// drops counted and reported with the next message let through.
import { beforeAll, describe, expect, it } from "vitest";
import { decodeTrace, Handler, TRACE_BURST, TRACE_MAX_BYTES, TRACE_RATE, TraceLimiter } from "../host/core/handler.js";
import type { LogLevel } from "../host/server/logger.js";
import { createHandlerMemory } from "../host/core/window.js";
import { connect } from "node:net";
import { join } from "node:path";
import { buildFixture, scratchDir, startServer, until } from "./helpers.js";

let chatty: string;
beforeAll(async () => {
  chatty = await buildFixture("chatty");
});

/** A handler, what it traced, and a clock the test moves. */
function load(source: string | Uint8Array, memory = createHandlerMemory()) {
  const lines: [LogLevel, string][] = [];
  const clock = { ms: 0 };
  const h = Handler.load(source, memory, "chatty", { onTrace: (level, msg) => lines.push([level, msg]), now: () => clock.ms });
  return { h, lines, clock };
}

describe("TraceLimiter", () => {
  it("lets a burst through, then refills at the rate, counting what it refuses", () => {
    let ms = 0;
    const l = new TraceLimiter(() => ms);
    for (let i = 0; i < TRACE_BURST; i++) expect(l.take()).toBe(true);
    expect(l.take()).toBe(false);
    expect(l.take()).toBe(false);
    expect(l.dropped).toBe(2);
    ms += 1000 / TRACE_RATE;                        // one token's worth
    expect(l.take()).toBe(true);
    expect(l.take()).toBe(false);
    expect(l.takeDropped()).toBe(3);
    expect(l.dropped).toBe(0);
    ms += 3_600_000;                                 // an hour idle refills no more than the burst
    let n = 0;
    while (l.take()) n++;
    expect(n).toBe(TRACE_BURST);
  });

  it("does not drain when the clock steps back", () => {
    let ms = 10_000;
    const l = new TraceLimiter(() => ms, 2, 1);
    expect(l.take()).toBe(true);
    ms = 0;
    expect(l.take()).toBe(true);
    expect(l.take()).toBe(false);
  });
});

describe("decodeTrace", () => {
  it("passes a short message through and cuts a long one at a character boundary, with an ellipsis", () => {
    expect(decodeTrace(Buffer.from("héllo"))).toBe("héllo");
    const long = "é".repeat(TRACE_MAX_BYTES);        // 2 bytes each
    const s = decodeTrace(Buffer.from(long));
    expect(s.endsWith("…")).toBe(true);
    expect(Buffer.byteLength(s)).toBeLessThanOrEqual(TRACE_MAX_BYTES);
    expect(s.slice(0, -1)).toBe("é".repeat((TRACE_MAX_BYTES - 3) >> 1));
  });
});

describe("a handler's trace()", () => {
  it("logs each message with its level", () => {
    const { h, lines } = load(chatty);
    expect((h.exports.chatter as (n: number) => number)(5)).toBe(5);
    expect(lines).toEqual([0, 1, 2, 3, 4].map((i) => ["warn", `message ${i}`]));
  });

  it("holds a chatty handler to the burst, then reports the drops with the next message", () => {
    const { h, lines, clock } = load(chatty);
    const chatter = h.exports.chatter as (n: number) => number;
    expect(chatter(1000)).toBe(TRACE_BURST);
    expect(lines).toHaveLength(TRACE_BURST);
    expect(lines.at(-1)).toEqual(["warn", `message ${TRACE_BURST - 1}`]);
    expect(chatter(1)).toBe(0);                      // still no token
    clock.ms += 1000;                                 // a second: TRACE_RATE tokens
    lines.length = 0;
    expect(chatter(TRACE_RATE + 5)).toBe(TRACE_RATE);
    expect(lines[0]).toEqual(["warn", `${1000 - TRACE_BURST + 1} trace messages dropped (rate limit ${TRACE_RATE}/s, burst ${TRACE_BURST})`]);
    expect(lines.slice(1)).toEqual(Array.from({ length: TRACE_RATE }, (_, i) => ["warn", `message ${i}`]));
  });

  it("refuses a range outside memory, maps unknown levels to info, and cuts long messages", async () => {
    const wabt = await (await import("wabt")).default();
    const m = wabt.parseWat("trace.wat", `(module
      (import "paste" "trace" (func $trace (param i32 i32 i32) (result i32)))
      (import "env" "memory" (memory 32769))
      (func (export "paste_abi_version") (result i32) i32.const 1)
      (func (export "on_rx") (param i32))
      (func (export "t") (param i32 i32 i32) (result i32)
        local.get 0 local.get 1 local.get 2 call $trace))`);
    let bytes: Uint8Array;
    try {
      bytes = m.toBinary({}).buffer;
    } finally {
      m.destroy();
    }
    const memory = createHandlerMemory(16);
    const { h, lines } = load(bytes, memory);
    const t = h.exports.t as (level: number, ptr: number, len: number) => number;
    const end = memory.buffer.byteLength;
    const at = 0x8000_0000;
    Buffer.from(memory.buffer).write("hello", at);
    expect(t(7, at, 5)).toBe(0);
    expect(t(3, end - 5, 5)).toBe(0);               // the last bytes of memory are in range
    expect(t(1, end - 5, 6)).toBe(-16);              // Err.HANDLER: one byte past the end
    expect(t(1, 0xffff_fff0, 100)).toBe(-16);        // ptr + len past 4 GiB
    Buffer.from(memory.buffer).fill("x", at, at + 5000);
    expect(t(0, at, 5000)).toBe(0);
    expect(lines).toEqual([
      ["info", "hello"],
      ["error", "\0\0\0\0\0"],
      ["debug", `${"x".repeat(TRACE_MAX_BYTES - 3)}…`],
    ]);
  });

  it("without onTrace, writes `paste-host: handler NAME: message` to stderr", () => {
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((s: string) => { written.push(s); return true; }) as typeof process.stderr.write;
    try {
      const h = Handler.load(chatty, createHandlerMemory(), "chatty");
      (h.exports.chatter as (n: number) => number)(1);
    } finally {
      process.stderr.write = write;
    }
    expect(written).toEqual(["paste-host: handler chatty: message 0\n"]);
  });
});

describe("trace() under paste-host run", () => {
  it("reaches the host's JSON log as the handler's lines, rate-limited", async () => {
    const s = await startServer({ pool: join(scratchDir("shm"), "t.pool"), handler: chatty });
    try {
      const sock = connect(s.port, "127.0.0.1");
      await new Promise((r) => sock.once("connect", r));
      const traced = () => s.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
        .filter((j) => j.source === "trace");
      sock.write("x".repeat(150));   // one slot, 150 messages in one on_rx
      await until(() => traced().length >= TRACE_BURST);
      await new Promise((r) => setTimeout(r, 1200));
      const first = traced().length;
      expect(first).toBeGreaterThanOrEqual(TRACE_BURST);
      expect(first).toBeLessThan(150);   // the rest was dropped, not queued
      sock.write("y");
      await until(() => traced().length > first + 1);
      const lines = traced();
      expect(lines[0]).toMatchObject({ level: "warn", handler: chatty, msg: `handler ${chatty}: byte 0`, name: "paste-host" });
      expect(lines[first].msg).toMatch(new RegExp(`^handler .*: ${150 - first} trace messages dropped \\(rate limit 20/s, burst 100\\)$`));
      expect(lines[first + 1].msg).toMatch(/: byte 0$/);
      sock.destroy();
    } finally {
      await s.stop("SIGKILL");
    }
  }, 60_000);
});
