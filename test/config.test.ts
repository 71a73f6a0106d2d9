// A handler's config: bytes given with the module (run --handler-config,
// deploy --config, the multipart POST /v1/handler) that the handler reads in
// on_init. kv-wal takes redis.conf lines and answers CONFIG GET with what it
// read, and a bulk over its proto-max-bulk-len with Redis's protocol error,
// so a client sees the config at work. The config goes with its module: a
// restart serves the pair that served last, a rollback the pair before.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openHandler, type Harness } from "../host/tools/harness.js";
import { converse } from "./fuzz/wire.js";
import { root, runCli, scratchDir, startServer, type Server } from "./helpers.js";

const kvWal = join(root, "samples", "kv-wal", "kv-wal.wasm");
const sha = (b: string | Uint8Array) => createHash("sha256").update(b).digest("hex");
const resp = (...args: string[]) => Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);

const running: Server[] = [];
let harness: Harness | undefined;
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop("SIGKILL");
  harness?.close();
  harness = undefined;
});

/** limit -- what kv-wal answers CONFIG GET proto-max-bulk-len with, over the port. */
async function limit(port: number): Promise<string> {
  const c = await converse(port, [resp("CONFIG", "GET", "proto-max-bulk-len")]);
  const m = /^\*2\r\n\$18\r\nproto-max-bulk-len\r\n\$\d+\r\n(\d+)\r\n$/.exec(c.data.toString());
  if (!m) throw new Error(`CONFIG GET answered ${JSON.stringify(c.data.toString())}`);
  return m[1];
}

function cli(args: string[]): { stdout: string; stderr: string } {
  const r = runCli(args);
  expect(r.status, r.out).toBe(0);
  return r;
}

async function start(pool: string, handler?: string, extra: string[] = []): Promise<Server> {
  const s = await startServer({ pool, handler: handler as string, extra });
  running.push(s);
  return s;
}

