// The native library's layers (native/layers.mjs, run by the build): no C
// file calls a function of a file above it, checked on the real objects.
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
