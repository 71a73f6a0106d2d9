// `paste-host build` takes its settings from asconfig.json: the package's own
// (the SDK's) by default, or the handler project's, which may add options but
// never change the four the host relies on.
import { mkdirSync, readFileSync, symlinkSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ASC_FLAGS, buildHandler, projectConfig, sdkConfig } from "../host/core/build.js";
import { inspectHandler } from "../host/core/validate.js";
import { root, scratchDir, until } from "./helpers.js";

const HANDLER = `import { Ring } from "paste-host/assembly";\nexport function on_rx(ring: Ring): void {}\n`;

/** project -- a handler project in a scratch directory: package.json, the handler, and an asconfig.json if given. */
function project(asconfig?: object): { dir: string; entry: string } {
  const dir = scratchDir("disk");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "h", private: true }));
  mkdirSync(join(dir, "assembly"));
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(root, join(dir, "node_modules", "paste-host"), "dir");
  if (asconfig) writeFileSync(join(dir, "asconfig.json"), JSON.stringify(asconfig));
  writeFileSync(join(dir, "assembly", "handler.ts"), HANDLER);
  return { dir, entry: join(dir, "assembly", "handler.ts") };
}

describe("asconfig.json", () => {
  it("the SDK's config holds exactly the ABI settings the build enforces", () => {
    const cfg = JSON.parse(readFileSync(sdkConfig(), "utf8")) as { options: Record<string, unknown> };
    const enforced: Record<string, unknown> = {};
    for (let i = 0; i < ASC_FLAGS.length; i++) {
      const name = ASC_FLAGS[i].slice(2);
      const next = ASC_FLAGS[i + 1];
      if (next !== undefined && !next.startsWith("--")) {
        enforced[name] = /^\d+$/.test(next) ? Number(next) : next;
        i++;
      } else enforced[name] = true;
    }
    for (const [k, v] of Object.entries(enforced)) expect(cfg.options[k], k).toBe(v);
  });

  it("a handler without a config of its own builds with the SDK's; the samples find the top-level one", () => {
    const { dir } = project();
    expect(projectConfig(join(dir, "assembly"))).toBe(sdkConfig());
    expect(projectConfig(join(root, "samples", "kv-wal"))).toBe(join(root, "asconfig.json"));
  });

  it("a project's asconfig.json is used, and cannot turn off what the host needs", async () => {
    // exportTable is visible in the module's exports; importMemory false would make a module the host refuses
    const { dir, entry } = project({ extends: "paste-host/asconfig.json", options: { exportTable: true, importMemory: false } });
    const out = await buildHandler(entry, join(dir, "h.wasm"), { optimize: false });
    const { info } = inspectHandler(readFileSync(out), "h.wasm");   // throws if the module is not a handler
    expect(info.exports).toContain("table");
    expect(info.imports).toContain("env.memory");
  });

  it("writes nothing beside the handler's source, so a watcher on its directory sees no build", async () => {
    const { dir, entry } = project();
    const events: string[] = [];
    const w = watch(join(dir, "assembly"), (_event, name) => events.push(String(name)));
    try {
      await buildHandler(entry, join(dir, "out", "h.wasm"), { optimize: false });
      // inotify keeps events in order: once the watcher has this one, it has had every earlier one
      writeFileSync(join(dir, "assembly", "sentinel"), "");
      await until(() => events.includes("sentinel"));
    } finally {
      w.close();
    }
    expect(events.filter((n) => n !== "sentinel")).toEqual([]);
  });
});
