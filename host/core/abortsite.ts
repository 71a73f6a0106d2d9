// abortsite.ts -- an asc transform: a bare abort("message") in a handler's
// own sources gets its file, line and column, as assert() and AssemblyScript's
// own checks already do, so the host's trap message names the place
// ("handler H aborted: boom at handler.ts:12:5") instead of a Wasm function
// index. Library sources (~lib/, the SDK under node_modules) are left alone.

type AnyNode = { kind?: number; range?: AstRange; [k: string]: unknown };
interface AstRange { start: number; source: { lineAt(p: number): number; columnAt(): number; normalizedPath: string } }
interface AstSource { normalizedPath: string; isLibrary: boolean; statements: AnyNode[]; lineAt(p: number): number; columnAt(): number }

/** abortSites -- the transform object asc.main takes in its options' transforms. */
export async function abortSites(): Promise<object> {
  const as = (await import("assemblyscript")) as unknown as {
    Node: { createStringLiteralExpression(v: string, r: AstRange): AnyNode; createIntegerLiteralExpression(v: unknown, r: AstRange): AnyNode };
    NodeKind: { Call: number; Identifier: number; FunctionDeclaration: number };
  };
  const { Node, NodeKind } = as;
  // asc's JS build keeps i64 values as its own Long objects, made by a global it installs
  const i64 = (globalThis as unknown as { i64_new(lo: number, hi: number): unknown }).i64_new;
  const visit = (n: unknown, src: AstSource, seen: Set<unknown>): void => {
    if (!n || typeof n !== "object" || seen.has(n)) return;
    seen.add(n);
    if (Array.isArray(n)) {
      for (const x of n) visit(x, src, seen);
      return;
    }
    const node = n as AnyNode;
    if (node.kind === NodeKind.Call) {
      const callee = node.expression as AnyNode & { text?: string };
      const args = node.args as AnyNode[];
      if (callee?.kind === NodeKind.Identifier && callee.text === "abort" && args.length <= 1 && node.range) {
        const r = node.range;
        if (args.length === 0) args.push(Node.createStringLiteralExpression("abort", r));
        const line = src.lineAt(r.start);
        const column = src.columnAt();
        args.push(Node.createStringLiteralExpression(src.normalizedPath, r),
          Node.createIntegerLiteralExpression(i64(line, 0), r), Node.createIntegerLiteralExpression(i64(column, 0), r));
      }
    }
    for (const [k, v] of Object.entries(node)) if (k !== "range" && k !== "parent" && k !== "source") visit(v, src, seen);
  };
  return {
    afterParse(parser: { sources: AstSource[] }): void {
      for (const src of parser.sources) {
        if (src.isLibrary || src.normalizedPath.startsWith("~lib/") || src.normalizedPath.includes("node_modules/")) continue;
        // a file with an abort() of its own calls that one: leave its calls as they are
        const own = src.statements.some((st) => st.kind === NodeKind.FunctionDeclaration && (st.name as { text?: string })?.text === "abort");
        if (own) continue;
        visit(src.statements, src, new Set());
      }
    },
  };
}
