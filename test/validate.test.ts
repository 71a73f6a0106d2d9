// Validation before anything changes: a table of modules that are not
// handlers this host can run, each refused with its own message by
// `paste-host validate` (exit 1), and a real sample accepted.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { root, runCli, scratchDir } from "./helpers.js";

type Wabt = Awaited<ReturnType<typeof import("wabt")["default"]>>;
let wabt: Wabt;
beforeAll(async () => {
  wabt = await (await import("wabt")).default();
});

const ok = `(import "env" "memory" (memory 32769))`;
const abi = (v: number) => `(func (export "paste_abi_version") (result i32) i32.const ${v})`;
const onRx = `(func (export "on_rx") (param i32))`;

describe("paste-host validate", () => {
  it("accepts a sample and prints what it found", () => {
    const r = runCli(["validate", join(root, "samples", "kv-wal", "kv-wal.wasm")]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/a valid handler, ABI 1, \d+ bytes, sha256 [0-9a-f]{64}/);
    expect(r.stdout).toMatch(/static data from 0x8/);
    const j = JSON.parse(runCli(["validate", join(root, "samples", "kv-wal", "kv-wal.wasm"), "--json"]).stdout);
    expect(j).toMatchObject({ abi: 1, memoryMinPages: expect.any(Number) });
    expect(j.dataStart).toBeGreaterThanOrEqual(0x80000000);
  });

  const cases: [string, () => Buffer, RegExp][] = [
    ["garbage bytes", () => Buffer.from("definitely not wasm"), /not a WebAssembly module \(no \\0asm header\)/],
    ["a truncated module", () => readFileSync(join(root, "samples", "kv-wal", "kv-wal.wasm")).subarray(0, 3000), /\(truncated or malformed\): .*extends past end/],
    ["a module over the size limit", () => Buffer.concat([Buffer.from("\0asm\x01\0\0\0"), Buffer.alloc(17 << 20)]), /larger than the 16 MiB handler limit/],
    ["an import outside the allowed list", () => wat(`(module (import "env" "fd_write" (func)) ${ok} ${abi(1)} ${onRx})`), /import env\.fd_write is not allowed/],
    ["its own memory instead of the host's", () => wat(`(module (memory 1) ${abi(1)} ${onRx})`), /memory layout: the module defines its own memory; a handler must import env\.memory/],
    ["no memory at all", () => wat(`(module ${abi(1)} ${onRx})`), /memory layout: the module does not import env\.memory/],
    ["static data inside the pool window", () => wat(`(module ${ok} (data (i32.const 4194304) "x") ${abi(1)} ${onRx})`), /memory layout: static data at 0x00400000 would overlap the pool window \[0x00200000, 0x80000000\)/],
    ["no on_rx export", () => wat(`(module ${ok} ${abi(1)})`), /no on_rx export/],
    ["no ABI export", () => wat(`(module ${ok} ${onRx})`), /no paste_abi_version export; build handlers with `paste-host build`/],
    ["a future ABI version", () => wat(`(module ${ok} ${abi(2)} ${onRx})`), /built for handler ABI 2; this host speaks 1/],
  ];
  function wat(text: string): Buffer {
    const m = wabt.parseWat("t.wat", text);
    try {
      return Buffer.from(m.toBinary({}).buffer);
    } finally {
      m.destroy();
    }
  }
  for (const [what, make, message] of cases) {
    it(`refuses ${what}`, () => {
      const file = join(scratchDir("shm"), "h.wasm");
      writeFileSync(file, make());
      const r = runCli(["validate", file]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^paste-host: PASTE_ERR_HANDLER_INVALID: /);
      expect(r.stderr).toMatch(message);
    });
  }
});
