// Docs are part of the product: the README's error table lists every code in
// the catalogue, and its quick start names the two commands.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { catalogue } from "../host/core/errors.js";
import { root } from "./helpers.js";

const readme = readFileSync(join(root, "README.md"), "utf8");

describe("README", () => {
  it("lists every error code in its error table", () => {
    const rows = new Set([...readme.matchAll(/^\| `(PASTE_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]));
    const missing = catalogue.map((c) => c.code).filter((c) => !rows.has(c));
    expect(missing).toEqual([]);
    const unknown = [...rows].filter((r) => !catalogue.some((c) => c.code === r));
    expect(unknown).toEqual([]);
  });

  it("has the two-command quick start", () => {
    expect(readme).toContain("npm install && npm start");
    expect(readme).toContain("npm test");
  });
});
