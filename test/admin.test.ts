// The admin API of a running host: bearer token in a 0600 file next to the
// pool, 401 without it (logged, the token never is), status and Prometheus
// metrics with it, and `paste-host status` finding it all from the pool path.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
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
    // the Grafana dashboard in docs/ charts only metrics the host exports
    // (by their # TYPE lines: a labelled counter has no sample before its first event)
    const exported = new Set([...metrics.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    const dashboard = readFileSync(join(root, "docs", "grafana-dashboard.json"), "utf8");
    const charted = [...new Set([...dashboard.matchAll(/\b((?:paste|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]))];
    expect(charted.length).toBeGreaterThan(10);
    expect(charted.filter((n) => !exported.has(n) && !exported.has(n.replace(/_(bucket|sum|count)$/, "")))).toEqual([]);

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

  it("the console's files without a token, strict headers; log pages, series, rollback and cross-site refusals with it", async () => {
    const pool = join(scratchDir("shm"), "d.pool");
    const kv = join(root, "samples", "kv-wal", "kv-wal.wasm");
    const s = await startServer({ pool, handler: kv });
    running.push(s);
    await until(() => /admin API on http:\/\/127\.0\.0\.1:\d+/.test(s.output()));
    const url = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(s.output())![1];
    const auth = { Authorization: `Bearer ${readFileSync(`${pool}.token`, "utf8").trim()}` };

    // the page and its scripts need no token and hold no data; the page forbids inline script and framing
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toMatch(/default-src 'self'/);
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await page.text();
    expect(html).not.toMatch(/<script>|<script(?![^>]*\bsrc=)[^>]*>|\son\w+=|style=/);   // nothing inline for the CSP to refuse
    for (const p of ["/console/app.js", "/console/uPlot.esm.js", "/console/uPlot.min.css"]) {
      const r = await fetch(`${url}${p}`);
      expect([p, r.status]).toEqual([p, 200]);
    }
    // only the files in the table: a path that climbs out is no file (fetch would normalize it, so raw)
    const climb = await converse(Number(new URL(url).port), [Buffer.from("GET /console/../package.json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")], { idleMs: 300 });
    expect(climb.data.toString()).toMatch(/^HTTP\/1\.1 401 /);
    // data never without the token
    for (const p of ["/v1/series", "/v1/log"]) expect((await fetch(`${url}${p}`)).status).toBe(401);
    expect((await fetch(`${url}/v1/handler/rollback`, { method: "POST" })).status).toBe(401);

    const r = new Redis({ port: s.port, host: "127.0.0.1" });
    for (let i = 0; i < 30; i++) await r.set(`key${i}`, `value${i}`);
    r.disconnect();
    await new Promise((res) => setTimeout(res, 2300));   // two reports: one point of the series at least
    const page1 = await (await fetch(`${url}/v1/log?from=0&limit=20`, { headers: auth })).json();
    expect(page1.records.map((x: { seq: number }) => x.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(page1.next).toBe(21);
    expect(page1.records[0]).toMatchObject({ seq: 1, len: 35, crcOk: true, preview: "*3\\r\\n$3\\r\\nset\\r\\n$4\\r\\nkey0\\r\\n$6\\r\\nvalue0\\r\\n" });
    expect(page1.records[0].extents).toEqual([{ buf: expect.any(Number), off: expect.any(Number), len: 35 }]);
    const page2 = await (await fetch(`${url}/v1/log?from=${page1.next}&limit=20`, { headers: auth })).json();
    expect(page2.records.map((x: { seq: number }) => x.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 21));
    expect(page2.next).toBeNull();
    for (const q of ["from=-1", "limit=0", "limit=201", "from=x"]) {
      const bad = await fetch(`${url}/v1/log?${q}`, { headers: auth });
      expect([q, bad.status, (await bad.json()).error]).toEqual([q, 400, "PASTE_ERR_USAGE"]);
    }
    const series = await (await fetch(`${url}/v1/series`, { headers: auth })).json();
    expect(series.points.length).toBeGreaterThan(0);
    expect(series.points.reduce((a: number, p: { recordsPerSec: number }) => a + p.recordsPerSec, 0)).toBeGreaterThan(0);
    const last = series.points.at(-1).t;
    expect((await (await fetch(`${url}/v1/series?after=${last}`, { headers: auth })).json()).points).toEqual([]);

    // a browser sending for another site is refused even with the token; the same origin is not
    const evil = await fetch(`${url}/v1/handler/rollback`, { method: "POST", headers: { ...auth, Origin: "http://evil.example" } });
    expect([evil.status, (await evil.json()).message]).toEqual([403, "cross-site requests are refused (Origin: http://evil.example)"]);
    expect((await fetch(`${url}/v1/status`, { headers: { ...auth, "Sec-Fetch-Site": "cross-site" } })).status).toBe(403);
    expect((await fetch(`${url}/v1/status`, { headers: { ...auth, Origin: url } })).status).toBe(200);

    // nothing to roll back to, then a deploy rolled back: the first handler serves again, its state replayed
    const none = await fetch(`${url}/v1/handler/rollback`, { method: "POST", headers: auth });
    expect([none.status, (await none.json()).error]).toEqual([409, "PASTE_ERR_NO_PREVIOUS_HANDLER"]);
    // the same module with a config is another handler to come back from (the pool's history tells handlers by module and config)
    const conf = join(dirname(pool), "kv.conf");
    writeFileSync(conf, "proto-max-bulk-len 1mb\n");
    const dep = runCli(["deploy", "--pool", pool, join(root, "samples", "kv-wal", "kv-wal.wasm"), "--config", conf]);
    expect(dep.status, dep.stderr).toBe(0);
    expect((await (await fetch(`${url}/v1/status`, { headers: auth })).json()).handler.history).toHaveLength(2);
    const back = await fetch(`${url}/v1/handler/rollback`, { method: "POST", headers: auth });
    const rb = await back.json();
    expect(back.status, JSON.stringify(rb)).toBe(200);
    expect(rb).toMatchObject({ rolledBack: true, handler: { name: kv }, previous: { name: "kv-wal.wasm" }, replayed: 30 });
    const st = await (await fetch(`${url}/v1/status`, { headers: auth })).json();
    expect(st.handler).toMatchObject({ name: kv, previous: null });
    expect(st.handler.history.map((h: { name: string }) => h.name)).toEqual([kv]);
    expect(st.handler.events.at(-1)).toMatchObject({ kind: "rolled back" });
    const r2 = new Redis({ port: s.port, host: "127.0.0.1" });
    expect(await r2.get("key29")).toBe("value29");
    r2.disconnect();
    // the same from the command line
    const cliNone = runCli(["rollback", "--pool", pool]);
    expect(cliNone.status).toBe(1);
    expect(cliNone.stderr).toMatch(/PASTE_ERR_NO_PREVIOUS_HANDLER: .* is the only handler \S+ has served/);
    expect(runCli(["deploy", "--pool", pool, kv, "--config", conf]).status).toBe(0);
    const cliBack = runCli(["rollback", "--pool", pool]);
    expect(cliBack.status, cliBack.stderr).toBe(0);
    expect(cliBack.stdout).toMatch(/^back to\s+.*kv-wal\.wasm \(ABI 1, .*\nreplacing kv-wal\.wasm .*\nreplayed  30 records/);

    // a declared body over the limit is refused before it is sent
    const big = await converse(Number(new URL(url).port), [Buffer.from(`POST /v1/handler HTTP/1.1\r\nHost: a\r\nAuthorization: ${auth.Authorization}\r\nContent-Length: ${64 << 20}\r\n\r\n`)], { idleMs: 300 });
    expect(big.data.toString()).toMatch(/^HTTP\/1\.1 413 /);
  }, 60_000);
});
