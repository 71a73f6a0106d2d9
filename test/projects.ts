// projects.ts -- npm projects in scratch directories, for the tests of what a
// user gets: the packed package (package.test.ts) and `paste-host init`
// (init.test.ts). Not a test file: the helpers only.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { root } from "./helpers.js";

/**
 * cleanEnv -- this process's environment without what `npm test` and vitest
 * put in it (npm_config_*, VITEST_*, FORCE_COLOR): the npm and vitest run below must
 * behave as they do for a user at a shell.
 */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_|VITEST|NODE_OPTIONS$|NODE_ENV$|TEST$|FORCE_COLOR$)/i.test(k)) env[k] = v;
  }
  return { ...env, NO_COLOR: "1", ...extra };   // plain output, to match against
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
