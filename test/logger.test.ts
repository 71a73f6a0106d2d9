// The host's log lines: JSON a collector can parse, the plain `paste-host: ...`
// lines a person reads at a terminal, each level on the stream users expect
// (debug/info on stdout, warn and above on stderr), written before the call
// returns.
import { describe, expect, it } from "vitest";
import { createLogger, type LoggerOptions } from "../host/server/logger.js";

function capture(o: LoggerOptions) {
  const out: string[] = [];
  const err: string[] = [];
  const log = createLogger({ ...o, out: (l) => out.push(l), err: (l) => err.push(l) });
  return { log, out, err };
}

describe("json logs", () => {
  it("one object per line with msg, level label, name, ISO time and the fields at top level", () => {
    const { log, out } = capture({ format: "json" });
    log.info("serving tcp://127.0.0.1:6380", { port: 6380, handler: "kv-wal.wasm" });
    expect(out).toHaveLength(1);
    expect(out[0]).not.toContain("\n");
    const j = JSON.parse(out[0]);
    expect(j).toMatchObject({ level: "info", name: "paste-host", msg: "serving tcp://127.0.0.1:6380", port: 6380, handler: "kv-wal.wasm" });
    expect(new Date(j.time).toISOString()).toBe(j.time);
  });

  it("routes debug/info to out and warn/error/fatal to err, each line once", () => {
    const { log, out, err } = capture({ format: "json", level: "debug" });
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e", { code: "PASTE_ERR_HANDLER" });
    log.fatal("f");
    expect(out.map((l) => JSON.parse(l)).map((j) => [j.level, j.msg])).toEqual([["debug", "d"], ["info", "i"]]);
    expect(err.map((l) => JSON.parse(l)).map((j) => [j.level, j.msg])).toEqual([["warn", "w"], ["error", "e"], ["fatal", "f"]]);
    expect(JSON.parse(err[1]).code).toBe("PASTE_ERR_HANDLER");
  });

  it("keeps the message text unchanged and leaves out levels below the threshold", () => {
    const { log, out } = capture({ format: "json" });
    log.debug("not shown");
    const text = 'quotes " and\nnewlines, unicode é→';
    log.info(text);
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0]).msg).toBe(text);
  });

  it("a child's bindings appear on every line", () => {
    const { log, err } = capture({ format: "json" });
    log.child({ handler: "chatty" }).warn("message 0", { trace: true });
    expect(JSON.parse(err[0])).toMatchObject({ handler: "chatty", trace: true, msg: "message 0", level: "warn" });
  });
});

describe("pretty logs", () => {
  it("print exactly `paste-host: [CODE: ]message`, routed by level", () => {
    const { log, out, err } = capture({ format: "pretty", level: "debug" });
    log.info("serving tcp://127.0.0.1:6380 with kv-wal.wasm", { port: 6380 });
    log.debug("detail");
    log.error("admin API cannot listen on 127.0.0.1:1: in use", { code: "PASTE_ERR_ADDR_IN_USE" });
    log.child({ handler: "chatty" }).warn("handler chatty: message 0");
    expect(out).toEqual(["paste-host: serving tcp://127.0.0.1:6380 with kv-wal.wasm", "paste-host: detail"]);
    expect(err).toEqual([
      "paste-host: PASTE_ERR_ADDR_IN_USE: admin API cannot listen on 127.0.0.1:1: in use",
      "paste-host: handler chatty: message 0",
    ]);
  });

  it("leave out levels below the threshold (default info)", () => {
    const { log, out } = capture({ format: "pretty" });
    log.debug("hidden");
    expect(out).toEqual([]);
  });
});

describe("auto format", () => {
  it("is pretty on a terminal and json otherwise", () => {
    const tty = capture({ format: "auto", isTTY: true });
    tty.log.info("hello");
    expect(tty.out).toEqual(["paste-host: hello"]);
    const pipe = capture({ isTTY: false });
    pipe.log.info("hello");
    expect(JSON.parse(pipe.out[0])).toMatchObject({ msg: "hello", level: "info" });
  });
});
