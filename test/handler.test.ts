// Handlers as authors meet them: `paste-host build`, the ABI check, the SDK's
// layout against the C header, and containment of a handler that breaks the
// ring, names bogus buffers, aborts or traps: each is reported with what and
// where, and the host keeps serving.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { HandlerError, HandlerInvalidError, HandlerTrapError, type PasteError } from "../host/core/errors.js";
import { native } from "../host/core/native.js";
import { Runtime } from "../host/core/runtime.js";
import { buildFixture, runCli, scratchDir } from "./helpers.js";

let evil: string;
let probe: string;
beforeAll(async () => {
  [evil, probe] = await Promise.all([buildFixture("evil"), buildFixture("layout-probe")]);
});

describe("the SDK", () => {
  it("its @unmanaged classes match native/paste.h, offset for offset", async () => {
    const path = join(scratchDir("shm"), "p.pool");
    const rt = Runtime.open(path, { handler: probe, create: { size: 16 << 20, slots: 64 } });
    try {
      const n = native();
      const c = new Map<string, number>();
      for (let i = 0; i < n.layoutCount(); i++) c.set(n.layoutName(i), Number(n.layoutValue(i)));
      const checked: string[] = [];
      for (const [name, fn] of Object.entries(rt.handler.exports)) {
        if (!/__/.test(name) || typeof fn !== "function" || name.startsWith("__")) continue;
        const key = name.startsWith("sizeof__") ? `sizeof(${name.slice(8)})` : name.replace("__", ".");
        expect(c.has(key), key).toBe(true);
        expect((fn as () => number)(), key).toBe(c.get(key));
        checked.push(key);
      }
      expect(checked.length).toBeGreaterThan(30);
    } finally {
      rt.close();
    }
  });
});

