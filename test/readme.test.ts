// Docs are part of the product: docs/errors.md lists every code in the
// catalogue, the README's quick start names the two commands, and every
// relative link in the README and docs/ lands on a file in the repository
// (and on a heading there, when it names one).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { catalogue } from "../host/core/errors.js";
import { root } from "./helpers.js";

const readme = readFileSync(join(root, "README.md"), "utf8");
const docs = [join(root, "README.md"), ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => join(root, "docs", f))];

/** anchors -- GitHub's ids for a Markdown file's headings. */
function anchors(file: string): Set<string> {
  const text = readFileSync(file, "utf8").replace(/```[\s\S]*?```/g, "");
  return new Set([...text.matchAll(/^#+ (.+)$/gm)].map((m) =>
    m[1].trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-")));
}

describe("docs", () => {
  it("docs/errors.md lists every error code in its table, and no other", () => {
    const table = readFileSync(join(root, "docs", "errors.md"), "utf8");
    const rows = new Set([...table.matchAll(/^\| `(PASTE_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]));
    const missing = catalogue.map((c) => c.code).filter((c) => !rows.has(c));
    expect(missing).toEqual([]);
    const unknown = [...rows].filter((r) => !catalogue.some((c) => c.code === r));
    expect(unknown).toEqual([]);
  });

  it("the README has the two-command quick start", () => {
    expect(readme).toContain("npm install && npm start");
    expect(readme).toContain("npm test");
  });

  it("every relative link in the README and docs/ resolves inside the repository", () => {
    const broken: string[] = [];
    for (const file of docs) {
      const text = readFileSync(file, "utf8").replace(/```[\s\S]*?```/g, "");
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = m[1];
        if (/^[a-z]+:/.test(link)) continue;   // http:, https:, mailto:
        const [path, anchor] = link.split("#");
        const target = path ? join(dirname(file), path) : file;
        const where = `${relative(root, file)}: ${link}`;
        if (relative(root, target).startsWith("..")) broken.push(`${where} leaves the repository`);
        else if (!existsSync(target)) broken.push(`${where} names no file`);
        else if (anchor && target.endsWith(".md") && !anchors(target).has(anchor)) broken.push(`${where} names no heading`);
      }
    }
    expect(broken).toEqual([]);
  });
});
