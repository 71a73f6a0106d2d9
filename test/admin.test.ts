// The admin API of a running host: bearer token in a 0600 file next to the
// pool, 401 without it (logged, the token never is), status and Prometheus
// metrics with it, and `paste-host status` finding it all from the pool path.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import Redis from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { converse } from "./fuzz/wire.js";
import { root, runCli, scratchDir, startServer, until, type Server } from "./helpers.js";

const running: Server[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop("SIGKILL");
});

describe("admin API", () => {
  it("401 without a token and with a wrong one, 200 with the token file; status and metrics", async () => {
    const pool = join(scratchDir("shm"), "a.pool");
    const s = await startServer({ pool, handler: join(root, "samples", "kv-wal", "kv-wal.wasm") });
    running.push(s);
    await until(() => /admin API on (http:\/\/127\.0\.0\.1:\d+)/.test(s.output()));
    const url = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(s.output())![1];
    const token = readFileSync(`${pool}.token`, "utf8").trim();
    expect(statSync(`${pool}.token`).mode & 0o777).toBe(0o600);
    expect(token.length).toBeGreaterThanOrEqual(32);

    expect((await fetch(`${url}/v1/status`)).status).toBe(401);
    expect((await fetch(`${url}/metrics`, { headers: { Authorization: "Bearer wrong" } })).status).toBe(401);
    const auth = { headers: { Authorization: `Bearer ${token}` } };
    expect(await (await fetch(`${url}/healthz`, auth)).text()).toBe("ok\n");
    // a liveness probe needs no token, and learns nothing but the state
    const probe = await fetch(`${url}/healthz`);
    expect([probe.status, await probe.text()]).toEqual([200, "ok\n"]);
    // a known path with the wrong method: 405 and what it takes; an unknown one: 404
    const put = await fetch(`${url}/v1/status`, { method: "PUT", ...auth });
    expect([put.status, put.headers.get("allow")]).toEqual([405, "GET"]);
    expect((await fetch(`${url}/v1/handler`, auth)).headers.get("allow")).toBe("POST");
    expect((await fetch(`${url}/nope`, auth)).status).toBe(404);

    const r = new Redis({ port: s.port, host: "127.0.0.1" });
    for (let i = 0; i < 50; i++) await r.set(`k${i}`, "v");
    r.disconnect();
    await new Promise((res) => setTimeout(res, 1300));   // the data path reports once a second

    const status = await (await fetch(`${url}/v1/status`, auth)).json();
    // the reports since the SETs hold their commits' percentiles (later reports of an idle host hold none)
    expect(status.commit).toMatchObject({ p50Us: expect.any(Number), p99Us: expect.any(Number) });
    expect(status.commit.p99Us).toBeGreaterThanOrEqual(status.commit.p50Us);
    expect(status).toMatchObject({ pool, persist: { mode: "pmem" }, handler: { abi: 1 }, stats: { committedSeq: 50 } });
    expect(status.handler.sha256).toMatch(/^[0-9a-f]{64}$/);
    // kv-wal has a cleaner: the reserve kept for it is reported; a fresh 64 MiB pool is not under pressure
    expect(status.space).toMatchObject({ cleaner: true, pressure: [] });
    expect(status.space.reserveBuffers).toBeGreaterThan(0);
    // where the bytes are: the 50 SETs as they arrived (10 of 28 bytes, 40 of 29), every buffer in one state
    const u = status.space.usage;
    expect(u.liveBytes).toBe(10 * 28 + 40 * 29);
    expect(u.buffers.free + u.buffers.rings + u.buffers.log + u.buffers.arriving).toBe(u.buffers.total);
    expect(u.buffers.log).toBeGreaterThan(0);
    expect(u.amplification).toBeGreaterThan(1);
    const metrics = await (await fetch(`${url}/metrics`, auth)).text();
    expect(metrics).toMatch(/^paste_records_total 50$/m);
    expect(metrics).toMatch(/^# TYPE paste_buffers_free gauge$/m);
    // every batch's commit is timed: the 50 SETs' (paste_commits_total counts those that made
    // records durable) and those of ioredis' read-only start-up commands
    const count = Number(/^paste_commit_latency_seconds_count (\d+)$/m.exec(metrics)![1]);
    expect(count).toBeGreaterThanOrEqual(50);
    expect(metrics).toMatch(new RegExp(`^paste_commit_latency_seconds_bucket\\{le="\\+Inf"\\} ${count}$`, "m"));
    const les = [...metrics.matchAll(/^paste_commit_latency_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)];
    expect(les.map((m) => m[1])).toEqual(["0.000001", "0.000002", "0.000005", "0.00001", "0.00002", "0.00005", "0.0001",
      "0.0002", "0.0005", "0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "+Inf"]);
    const counts = les.map((m) => Number(m[2]));
    expect(counts).toEqual([...counts].sort((a, b) => a - b));   // cumulative
    expect(Number(/^paste_commit_latency_seconds_sum (\S+)$/m.exec(metrics)![1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/^process_cpu_user_seconds_total /m);   // collectDefaultMetrics

    const cli = runCli(["status", "--pool", pool]);
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/^serving\s+tcp:\/\/127\.0\.0\.1:\d+/m);
    expect(cli.stdout).toMatch(/committed seq 50/);
    expect(cli.stdout).toMatch(/^commits\s+\d+ batches; last second: \d+ commits, p50 [\d.]+ µs, p99 [\d.]+ µs, mean [\d.]+ µs, max [\d.]+ µs$/m);
    expect(cli.stdout).toMatch(/^data\s+1\.4 KiB live in the log's records; .* space amplification [\d.]+x$/m);
    expect(cli.stdout).toMatch(/handler\s+.*kv-wal\.wasm \(ABI 1/);
    expect(cli.stdout).toMatch(/^space\s+\d+ buffers in ring slots; \d+ buffers and [\d.]+ \w+ of log kept for the handler's cleaner; cleaning not due$/m);

    // the refusals were logged, the token never
    expect(s.output()).toMatch(/admin: 401 GET \/v1\/status from 127\.0\.0\.1 \(no token\)/);
    expect(s.output()).toMatch(/admin: 401 GET \/metrics from 127\.0\.0\.1 \(wrong token\)/);
    expect(s.output()).not.toContain(token);

    // with the host gone, pool info walks the log and finds the same bytes
    await s.stop("SIGTERM");
    const off = runCli(["pool", "info", pool, "--json"]);
    expect(off.status, off.stderr).toBe(0);
    expect(JSON.parse(off.stdout).space).toMatchObject({ records: 50, liveBytes: 10 * 28 + 40 * 29 });
    expect(runCli(["pool", "info", pool]).stdout).toMatch(/^records\s+50 in the log$/m);
  }, 20_000);

  it("a handler upload cut off mid-body is logged and the host serves on (it used to stop it)", async () => {
    const pool = join(scratchDir("shm"), "cut.pool");
    const s = await startServer({ pool, handler: join(root, "samples", "kv-wal", "kv-wal.wasm") });
    running.push(s);
    await until(() => /admin API on http:\/\/127\.0\.0\.1:\d+/.test(s.output()));
    const port = Number(/admin API on http:\/\/127\.0\.0\.1:(\d+)/.exec(s.output())![1]);
    const token = readFileSync(`${pool}.token`, "utf8").trim();
    // the body read throws when the client goes: an unhandled rejection stopped the host
    const cut = await converse(port, [Buffer.from(`POST /v1/handler HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nContent-Length: 100000\r\n\r\n\0asm`)], { idleMs: 200 });
    expect(cut.data.length).toBe(0);
    await until(() => /admin: POST \/v1\/handler from 127\.0\.0\.1 failed: aborted/.test(s.output()), 3000).catch(() => { throw new Error(s.output().slice(-2000)); });
    expect(s.child.exitCode).toBeNull();
    const r = new Redis({ port: s.port, host: "127.0.0.1" });
    expect(await r.set("still", "here")).toBe("OK");
    r.disconnect();
    expect((await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
  });

  it("a second run on the same pool fails and leaves the first host's discovery files alone", async () => {
    const pool = join(scratchDir("shm"), "c.pool");
    const handler = join(root, "samples", "kv-wal", "kv-wal.wasm");
    const s = await startServer({ pool, handler });
    running.push(s);
    await until(() => /admin API on/.test(s.output()));
    const admin = readFileSync(`${pool}.admin`, "utf8");
    const second = runCli(["run", "--pool", pool, "--handler", handler, "--listen", "tcp://127.0.0.1:0"], {}, 30_000);
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(/PASTE_ERR_POOL_LOCKED/);
    expect(readFileSync(`${pool}.admin`, "utf8")).toBe(admin);
    const st = runCli(["status", "--pool", pool]);
    expect(st.status, st.stderr).toBe(0);
    expect(st.stdout).toMatch(/^serving\s+tcp:\/\/127\.0\.0\.1:\d+/m);
  }, 60_000);

  it("paste-host status with a wrong token file or no host says so", async () => {
    const pool = join(scratchDir("shm"), "b.pool");
    const s = await startServer({ pool, handler: join(root, "samples", "kv-wal", "kv-wal.wasm") });
    running.push(s);
    await until(() => /admin API on/.test(s.output()));
    const bad = join(scratchDir("shm"), "bad.token");
    (await import("node:fs")).writeFileSync(bad, "not-the-token\n");
    const r = runCli(["status", "--pool", pool, "--token-file", bad]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/PASTE_ERR_UNAUTHORIZED: the admin API at http:\/\/127\.0\.0\.1:\d+ refused the token/);
    const none = runCli(["status", "--pool", join(scratchDir("shm"), "nothing.pool")]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/no running host found/);
  });
});
