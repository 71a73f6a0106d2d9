// The C header is the truth about memory; the TypeScript mirror must agree
// with the compiler's numbers for every size, offset and constant.
import { describe, expect, it } from "vitest";
import { mirror } from "../host/core/layout.js";
import { catalogue } from "../host/core/errors.js";
import { native } from "../host/core/native.js";

function cTable(): Map<string, number> {
  const n = native();
  const m = new Map<string, number>();
  for (let i = 0; i < n.layoutCount(); i++) m.set(n.layoutName(i), Number(n.layoutValue(i)));
  return m;
}

describe("layout mirror", () => {
  it("every size, offset and constant in host/core/layout.ts matches native/paste.h", () => {
    const c = cTable();
    const ts = mirror();
    const mismatches: string[] = [];
    for (const [name, value] of ts) {
      if (!c.has(name)) mismatches.push(`${name}: in the TS mirror, not in native/layout.c`);
      else if (c.get(name) !== value) mismatches.push(`${name}: TS ${value}, C ${c.get(name)}`);
    }
    expect(mismatches).toEqual([]);
    expect(ts.size).toBeGreaterThan(80);
  });

  it("every C layout entry has a mirror (except error numbers, mirrored in errors.ts)", () => {
    const ts = mirror();
    const missing = [...cTable().keys()].filter((k) => !ts.has(k) && !k.startsWith("PASTE_ERR_") && k !== "sizeof(paste_info)");
    expect(missing).toEqual([]);
  });

  it("every native error number maps to its catalogued class", () => {
    const c = cTable();
    for (const [name, value] of c) {
      if (!name.startsWith("PASTE_ERR_")) continue;
      const cls = catalogue.find((k) => k.code === name);
      expect(cls, name).toBeDefined();
      expect(cls!.native, name).toBe(value);
    }
  });
});
