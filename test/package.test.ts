// SLOW (a minute or two: npm pack, then npm installs from the registry): the
// package as a user gets it. The repository is copied (the files git knows,
// no build output), packed there with `npm pack` (so prepack really builds
// the JavaScript, and the build here is not disturbed while other test files
// use dist/), and the tarball installed into a fresh project.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { root } from "./helpers.js";

/**
 * cleanEnv -- this process's environment without what `npm test` and vitest
 * put in it (npm_config_*, VITEST_*): the npm and vitest run below must
 * behave as they do for a user at a shell.
 */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_|VITEST|NODE_OPTIONS$|NODE_ENV$|TEST$)/i.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

/** sh -- a command in dir, output captured; throws with that output if it fails (unless allowed to). */
export function sh(cmd: string, args: string[], cwd: string, o: { env?: NodeJS.ProcessEnv; mayFail?: boolean; timeoutMs?: number } = {}):
  SpawnSyncReturns<string> & { out: string } {
  const r = spawnSync(cmd, args, { cwd, env: cleanEnv(o.env), encoding: "utf8", timeout: o.timeoutMs ?? 240_000 });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  if (!o.mayFail && r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} in ${cwd} failed (${r.error?.message ?? `status ${r.status}`}):\n${out}`);
  return Object.assign(r, { out });
}

/** packRepository -- the repository's files (tracked or new, never ignored ones) copied under work, packed; the tarball's path. */
export function packRepository(work: string): string {
  const src = join(work, "src");
  const files = sh("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], root).stdout.split("\0").filter(Boolean);
  for (const f of files) {
    mkdirSync(dirname(join(src, f)), { recursive: true });
    try {
      cpSync(join(root, f), join(src, f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;   // deleted in the work tree, not yet in git
    }
  }
  // the devDependencies prepack needs (typescript, assemblyscript), without a second install
  symlinkSync(join(root, "node_modules"), join(src, "node_modules"), "dir");
  sh("npm", ["pack", "--pack-destination", work], src);
  const tgz = readdirSync(work).find((f) => /^paste-host-.*\.tgz$/.test(f));
  if (!tgz) throw new Error(`npm pack left no paste-host-*.tgz in ${work}`);
  return join(work, tgz);
}

describe("the packed package", () => {
  let work = "";
  let tgz = "";
  let app = "";

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "paste-pack-"));
    tgz = packRepository(work);
    app = join(work, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  }, 240_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("carries the compiled JavaScript, the native sources, the SDK and LICENSE, and no build output or development files", () => {
    const files = sh("tar", ["tzf", tgz], work).stdout.split("\n").filter(Boolean).map((f) => f.replace(/^package\//, ""));
    for (const f of ["dist/host/cli.js", "dist/host/index.js", "dist/host/index.d.ts", "native/paste.h", "native/log.c", "native/Makefile",
      "native/build.mjs", "scripts/postinstall.mjs", "assembly/index.ts", "asconfig.json", "LICENSE", "README.md",
      "samples/kv-wal/kv-wal.ts", "samples/kv-wal/kv-wal.wasm"]) {
      expect(files, f).toContain(f);
    }
    const unwanted = files.filter((f) => /^native\/build\/|\.o$|\.so$|^test\/|^host\/|^tsconfig\.json$|^node_modules\//.test(f));
    expect(unwanted).toEqual([]);
  });

  it("installs into a fresh project, building only its native library, and runs", () => {
    const r = sh("npm", ["install", "--no-audit", "--no-fund", tgz], app);
    expect(r.out).not.toMatch(/tsc: not found/);
    const pkg = join(app, "node_modules", "paste-host");
    expect(readdirSync(join(pkg, "native", "build"))).toContain("libpaste.so");
    expect(() => readdirSync(join(app, "node_modules", "typescript"))).toThrow();   // a devDependency: not installed, not needed
    const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    expect(sh("npx", ["paste-host", "--version"], app).stdout.trim()).toBe(version);
    // the API opens a pool and serves the packaged sample, in the user's project
    const script = `import { Runtime } from "paste-host";
const rt = Runtime.open("${join(work, "app.pool")}", { handler: "${join(pkg, "samples", "kv-wal", "kv-wal.wasm")}", create: { size: 16 << 20 } });
rt.memRequest(Buffer.from("*1\\r\\n$4\\r\\nPING\\r\\n"));
rt.runBatch();
console.log(rt.takeReplies().map((x) => x.data.toString()).join(""));
rt.close();`;
    writeFileSync(join(app, "ping.mjs"), script);
    try {
      expect(sh(process.execPath, ["ping.mjs"], app).stdout).toBe("+PONG\r\n\n");
    } finally {
      rmSync(join(work, "app.pool"), { force: true });
    }
  }, 240_000);

  it("without a C compiler, the install fails saying which Debian/Ubuntu packages to add", () => {
    const r = sh("npm", ["rebuild", "paste-host"], app, { env: { CC: join(work, "no-such-cc") }, mayFail: true });
    expect(r.status).not.toBe(0);
    expect(r.out).toContain("no C compiler found");
    expect(r.out).toContain("apt-get install -y gcc make");
  }, 120_000);
});
