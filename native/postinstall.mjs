// postinstall.mjs -- what `npm install` builds, which depends on where the
// package sits:
//
//   - installed (from the registry or a packed tarball): only the native
//     library, with the system C compiler. The JavaScript (dist/) and the
//     sample modules were built when the package was packed (`prepack`), and
//     what would rebuild them (typescript, a devDependency) is not installed.
//   - a source checkout (`npm ci` in the repository): everything, for
//     development: the native library, the TypeScript and the samples.
//
// tsconfig.json tells them apart: it is in the repository but not in the
// tarball (package.json "files"). `prepare` would not do: npm runs it on
// `npm pack` as well, after prepack, which would build everything twice.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const checkout = existsSync(join(root, "tsconfig.json"));
const npm = process.env.npm_execpath;

/** run -- one build step; exit with its status if it fails (npm then reports the install failed). */
function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.error) {
    console.error(`paste-host: cannot run ${cmd}: ${r.error.message}`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run(process.execPath, [join(root, "native", "build.mjs")]);
if (checkout) {
  // npm_execpath is npm's own CLI script, so this works whichever npm ran us
  const viaNpm = (script) => (npm ? run(process.execPath, [npm, "run", script]) : run("npm", ["run", script]));
  viaNpm("build:ts");
  viaNpm("build:samples");
}
