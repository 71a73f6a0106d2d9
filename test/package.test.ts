// SLOW (a minute or two: npm pack, then two npm installs from the registry):
// the package as a user gets it. The repository is copied (the files git
// knows, no build output), packed there with `npm pack` (so prepack really
// builds the JavaScript, and the build here is not disturbed while other test
// files use dist/), and the tarball installed into a fresh project; then
// `paste-host init` makes a handler project from it, whose own `npm install
// && npm test` must pass. (test/init.test.ts runs every template's tests
// against this checkout, without the installs.)
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { root } from "./helpers.js";
import { packRepository, sh } from "./projects.js";

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
      "native/build.mjs", "native/postinstall.mjs", "assembly/index.ts", "asconfig.json", "LICENSE", "README.md",
      "samples/kv-wal/kv-wal.ts", "samples/kv-wal/kv-wal.wasm", "host/server/console/index.html", "native/port_uring.c",
      "samples/templates/blank/handler.ts"]) {
      expect(files, f).toContain(f);
    }
    // host/ ships only the console's page (HTML, CSS, ES modules), never TypeScript sources
    const unwanted = files.filter((f) => /^native\/build\/|\.o$|\.so$|^test\/|^host\/(?!server\/console\/[^/]+\.(html|css|js)$)|^tsconfig\.json$|^node_modules\//.test(f));
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

  it("paste-host init makes a project whose npm install && npm test pass, and that builds its handler", () => {
    sh("npx", ["paste-host", "init", "my-handler", "--paste-host-spec", `file:${tgz}`], app);
    const proj = join(app, "my-handler");
    sh("npm", ["install", "--no-audit", "--no-fund"], proj);
    const test = sh("npm", ["test"], proj, { timeoutMs: 400_000 });
    expect(test.out).toMatch(/Tests\s+3 passed/);
    sh("npm", ["run", "build"], proj);
    expect(existsSync(join(proj, "build", "handler.wasm"))).toBe(true);
  }, 600_000);

  it("without a C compiler, the install fails saying which Debian/Ubuntu packages to add", () => {
    const r = sh("npm", ["rebuild", "paste-host"], app, { env: { CC: join(work, "no-such-cc") }, mayFail: true });
    expect(r.status).not.toBe(0);
    expect(r.out).toContain("no C compiler found");
    expect(r.out).toContain("apt-get install -y gcc make");
  }, 120_000);
});
