// Deployed handlers survive restarts: the host keeps every module that served
// beside the pool (POOL.handlers/), `run` without --handler starts the one that
// served last and says so, an explicit --handler that differs wins and says
// that, and `handlers rollback` goes back to the one before, on a running host
// (a deploy) or a stopped pool (the next run).
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildVariant, root, runCli, scratchDir, startServer } from "./helpers.js";

const kvWal = join(root, "samples", "kv-wal", "kv-wal.wasm");
let kvV2: string;
const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

beforeAll(async () => {
  // the same handler, rebuilt with one visible change (its INFO names it)
  kvV2 = await buildVariant("kv-wal-v2", "samples/kv-wal/kv-wal.ts", [["paste_wal:kv-wal", "paste_wal:kv-wal-v2"]]);
}, 120_000);

/** serving -- the sha256 of the handler the host on pool serves (paste-host status). */
function serving(pool: string): string {
  const r = runCli(["status", "--pool", pool, "--json"]);
  expect(r.status, r.out).toBe(0);
  return JSON.parse(r.stdout).handler.sha256;
}

function deploy(file: string, pool: string): void {
  const r = runCli(["deploy", file, "--pool", pool]);
  expect(r.status, r.out).toBe(0);
}

describe("deployed handlers survive restarts", () => {
  it("a restart serves the deployed handler and says so; rollback on the running host brings back the one before", async () => {
    const pool = join(scratchDir("shm"), "kv.pool");
    const first = await startServer({ pool, handler: kvWal });
    try {
      deploy(kvV2, pool);
      expect(serving(pool)).toBe(sha(kvV2));
    } finally {
      expect(await first.stop()).toBe(0);
    }

    const again = await startServer({ pool });   // no --handler
    try {
      expect(again.output()).toMatch(/serving tcp:\/\/\S+ with kv-wal-v2\S*\.wasm \(the handler that served last: deploy/);
      expect(serving(pool)).toBe(sha(kvV2));
      const back = runCli(["handlers", "rollback", "--pool", pool]);
      expect(back.status, back.out).toBe(0);
      expect(back.stdout).toMatch(/^back to +\S*kv-wal\.wasm/);
      expect(serving(pool)).toBe(sha(kvWal));
      const list = runCli(["handlers", "list", "--pool", pool, "--json"]);
      expect(list.status, list.out).toBe(0);
      expect(JSON.parse(list.stdout).map((e: { how: string; sha256: string }) => [e.how, e.sha256]))
        .toEqual([["run", sha(kvWal)], ["deploy", sha(kvV2)], ["rollback", sha(kvWal)]]);
    } finally {
      expect(await again.stop()).toBe(0);
    }
  }, 120_000);

  it("rollback on a stopped pool is served by the next run; an explicit --handler that differs wins, and says so", async () => {
    const pool = join(scratchDir("shm"), "kv.pool");
    const first = await startServer({ pool, handler: kvWal });
    try {
      deploy(kvV2, pool);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    const back = runCli(["handlers", "rollback", "--pool", pool]);
    expect(back.status, back.out).toBe(0);
    expect(back.stdout).toContain("the next paste-host run");

    const rolled = await startServer({ pool });
    try {
      expect(rolled.output()).toMatch(/the handler that served last: rollback/);
      expect(serving(pool)).toBe(sha(kvWal));
    } finally {
      expect(await rolled.stop()).toBe(0);
    }

    const explicit = await startServer({ pool, handler: kvV2 });
    try {
      expect(explicit.output()).toMatch(/not the one that served last \(\S*kv-wal\.wasm/);
      expect(serving(pool)).toBe(sha(kvV2));
    } finally {
      expect(await explicit.stop()).toBe(0);
    }
    const list = runCli(["handlers", "list", "--pool", pool, "--json"]);
    expect(JSON.parse(list.stdout).map((e: { how: string }) => e.how)).toEqual(["run", "deploy", "rollback", "run"]);
    const text = runCli(["handlers", "list", "--pool", pool]).stdout.trim().split("\n");
    expect(text.at(-1)).toMatch(/^paste-host rollback --pool \S+ serves \S*kv-wal\.wasm \(rollback /);
    expect(text.at(-3)).toMatch(/^\* \S+ +run +[0-9a-f]{16} +no config +\S*kv-wal-v2/);   // the one that serves now is marked
  }, 120_000);

  it("GET /v1/handlers shows the history; every rollback (CLI, alias, HTTP) walks it back like undo, across a restart", async () => {
    const dir = scratchDir("shm");
    const pool = join(dir, "kv.pool");
    const conf = join(dir, "kv.conf");
    writeFileSync(conf, "proto-max-bulk-len 1mb\n");
    const first = await startServer({ pool, handler: kvWal });
    try {
      deploy(kvV2, pool);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    const s = await startServer({ pool });   // this process has run one handler only; the pool has served two
    try {
      const r = runCli(["deploy", kvWal, "--pool", pool, "--config", conf]);   // the same module, another config: a third pair
      expect(r.status, r.out).toBe(0);
      const { url } = JSON.parse(readFileSync(`${pool}.admin`, "utf8"));
      const auth = { headers: { Authorization: `Bearer ${readFileSync(`${pool}.token`, "utf8").trim()}` } };
      const h = await (await fetch(`${url}/v1/handlers`, auth)).json();
      expect(h.handlers.map((e: { how: string; sha256: string; serving: boolean; config: unknown }) => [e.how, e.sha256, e.serving, e.config]))
        .toEqual([["run", sha(kvWal), false, null], ["deploy", sha(kvV2), false, null],
          ["deploy", sha(kvWal), true, { size: 23, sha256: sha(conf) }]]);
      expect(h.handlers[2]).toMatchObject({ name: "kv-wal.wasm", since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
      expect(h.rollbackTo).toMatchObject({ sha256: sha(kvV2), how: "deploy" });
      expect((await fetch(`${url}/v1/handlers`, { method: "POST", ...auth })).status).toBe(405);
      // handlers list --json --with-rollback prints what the API answers
      const list = JSON.parse(runCli(["handlers", "list", "--pool", pool, "--json", "--with-rollback"]).stdout);
      expect(list).toEqual(h);

      // back one (the CLI), back another (its alias), then nothing left: the API and the CLI say so
      const one = runCli(["rollback", "--pool", pool]);
      expect(one.status, one.out).toBe(0);
      expect(serving(pool)).toBe(sha(kvV2));
      const two = runCli(["handlers", "rollback", "--pool", pool]);
      expect(two.status, two.out).toBe(0);
      expect(serving(pool)).toBe(sha(kvWal));
      const none = await fetch(`${url}/v1/handler/rollback`, { method: "POST", ...auth });
      expect([none.status, (await none.json()).error]).toEqual([409, "PASTE_ERR_NO_PREVIOUS_HANDLER"]);
      const again = runCli(["rollback", "--pool", pool]);
      expect([again.status, again.stderr]).toEqual([1, expect.stringContaining("PASTE_ERR_NO_PREVIOUS_HANDLER")]);
      const after = await (await fetch(`${url}/v1/handlers`, auth)).json();
      expect(after.handlers.map((e: { how: string }) => e.how)).toEqual(["run", "deploy", "deploy", "rollback", "rollback"]);
      expect(after.rollbackTo).toBeNull();
    } finally {
      expect(await s.stop()).toBe(0);
    }
  }, 120_000);

  it("run without --handler on a pool that has served none asks for one, also on a pool made anew at a used path", async () => {
    const pool = join(scratchDir("shm"), "new.pool");
    const ask = () => runCli(["run", "--pool", pool, "--listen", "tcp://127.0.0.1:0", "--create-size", "16M"]);
    let r = ask();
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("pass --handler");
    const host = await startServer({ pool, handler: kvWal });
    expect(await host.stop()).toBe(0);
    const made = runCli(["pool", "create", pool, "--size", "16M", "--force"]);   // a new pool: the old one's handlers are not its own
    expect(made.status, made.out).toBe(0);
    r = ask();
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("pass --handler");
  }, 60_000);
});
