// The handler guide's code compiles. Every ```ts block of the README and of
// docs/handlers.md is one of three kinds, by the line before it:
//
//   (nothing)                   a handler, or an SDK snippet that is one: it
//                               must build with `paste-host build` (buildHandler)
//   <!-- host: WHAT -->         TypeScript for Node against the paste-host
//                               package (paste-host, paste-host/testing):
//                               type-checked with tsc, strict
//   <!-- fragment: WHY -->      a sketch that names things defined elsewhere:
//                               skipped, and the reason is required
//
// So a block is left out by a rule someone wrote down, never by accident,
// and a doc that drifts from the SDK fails here.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildHandler } from "../host/core/build.js";
import { root, scratchDir } from "./helpers.js";

const GUIDES = ["README.md", "docs/handlers.md"];

interface Block {
  where: string;
  kind: "handler" | "host" | "fragment" | "unknown";
  marker: string;
  code: string;
}

/** blocks -- the ```ts blocks of a Markdown text, each with the kind its marker gives it. */
export function blocks(text: string, file: string): Block[] {
  const lines = text.split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(`{3,})(\S*)\s*$/.exec(lines[i]);
    if (!fence) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith(fence[1]) && l.trim() === fence[1]);
    const close = end < 0 ? lines.length : end;
    if (fence[2] === "ts") {
      const before = (lines[i - 1] ?? "").trim();
      const m = /^<!--\s*([a-z]+)(?::\s*(.*?))?\s*-->$/.exec(before);
      const kind = !m ? "handler" : m[1] === "host" ? "host" : m[1] === "fragment" && m[2] ? "fragment" : "unknown";
      out.push({ where: `${file}:${i + 1}`, kind, marker: before, code: lines.slice(i + 1, close).join("\n") + "\n" });
    }
    i = close;
  }
  return out;
}

const all = GUIDES.flatMap((f) => blocks(readFileSync(join(root, f), "utf8"), f));

describe("the handler guide's code blocks", () => {
  it("each ```ts block is a handler, host code, or a fragment that says why", () => {
    expect(all.filter((b) => b.kind === "unknown").map((b) => `${b.where}: ${b.marker}`)).toEqual([]);
    // the guide's own handlers are there to be built (README's, the guide's, the config example)
    expect(all.filter((b) => b.kind === "handler").length).toBeGreaterThanOrEqual(3);
    // no other fence name for TypeScript slips past the rule
    const other = GUIDES.flatMap((f) => [...readFileSync(join(root, f), "utf8").matchAll(/^```(typescript|tsx?[ \t]+\S.*|assemblyscript|as)[ \t]*$/gm)]
      .map((m) => `${f}: \`\`\`${m[1]}`));
    expect(other).toEqual([]);
  });

  it("the rule is read as written: a marker without a reason, or an unknown one, is not a skip", () => {
    const b = blocks("<!-- fragment -->\n```ts\nx\n```\n<!-- later -->\n```ts\ny\n```\ntext\n```ts\nz\n```\n", "t.md");
    expect(b.map((x) => x.kind)).toEqual(["unknown", "unknown", "handler"]);
  });

  for (const b of all.filter((x) => x.kind === "handler")) {
    it(`${b.where} builds with paste-host build`, async () => {
      const dir = scratchDir("disk");
      const src = join(dir, "handler.ts");
      writeFileSync(src, b.code);
      // no -O3: optimizing finds no error the compiler did not, and takes seconds a block
      await expect(buildHandler(src, join(dir, "handler.wasm"), { optimize: false })).resolves.toMatch(/handler\.wasm$/);
    }, 60_000);
  }

  it("every host block type-checks against the package (strict)", async () => {
    const ts = (await import("typescript")).default;
    const host = all.filter((x) => x.kind === "host");
    expect(host.length).toBeGreaterThanOrEqual(3);
    // inside the repository, so that vitest and @types/node resolve as in a user's project
    const dir = join(root, ".test-results", "docblocks");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const files = host.map((b, i) => {
      const f = join(dir, `block${i}.ts`);
      writeFileSync(f, b.code);
      return f;
    });
    const program = ts.createProgram(files, {
      target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true, noEmit: true, skipLibCheck: true, types: ["node"],
      baseUrl: root, paths: { "paste-host": ["host/index.ts"], "paste-host/testing": ["host/testing.ts"] },
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const i = d.file ? files.indexOf(d.file.fileName) : -1;
      const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
      return `${i >= 0 ? host[i].where : d.file?.fileName} (+${at}): ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
    });
    expect(problems).toEqual([]);
  }, 60_000);
});
