// The TCP port's engines: io_uring where the kernel allows it, epoll where it
// does not, and the startup line and /v1/status saying which and why. The
// rest of the TCP suite runs once per engine (test/vitest.config.ts); this
// file checks the choice itself, and what only the io_uring engine does.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Redis from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { root, runCli, scratchDir, startServer, until, type Server } from "./helpers.js";

const kv = join(root, "samples", "kv-wal", "kv-wal.wasm");
const running: Server[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop("SIGKILL");
});

/** uringAllowed -- whether this kernel lets an unprivileged process use io_uring at all. */
function uringAllowed(): boolean {
  try {
    return readFileSync("/proc/sys/kernel/io_uring_disabled", "utf8").trim() === "0";
  } catch {
    return true;   // a kernel without the switch: the engine itself finds out
  }
}

async function statusOf(s: Server, pool: string): Promise<{ portEngine: { engine: string; reason: string } }> {
  await until(() => /admin API on (http:\/\/127\.0\.0\.1:\d+)/.test(s.output()));
  const url = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(s.output())![1];
  const token = readFileSync(`${pool}.token`, "utf8").trim();
  return (await fetch(`${url}/v1/status`, { headers: { Authorization: `Bearer ${token}` } })).json();
}

describe("the port engine", () => {
  it("auto picks io_uring here and says so; the data path answers", async (ctx) => {
    if (!uringAllowed()) ctx.skip("kernel.io_uring_disabled is set on this machine");
    const pool = join(scratchDir("shm"), "u.pool");
    const s = await startServer({ pool, handler: kv, extra: ["--port-engine", "auto"], env: { PASTE_PORT_ENGINE: "" } });
    running.push(s);
    expect(s.output()).toMatch(/port engine io_uring \(available\)/);
    const r = new Redis({ port: s.port, host: "127.0.0.1" });
    // 40 pipelined SETs of 3 KiB values: each spans buffers the kernel picked
    const big = "x".repeat(3000);
    const p = r.pipeline();
    for (let i = 0; i < 40; i++) p.set(`k${i}`, `${i}:${big}`);
    await p.exec();
    expect(await r.get("k39")).toBe(`39:${big}`);
    expect(await r.dbsize()).toBe(40);
    r.disconnect();
    expect((await statusOf(s, pool)).portEngine).toEqual({ engine: "io_uring", reason: "available" });
  });

  it("io_uring refused: the default (auto) falls back to epoll, names the reason, and serves", async () => {
    const pool = join(scratchDir("shm"), "f.pool");
    const s = await startServer({ pool, handler: kv, env: { PASTE_URING_REFUSE: "1", PASTE_PORT_ENGINE: "" } });
    running.push(s);
    expect(s.output()).toMatch(/port engine epoll \(fallback: io_uring: refused on purpose \(PASTE_URING_REFUSE is set\)\)/);
    const r = new Redis({ port: s.port, host: "127.0.0.1" });
    expect(await r.set("a", "1")).toBe("OK");
    expect(await r.get("a")).toBe("1");
    r.disconnect();
    const st = await statusOf(s, pool);
    expect(st.portEngine.engine).toBe("epoll");
    expect(st.portEngine.reason).toMatch(/^fallback: io_uring: refused on purpose/);
  });

  it("--port-engine uring where io_uring is refused fails with the reason, and serves nothing", () => {
    const pool = join(scratchDir("shm"), "r.pool");
    const r = runCli(["run", "--pool", pool, "--handler", kv, "--listen", "tcp://127.0.0.1:0", "--create-size", "16M",
      "--admin", "off", "--port-engine", "uring"], { PASTE_URING_REFUSE: "1" });
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/PASTE_ERR_UNSUPPORTED/);
    expect(r.out).toMatch(/refused on purpose \(PASTE_URING_REFUSE is set\)/);
    expect(r.out).not.toMatch(/serving tcp:/);
  });

  it("the startup line says where the engine came from: the default, the option, or PASTE_PORT_ENGINE", async () => {
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      ...(uringAllowed() ? [[[], { PASTE_PORT_ENGINE: "" }, /port engine io_uring \(the default: io_uring where the kernel allows it\)/] as [string[], NodeJS.ProcessEnv, RegExp]] : []),
      [["--port-engine", "epoll"], { PASTE_PORT_ENGINE: "" }, /port engine epoll \(--port-engine epoll\)/],
      [[], { PASTE_PORT_ENGINE: "epoll" }, /port engine epoll \(PASTE_PORT_ENGINE=epoll\)/],
    ];
    for (const [extra, env, line] of cases) {
      const s = await startServer({ pool: join(scratchDir("shm"), "e.pool"), handler: kv, extra, env });
      running.push(s);
      expect(s.output()).toMatch(line);
      expect(await s.stop("SIGTERM")).toBe(0);
    }
  });

  it("--port-engine takes only auto, uring or epoll", () => {
    const r = runCli(["run", "--pool", "/nonexistent/x.pool", "--handler", kv, "--port-engine", "kqueue"]);
    expect(r.status).toBe(2);
    expect(r.out).toMatch(/--port-engine.*kqueue.*(auto|uring|epoll)/s);
  });
});
