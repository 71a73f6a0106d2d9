// helpers.ts -- scratch pools that are removed even when a test fails, and a
// way to run the real CLI the way a user does.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
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
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> & { out: string } {
  const r = spawnSync(process.execPath, [cliPath, ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 30_000,
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
