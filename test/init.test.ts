// `paste-host init`: every template makes a project whose handler
// type-checks (tsc with AssemblyScript's types, 0 errors) and whose tests
// pass. The project is wired to this checkout through a node_modules of
// symlinks, so no install is needed; test/package.test.ts does the same from
// the packed tarball with a real `npm install`, for one template.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TEMPLATES } from "../host/tools/scaffold.js";
import { root, runCli, scratchDir } from "./helpers.js";
import { sh } from "./projects.js";

/** project -- `paste-host init` into a scratch directory, its node_modules pointing at this checkout. */
function project(template: string): string {
  const dir = join(scratchDir("disk"), "proj");
  const r = runCli(["init", dir, "--template", template]);
  expect(r.status, r.out).toBe(0);
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(root, join(dir, "node_modules", "paste-host"), "dir");
  for (const m of ["vitest", "typescript", "assemblyscript"]) symlinkSync(join(root, "node_modules", m), join(dir, "node_modules", m), "dir");
  return dir;
}

describe("paste-host init", () => {
  for (const template of Object.keys(TEMPLATES)) {
    it(`--template ${template}: the handler type-checks and its tests pass`, () => {
      const dir = project(template);
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
      expect(Object.keys(pkg.scripts)).toEqual(expect.arrayContaining(["build", "test", "dev", "deploy"]));
      expect(pkg.dependencies["paste-host"]).toBe(`^${JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version}`);
      const tsc = sh(process.execPath, [join(dir, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", "tsconfig.json"], dir, { mayFail: true });
      expect(tsc.status, tsc.out).toBe(0);
      const vitest = sh(process.execPath, [join(dir, "node_modules", "vitest", "vitest.mjs"), "run"], dir, { mayFail: true });
      expect(vitest.status, vitest.out).toBe(0);
      expect(vitest.out).toMatch(/Tests\s+3 passed/);
    }, 300_000);
  }

  it("a type error in the handler is one tsc reports with its file and line", () => {
    const dir = project("blank");
    writeFileSync(join(dir, "assembly", "handler.ts"), `${readFileSync(join(dir, "assembly", "handler.ts"), "utf8")}\nconst oops: u32 = "text";\n`);
    const tsc = sh(process.execPath, [join(dir, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", "tsconfig.json"], dir, { mayFail: true });
    expect(tsc.status).not.toBe(0);
    expect(tsc.out).toMatch(/assembly\/handler\.ts\(\d+,\d+\): error TS2322/);
  });

  it("refuses a directory that is not empty, and an unknown template, with usage errors", () => {
    const dir = scratchDir("disk");
    writeFileSync(join(dir, "keep.txt"), "mine");
    const full = runCli(["init", dir]);
    expect(full.status).toBe(2);
    expect(full.stderr).toContain("exists and is not empty");
    expect(readFileSync(join(dir, "keep.txt"), "utf8")).toBe("mine");
    const bad = runCli(["init", join(dir, "new"), "--template", "nope"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("Allowed choices are blank, kv, http, frames");
  });
});
