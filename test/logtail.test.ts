// `paste-host log tail`: the log as a stream for a consumer. Beside a host
// that serves the pool, --follow prints each record once it commits, in
// order; without it, the newest records and the end.
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tailLog } from "../host/tools/logtail.js";
import { openHandler } from "../host/testing.js";
import { cliPath, root, runCli, scratchDir, startServer, until } from "./helpers.js";

const kvWal = join(root, "samples", "kv-wal", "kv-wal.wasm");
const resp = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join("")}`;

/** set -- SET key value on a fresh connection; resolves on the +OK (the record is durable by then). */
function set(port: number, key: string, value: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => s.write(resp("SET", key, value)));
    s.on("data", (d) => {
      s.destroy();
      return d.toString() === "+OK\r\n" ? resolve() : reject(new Error(`SET answered ${d}`));
    });
    s.on("error", reject);
  });
}

describe("paste-host log tail", () => {
  it("--follow prints every record as it commits, in order, beside the running host; Ctrl-C ends it with 0", async () => {
    const pool = join(scratchDir("shm"), "kv.pool");
    const host = await startServer({ pool, handler: kvWal });
    const tail = spawn(process.execPath, [cliPath, "log", "tail", pool, "--follow", "--json", "--from", "1"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    tail.stdout.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => tail.on("exit", (code) => r(code)));
    const records = () => out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { seq: number; data: string });
    try {
      await set(host.port, "a", "first");
      await until(() => records().length === 1);
      await set(host.port, "b", "second");
      await set(host.port, "c", "third");
      await until(() => records().length === 3);
      const got = records();
      expect(got.map((r) => r.seq)).toEqual([1, 2, 3]);
      expect(got.map((r) => Buffer.from(r.data, "base64").toString())).toEqual([resp("SET", "a", "first"), resp("SET", "b", "second"), resp("SET", "c", "third")]);
      tail.kill("SIGINT");
      expect(await exited).toBe(0);

      const last = runCli(["log", "tail", pool, "-n", "2"]);   // without --follow: the newest records, then the end
      expect(last.status, last.out).toBe(0);
      expect(last.stdout.trim().split("\n").map((l) => Number(l.trim().split(/\s+/)[0]))).toEqual([2, 3]);
    } finally {
      if (tail.exitCode === null && tail.signalCode === null) tail.kill("SIGKILL");
      await host.stop();
    }
  }, 60_000);

  it("reports records trimmed before they were printed as a gap, and goes on after it", async () => {
    const h = await openHandler(join(root, "samples", "templates", "blank", "handler.ts"));
    try {
      const c = h.connect();
      c.send("one\ntwo\nthree\nfour\n");
      expect(h.runtime.trim(2)).toBe(2);
      const seen: number[] = [];
      const gaps: [number, number][] = [];
      const t = tailLog(h.poolPath, { from: 1, follow: true, intervalMs: 5 }, (r) => seen.push(r.seq), (a, b) => gaps.push([a, b]));
      try {
        await until(() => seen.length === 2);
        expect(seen).toEqual([3, 4]);
        expect(gaps).toEqual([[1, 2]]);
        c.send("five\nsix\n");
        await until(() => seen.length === 4);
        h.runtime.trim(6);
        c.send("seven\n");
        await until(() => seen.length === 5);
        expect(seen).toEqual([3, 4, 5, 6, 7]);
      } finally {
        t.stop();
        await t.done;
      }
    } finally {
      h.close();
    }
  }, 60_000);
});
