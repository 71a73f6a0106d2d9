// run.mjs -- `npm run fuzz -- [--runs N] [--only NAME] [--seed S] [--path P] [--handler FILE.wasm]`:
// the differential and robustness properties of test/fuzz/, N cases each
// (default 10000), with a progress line every 5 % and, on a failure, the
// seed and path that replay it and the shrunk counterexample.
//
//   NAME     kv-wal, http-wal, admin, wal-append, boundary (a prefix of the file name)
//   --handler  run the kv-wal or http-wal property against your own build of
//              that handler (a .wasm speaking the same protocol), with --only
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const opts = { runs: "10000" };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const m = /^--(runs|only|seed|path|handler)$/.exec(args[i]);
  if (!m || i + 1 >= args.length) {
    console.error(`npm run fuzz: unknown or incomplete option ${args[i]}\nusage: npm run fuzz -- [--runs N] [--only NAME] [--seed S] [--path P] [--handler FILE.wasm]`);
    process.exit(2);
  }
  opts[m[1]] = args[++i];
}
if (!/^[1-9]\d*$/.test(opts.runs)) {
  console.error(`npm run fuzz: --runs takes a positive whole number, not ${opts.runs}`);
  process.exit(2);
}
const files = readdirSync(join(root, "test", "fuzz")).filter((f) => f.endsWith(".fuzz.test.ts") && (!opts.only || f.startsWith(opts.only)));
if (files.length === 0) {
  console.error(`npm run fuzz: no property matches --only ${opts.only}`);
  process.exit(2);
}
if (opts.handler && (!opts.only || files.length !== 1)) {
  console.error("npm run fuzz: --handler needs --only kv-wal or --only http-wal (the property the handler speaks)");
  process.exit(2);
}
const env = { ...process.env, PASTE_FUZZ_RUNS: opts.runs };
if (opts.seed !== undefined) env.PASTE_FUZZ_SEED = opts.seed;
if (opts.path !== undefined) env.PASTE_FUZZ_PATH = opts.path;
if (opts.handler !== undefined) env.PASTE_FUZZ_HANDLER = resolve(opts.handler);
const started = Date.now();
const r = spawnSync(process.execPath, [join(root, "node_modules", "vitest", "vitest.mjs"), "run", "--config", "test/vitest.config.ts",
  "--testTimeout=0", "--hookTimeout=120000", "--fileParallelism=false", ...files.map((f) => join("test", "fuzz", f))],
{ cwd: root, stdio: "inherit", env });
console.log(`npm run fuzz: ${files.join(", ")} at ${opts.runs} cases each: ${r.status === 0 ? "passed" : "FAILED"} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(r.status ?? 1);