describe("handler config", () => {
  it("the handler reads it over a real port; a restart keeps it; a deploy changes it; a rollback brings back the one before", async () => {
    const dir = scratchDir("shm");
    const pool = join(dir, "kv.pool");
    const small = join(dir, "small.conf");
    const large = join(dir, "large.conf");
    writeFileSync(small, "# kv-wal, for tests\nproto-max-bulk-len 100\n");
    writeFileSync(large, "proto-max-bulk-len 1kb\n");

    let s = await start(pool, kvWal, ["--handler-config", small]);
    expect(await limit(s.port)).toBe("100");
    // within the limit: stored; over it: Redis's protocol error, and the connection closed
    expect((await converse(s.port, [resp("SET", "k", "v".repeat(100))])).data.toString()).toBe("+OK\r\n");
    const over = await converse(s.port, [resp("SET", "k2", "v".repeat(101))]);
    expect([over.data.toString(), over.closed]).toEqual(["-ERR Protocol error: invalid bulk length\r\n", true]);
    const status = JSON.parse(cli(["status", "--pool", pool, "--json"]).stdout);
    expect(status.handler.config).toEqual({ size: readFileSync(small).length, sha256: sha(readFileSync(small)) });
    expect(cli(["status", "--pool", pool]).stdout).toMatch(new RegExp(`^config +${readFileSync(small).length} bytes, sha256 ${sha(readFileSync(small)).slice(0, 16)}`, "m"));
    expect(await s.stop()).toBe(0);

    // a restart without --handler serves the module with the config it served with
    s = await start(pool);
    expect(s.output()).toMatch(/the handler that served last: run .*, with the config it served with\)/);
    expect(await limit(s.port)).toBe("100");

    // a deploy carries its own config; the value set before is still there
    const d = cli(["deploy", kvWal, "--pool", pool, "--config", large]);
    const [nSmall, nLarge] = [readFileSync(small).length, readFileSync(large).length];
    expect(d.stdout).toMatch(new RegExp(`^deployed  kv-wal\\.wasm \\(.*config ${nLarge} bytes, sha256 [0-9a-f]{16}\\.\\.\\.\\)\nreplacing .*config ${nSmall} bytes`));
    expect(await limit(s.port)).toBe("1024");
    expect((await converse(s.port, [resp("SET", "k3", "w".repeat(1000))])).data.toString()).toBe("+OK\r\n");
    expect((await converse(s.port, [resp("GET", "k")])).data.toString()).toBe(`$100\r\n${"v".repeat(100)}\r\n`);
    const list = JSON.parse(cli(["handlers", "list", "--pool", pool, "--json"]).stdout);
    expect(list.map((e: { how: string; config: { sha256: string } | null }) => [e.how, e.config?.sha256]))
      .toEqual([["run", sha(readFileSync(small))], ["deploy", sha(readFileSync(large))]]);

    // the same module, so only the config tells the two apart: rollback restores the one before
    const back = cli(["rollback", "--pool", pool]);
    expect(back.stdout).toMatch(new RegExp(`^back to +\\S*kv-wal\\.wasm .*config ${nSmall} bytes`));
    expect(await limit(s.port)).toBe("100");
    // a value taken under the larger limit is replayed, not dropped, under the smaller one
    expect((await converse(s.port, [resp("GET", "k3")])).data.toString()).toBe(`$1000\r\n${"w".repeat(1000)}\r\n`);
    expect(await s.stop()).toBe(0);
    s = await start(pool);
    expect(await limit(s.port)).toBe("100");
  }, 120_000);

  it("an oversize config is refused with PASTE_ERR_HANDLER_CONFIG by run, deploy and the admin API; a config the handler rejects fails the deploy", async () => {
    const dir = scratchDir("shm");
    const pool = join(dir, "kv.pool");
    const big = join(dir, "big.conf");
    writeFileSync(big, Buffer.alloc((1 << 20) + 1, 0x23));   // '#' lines: only its size is wrong

    const r = runCli(["run", "--pool", pool, "--handler", kvWal, "--handler-config", big, "--listen", "tcp://127.0.0.1:0", "--create-size", "16M"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`paste-host: PASTE_ERR_HANDLER_CONFIG: the handler config ${big} is 1048577 bytes, over the 1024 KiB limit`);

    const s = await start(pool, kvWal);
    const d = runCli(["deploy", kvWal, "--pool", pool, "--config", big]);
    expect([d.status, d.stderr]).toEqual([1, expect.stringContaining("PASTE_ERR_HANDLER_CONFIG")]);

    // the same over HTTP: multipart, the config part one byte over the limit
    const { url } = JSON.parse(readFileSync(`${pool}.admin`, "utf8"));
    const auth = { Authorization: `Bearer ${readFileSync(`${pool}.token`, "utf8").trim()}` };
    const form = new FormData();
    form.append("module", new Blob([readFileSync(kvWal)]), "kv-wal.wasm");
    form.append("config", new Blob([readFileSync(big)]), "big.conf");
    const res = await fetch(`${url}/v1/handler`, { method: "POST", body: form, headers: auth });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "PASTE_ERR_HANDLER_CONFIG", message: expect.stringContaining("over the 1 MiB limit") });

    // a config the handler refuses in on_init: the deploy fails, naming the line, and nothing changed
    const bad = join(dir, "bad.conf");
    writeFileSync(bad, "proto-max-bulk-len 1mb\nmaxmemory 100mb\n");
    const f = runCli(["deploy", kvWal, "--pool", pool, "--config", bad]);
    expect(f.status).toBe(1);
    expect(f.stderr).toMatch(/PASTE_ERR_DEPLOY_FAILED: .*kv-wal config, line 2: unknown directive 'maxmemory'/);
    expect(await limit(s.port)).toBe(String(512 * 1024 * 1024));
    const text = new FormData();   // a config may also be a text field: curl -F config='...'
    text.append("module", new Blob([readFileSync(kvWal)]), "kv-wal.wasm");
    text.append("config", "proto-max-bulk-len 2k\n");
    const ok = await fetch(`${url}/v1/handler`, { method: "POST", body: text, headers: auth });
    expect(ok.status).toBe(200);
    // 23 bytes, not 22: multipart makes a text field's line ends CRLF (a file part keeps its bytes)
    expect((await ok.json()).handler).toMatchObject({ name: "kv-wal.wasm", config: { size: 23 } });
    expect(await limit(s.port)).toBe("2000");
  }, 120_000);

  it("paste-host/testing gives the handler its config, and a restart keeps it", async () => {
    harness = await openHandler(kvWal, { config: "proto-max-bulk-len 20\n" });
    const c = harness.connect();
    expect(c.send(resp("SET", "a", "v".repeat(20))).text()).toBe("+OK\r\n");
    expect(c.send(resp("SET", "b", "v".repeat(21))).text()).toBe("-ERR Protocol error: invalid bulk length\r\n");
    harness.restart();
    expect(harness.connect().send(resp("CONFIG", "GET", "proto-max-bulk-len")).text()).toBe("*2\r\n$18\r\nproto-max-bulk-len\r\n$2\r\n20\r\n");
  }, 60_000);
});
