// build.mjs -- `npm install` runs this (native/postinstall.mjs): build native/build/libpaste.so with the
// system C compiler, or say plainly what is missing.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const cc = process.env.CC || "cc";

function have(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: "ignore" });
  return !r.error && r.status === 0;
}

if (!have(cc, ["--version"])) {
  console.error(
    `paste-host: no C compiler found (tried '${cc}').\n` +
      `  The native library in native/ is plain C11 and needs one to build.\n` +
      `  On Debian/Ubuntu: apt-get install -y gcc make   (or set CC to your compiler)\n` +
      `  then run: npm rebuild paste-host   (in a checkout of the repository: npm run build)`,
  );
  process.exit(1);
}
if (!have("make", ["--version"])) {
  console.error(
    "paste-host: 'make' not found; it drives the native build.\n" +
      "  On Debian/Ubuntu: apt-get install -y gcc make\n" +
      "  then run: npm rebuild paste-host   (in a checkout of the repository: npm run build)",
  );
  process.exit(1);
}
const uring = spawnSync(cc, ["-E", "-x", "c", "-"], { input: "#include <liburing.h>\n", stdio: ["pipe", "ignore", "ignore"] });
if (uring.status !== 0) {
  console.error(
    "paste-host: liburing not found: building without the io_uring engine (the epoll engine serves).\n" +
      "  On Debian/Ubuntu: apt-get install -y liburing-dev   then run: npm run build",
  );
}
// Objects built before the Makefile recorded header dependencies (-MMD) have
// no .d beside them, so make could not tell that a header changed under them:
// build those again rather than link objects that disagree on a struct.
const out = join(here, "build");
if (existsSync(out)) {
  for (const f of readdirSync(out).filter((n) => n.endsWith(".o"))) {
    if (!existsSync(join(out, f.replace(/\.o$/, ".d")))) rmSync(join(out, f));
  }
}
const r = spawnSync("make", ["-C", here, `CC=${cc}`], { stdio: "inherit" });
if (r.status !== 0) {
  console.error("paste-host: the native build failed (see the compiler output above).");
  process.exit(r.status ?? 1);
}
