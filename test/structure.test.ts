// The shape of the code, checked: the native library's layers (native/layers.mjs,
// also run by the build: no C file calls a function of a file above it, checked
// on the real objects), host/ folders by role, and sizes a reader can take in.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
// @ts-expect-error -- a plain ESM script without types
import { LAYERS, check } from "../native/layers.mjs";
import { root } from "./helpers.js";

const build = join(root, "native", "build");

describe("native layers", () => {
  it("the built objects call only downward", () => {
    expect(check(build)).toEqual([]);
  });

  it("the check names every upward call when the order is turned around", () => {
    const upsideDown = [...(LAYERS as string[][])].reverse();
    const bad: string[] = check(build, upsideDown);
    expect(bad.length).toBeGreaterThan(10);
    expect(bad).toContainEqual(expect.stringMatching(/^imports\.c \(layer \d+\) uses paste_log_append of log\.c/));
    expect(bad).toContainEqual(expect.stringMatching(/^log\.c .* uses paste_set_error of error\.c/));
  });
});

// host/ by role: the core imports nothing of the server, the server nothing
// of the tools, and only cli.ts and host/cli/ see everything.
describe("host folders", () => {
  const ROLES = ["core", "server", "tools", "cli"];
  it("each folder imports only the folders below it", async () => {
    const { readdirSync, readFileSync } = await import("node:fs");
    const bad: string[] = [];
    ROLES.forEach((role, rank) => {
      for (const f of readdirSync(join(root, "host", role)).filter((n) => n.endsWith(".ts"))) {
        const text = readFileSync(join(root, "host", role, f), "utf8");
        for (const m of text.matchAll(/from "\.\.\/([a-z]+)\//g)) {
          if (ROLES.indexOf(m[1]) > rank) bad.push(`host/${role}/${f} imports from host/${m[1]}/`);
        }
      }
    });
    expect(bad).toEqual([]);
  });
});

// A reader can take in any host/ file and any function in it: no file over
// 600 lines, no function over 80.
describe("host sizes", () => {
  it("no host/ file over 600 lines, no function over 80", async () => {
    const ts = (await import("typescript")).default;
    const { readdirSync, readFileSync } = await import("node:fs");
    const files = (readdirSync(join(root, "host"), { recursive: true }) as string[]).filter((f) => f.endsWith(".ts"));
    const big: string[] = [];
    for (const f of files) {
      const src = ts.createSourceFile(f, readFileSync(join(root, "host", f), "utf8"), ts.ScriptTarget.ES2022, true);
      const lineOf = (pos: number) => src.getLineAndCharacterOfPosition(pos).line + 1;
      if (lineOf(src.end) > 600) big.push(`host/${f}: ${lineOf(src.end)} lines`);
      const visit = (n: import("typescript").Node): void => {
        if (ts.isFunctionLike(n) && (n as { body?: unknown }).body) {
          const len = lineOf(n.end) - lineOf(n.getStart()) + 1;
          if (len > 80) big.push(`host/${f}:${lineOf(n.getStart())} ${(n as { name?: { getText(): string } }).name?.getText() ?? "a function"}: ${len} lines`);
        }
        ts.forEachChild(n, visit);
      };
      visit(src);
    }
    expect(big).toEqual([]);
  });
});

// The console's files are served from the package as it is installed: every
// one in the table exists, and package.json's `files` ships the folder.
describe("console files", () => {
  it("every console path has its file, and the package ships them", async () => {
    const { readFileSync } = await import("node:fs");
    const { CONSOLE_PATHS, consoleAsset } = await import("../host/server/console.js");
    for (const p of CONSOLE_PATHS) expect([p, (consoleAsset(p)?.body.length ?? 0) > 0]).toEqual([p, true]);
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    expect(pkg.files).toContain("host/server/console/");
    expect(Object.keys(pkg.dependencies)).toContain("uplot");   // served at run time, not a devDependency
  });
});
