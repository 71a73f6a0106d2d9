// helpers.ts -- scratch pools that are removed even when a test fails, and a
// way to run the real CLI the way a user does.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach } from "vitest";

export const root = resolve(__dirname, "..");
export const cliPath = join(root, "dist", "host", "cli.js");

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

/** scratchDir -- a fresh directory on tmpfs ("shm", emulated NVMM) or on disk; removed after the test. */
export function scratchDir(where: "shm" | "disk"): string {
  const parent = where === "shm" ? "/dev/shm" : tmpdir();
  const d = mkdtempSync(join(parent, "paste-test-"));
  dirs.push(d);
  return d;
}

/** runCli -- run `paste-host ARGS` as a separate process; returns status and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): SpawnSyncReturns<string> & { out: string } {
  const r = spawnSync(process.execPath, [cliPath, ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: timeoutMs,
  });
  return Object.assign(r, { out: `${r.stdout}${r.stderr}` });
}

/** watModule -- compile a .wat file from test/fixtures with wabt. */
export async function watModule(name: string): Promise<WebAssembly.Module> {
  const { readFileSync } = await import("node:fs");
  const wabt = await (await import("wabt")).default();
  const text = readFileSync(join(root, "test", "fixtures", name), "utf8");
  const mod = wabt.parseWat(name, text);
  try {
    return new WebAssembly.Module(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

/**
 * buildFixture -- compile test/fixtures/handlers/NAME.ts with `paste-host build`
 * settings, cached by the hash of the source and the SDK (asc takes seconds).
 */
export async function buildFixture(name: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  const { existsSync, mkdirSync, readdirSync, readFileSync } = await import("node:fs");
  const { buildHandler } = await import("../host/core/build.js");
  const src = join(root, "test", "fixtures", "handlers", `${name}.ts`);
  const h = createHash("sha256").update(readFileSync(src));
  for (const f of readdirSync(join(root, "assembly")).sort()) h.update(f).update(readFileSync(join(root, "assembly", f)));
  h.update(readFileSync(join(root, "host", "core", "build.ts"))).update(readFileSync(join(root, "asconfig.json")));
  const dir = join(root, ".test-results", "handlers");
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${name}-${h.digest("hex").slice(0, 16)}.wasm`);
  if (!existsSync(out)) {
    // test files build in parallel: publish the module whole, by rename
    const { renameSync } = await import("node:fs");
    const tmp = `${out}.${process.pid}.tmp`;
    await buildHandler(src, tmp);
    renameSync(tmp, out);
  }
  return out;
}

/**
 * buildVariant -- a sample's source with textual patches, built like
 * buildFixture (cached by the patched text): "a new build of the same
 * handler", or one that misbehaves on cue. Each patch must apply.
 */
export async function buildVariant(name: string, base: string, patches: [string, string][]): Promise<string> {
  const { createHash } = await import("node:crypto");
  const { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } = await import("node:fs");
  const { buildHandler } = await import("../host/core/build.js");
  let src = readFileSync(join(root, base), "utf8");
  for (const [from, to] of patches) {
    if (!src.includes(from)) throw new Error(`buildVariant ${name}: ${base} no longer contains ${JSON.stringify(from)}`);
    src = src.replace(from, to);
  }
  const h = createHash("sha256").update(src);
  for (const f of readdirSync(join(root, "assembly")).sort()) h.update(f).update(readFileSync(join(root, "assembly", f)));
  h.update(readFileSync(join(root, "host", "core", "build.ts"))).update(readFileSync(join(root, "asconfig.json")));
  const dir = join(root, ".test-results", "handlers");
  const tag = `${name}-${h.digest("hex").slice(0, 16)}`;
  const out = join(dir, `${tag}.wasm`);
  if (!existsSync(out)) {
    mkdirSync(join(dir, "src"), { recursive: true });
    const file = join(dir, "src", `${tag}.ts`);
    writeFileSync(file, src);
    const tmp = `${out}.${process.pid}.tmp`;
    await buildHandler(file, tmp);
    renameSync(tmp, out);
  }
  return out;
}

// ------------------------------------------------------------------ servers

import type { ChildProcess } from "node:child_process";
import { afterAll } from "vitest";
import { spawnHost, type SpawnedHost } from "../host/server/spawn.js";

const servers: ChildProcess[] = [];
afterAll(() => {
  for (const c of servers.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

export type Server = SpawnedHost;

/** startServer -- `paste-host run` on a free loopback port; killed after the file's tests if still running. */
export async function startServer(args: { pool: string; handler: string; extra?: string[]; createSize?: string; env?: NodeJS.ProcessEnv }): Promise<Server> {
  const s = await spawnHost(args);
  servers.push(s.child);
  return s;
}

/**
 * haveProgram -- is an outside program installed? Under CI=true a missing one
 * fails the test (CI installs it); elsewhere the test is skipped, naming the
 * Debian package to install.
 */
export function haveProgram(name: string, pkg: string, ctx: { skip: (note?: string) => void }): void {
  const r = spawnSync("sh", ["-c", `command -v ${name}`]);
  if (r.status !== 0) missing(`${name} is not installed (apt-get install -y ${pkg})`, ctx);
}

/** haveFile -- haveProgram for a program a test runs by its path (Debian's /usr/bin/chromium). */
export function haveFile(path: string, pkg: string, ctx: { skip: (note?: string) => void }): void {
  if (!existsSync(path)) missing(`${path} is missing (apt-get install -y ${pkg})`, ctx);
}

function missing(msg: string, ctx: { skip: (note?: string) => void }): void {
  if (process.env.CI) throw new Error(`${msg}; CI must install it in .ci/run`);
  console.warn(`skipped: ${msg}`);
  ctx.skip(msg);
}

/** until -- poll a condition every 25 ms; throws "timed out" after ms. */
export async function until(what: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** memRequest -- the mem port's request k: k as a little-endian u64, then bytes (k * 31 + i) & 0xff. */
export function memRequest(k: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = i < 8 ? Number((BigInt(k) >> BigInt(8 * i)) & 0xffn) : (k * 31 + i) & 0xff;
  return b;
}

/**
 * threads -- what each thread of process pid is doing: name, state, the
 * kernel function it waits in and (as root) its kernel stack. For the
 * message of a test that finds a host no longer answering: it tells a
 * thread stuck in the kernel (an exit that waits for io_uring requests to
 * be cancelled) from one spinning in a handler or a wait in JavaScript.
 */
export function threads(pid: number | undefined): string {
  if (!pid) return "(no process)";
  const read = (f: string): string => { try { return readFileSync(f, "utf8").trim(); } catch { return "?"; } };
  let tids: string[];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { return `(process ${pid} is gone)`; }
  return tids.map((t) => {
    const d = `/proc/${pid}/task/${t}`;
    const state = read(`${d}/stat`).replace(/^.*\) /, "").split(" ")[0];
    const stack = read(`${d}/stack`).split("\n").slice(0, 8).map((l) => l.replace(/^\[<0>\] /, "")).join(" < ");
    return `${t} ${read(`${d}/comm`)} ${state} wchan=${read(`${d}/wchan`)} ${stack}`;
  }).join("\n");
}