describe("paste-host build", () => {
  it("reports a compile error with file and line, exit 1", () => {
    const dir = scratchDir("shm");
    const src = join(dir, "broken.ts");
    writeFileSync(src, 'import { Ring } from "paste-host/assembly";\nexport function on_rx(ring: Ring): void {\n  ring.nonsense();\n}\n');
    const r = runCli(["build", src, "-o", join(dir, "broken.wasm")]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("PASTE_ERR_BUILD");
    expect(r.stderr).toMatch(/nonsense/);
    expect(r.stderr).toMatch(/in broken\.ts\(3,/);
  });

  it("builds a handler that the host loads, with the ABI export added", () => {
    const dir = scratchDir("shm");
    mkdirSync(join(dir, "h"));
    const src = join(dir, "h", "tiny.ts");
    writeFileSync(src, 'import { Ring } from "paste-host/assembly";\nexport function on_rx(ring: Ring): void { ring.release(); }\n');
    const out = join(dir, "tiny.wasm");
    const r = runCli(["build", src, "-o", out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^built .*tiny\.wasm \(\d+ bytes\)/);
    const rt = Runtime.open(join(dir, "t.pool"), { handler: out, create: { size: 16 << 20, slots: 64 } });
    try {
      expect(rt.handler.exports.paste_abi_version()).toBe(1);
      expect(rt.memBatch(10, 10).filled).toBe(10);
    } finally {
      rt.close();
    }
  });
});

describe("loading handlers", () => {
  const pool = () => join(scratchDir("shm"), "x.pool");
  const create = { size: 16 << 20, slots: 64 };

  it("refuses a module without the ABI export, naming the build command", async () => {
    const wat = join(scratchDir("shm"), "noabi.wasm");
    const wabt = await (await import("wabt")).default();
    const mod = wabt.parseWat("noabi.wat", '(module (import "env" "memory" (memory 1)) (func (export "on_rx") (param i32)))');
    writeFileSync(wat, mod.toBinary({}).buffer);
    expect(() => Runtime.open(pool(), { handler: wat, create })).toThrow(/no paste_abi_version export; build handlers with `paste-host build`/);
  });

  it("refuses a wrong ABI version, an import outside the allowed list, and garbage", async () => {
    const wabt = await (await import("wabt")).default();
    const dir = scratchDir("shm");
    const mk = (name: string, text: string) => {
      const f = join(dir, name);
      writeFileSync(f, wabt.parseWat(name, text).toBinary({}).buffer);
      return f;
    };
    const abi2 = mk("abi2.wasm", '(module (import "env" "memory" (memory 1)) (func (export "paste_abi_version") (result i32) i32.const 2) (func (export "on_rx") (param i32)))');
    const fdw = mk("fdw.wasm", '(module (import "env" "fd_write" (func)) (func (export "paste_abi_version") (result i32) i32.const 1) (func (export "on_rx") (param i32)))');
    const junk = join(dir, "junk.wasm");
    writeFileSync(junk, "this is not wasm");
    const err = (h: string) => {
      try {
        Runtime.open(pool(), { handler: h, create }).close();
      } catch (e) {
        return e as PasteError;
      }
      throw new Error("loaded");
    };
    expect(err(abi2)).toBeInstanceOf(HandlerInvalidError);
    expect(err(abi2).message).toMatch(/built for handler ABI 2; this host speaks 1/);
    expect(err(fdw).message).toMatch(/import env\.fd_write is not allowed/);
    expect(err(junk).message).toMatch(/not a WebAssembly module \(no \\0asm header\)/);
    expect(err(junk).code).toBe("PASTE_ERR_HANDLER_INVALID");
  });
});

describe("a misbehaving handler is contained", () => {
  type Evil = { set_mode(m: number): void };

  function run(mode: number) {
    const errors: Error[] = [];
    const rt = Runtime.open(join(scratchDir("shm"), "e.pool"), {
      handler: evil,
      create: { size: 16 << 20, slots: 64 },
      onHandlerError: (e) => errors.push(e),
    });
    try {
      rt.memBatch(64, 10);                       // a good batch first
      (rt.handler.exports as unknown as Evil).set_mode(mode);
      rt.memBatch(64, 10);                       // the bad one
      (rt.handler.exports as unknown as Evil).set_mode(0);
      rt.memBatch(64, 10);                       // the host still serves
      rt.memBatch(64, 10);
      const acks = rt.takeReplies().map((r) => Number(r.data.toString()));
      return { errors, acks, stats: rt.stats() };
    } finally {
      rt.close();
    }
  }

  it("a ring head far outside the ring: a handler error, the slots taken back, serving goes on", () => {
    const { errors, acks } = run(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(HandlerError);
    expect(errors[0].message).toMatch(/head to 5000, outside its slots/);
    expect(acks).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it("a bogus buffer index written into a slot: reported and restored", () => {
    const { errors, acks } = run(2);
    expect(errors.map((e) => e.message).join("\n")).toMatch(/changed RX ring 0 slot \d+ buffer from \d+ to 999999; restored/);
    expect(acks).toHaveLength(30);
  });

  it("logging a buffer that is not the handler's: the host refuses it and says why", () => {
    const { errors, acks } = run(3);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(HandlerTrapError);
    expect(errors[0].message).toMatch(/log: extent 0 \(buffer 999999, offset 0, length 16\) is outside the pool/);
    expect(acks).toHaveLength(30);
  });

  it("abort: the handler's message, file and line", () => {
    const { errors, acks } = run(4);
    expect(errors).toHaveLength(1);
    const e = errors[0] as PasteError;
    expect(e.code).toBe("PASTE_ERR_HANDLER_TRAP");
    expect(e.message).toMatch(/aborted: the handler gave up on purpose at evil\.ts:13:\d+/);
    expect(e.detail).toMatchObject({ message: "the handler gave up on purpose", file: "evil.ts", line: 13 });
    expect(acks).toHaveLength(30);
  });

  it("a bare abort: paste-host build adds the file and line (host/core/abortsite.ts)", () => {
    const { errors, acks } = run(7);
    expect(errors[0].message).toMatch(/aborted: no location given at evil\.ts:14:\d+/);
    expect((errors[0] as PasteError).detail).toMatchObject({ message: "no location given", file: "evil.ts", line: 14 });
    expect(acks).toHaveLength(30);
  });

  it("a copied reply of 1 GiB: refused with an error the handler sees, nothing allocated for it", () => {
    const rss = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
    const before = rss();
    const { errors, acks } = run(8);
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toMatch(/reply: 1073741824 bytes would take this batch's copied replies past 64 MiB; send large answers by reference/);
    expect(acks).toHaveLength(30);
    // the host copied none of it: its peak memory grew by far less than the reply
    expect(rss() - before).toBeLessThan(256 << 20);
  });

  it("unreachable and an out-of-bounds store: a trap report, and serving goes on", () => {
    for (const mode of [5, 6]) {
      const { errors, acks } = run(mode);
      expect(errors).toHaveLength(1);
      expect(errors[0].message).toMatch(mode === 5 ? /trapped: unreachable/ : /trapped: memory access out of bounds/);
      expect(acks).toHaveLength(30);
    }
  });
});
