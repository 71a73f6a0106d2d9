// admin.fuzz.test.ts -- the admin API under generated and mutated requests:
// methods, paths, bearer headers (none, wrong, near misses, the right one),
// JSON and binary bodies, lying lengths, uploads cut off. It never crashes
// the host, never changes the handler without the right token (nor with it,
// since no body here is a valid module), and always answers with a
// well-formed response: 401 without the token, never a 500.
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { ROUTES } from "../../host/server/admin.js";
import { CONSOLE_PATHS } from "../../host/server/console.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { root, startServer, type Server } from "../helpers.js";
import { fuzz } from "./config.js";
import { converse } from "./wire.js";

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u).toString("latin1"));

const request = (token: string) => fc.record({
  method: fc.constantFrom("GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"),
  path: fc.oneof(
    fc.constantFrom("/healthz", "/v1/status", "/metrics", "/v1/handler", "/", "/v1/status?x=1", "/v1/handler/", "//v1/status", "/%2e%2e/etc", "/v1/handler?name=x",
      "/v1/log?from=1&limit=5", "/v1/log?from=-1", "/v1/series?after=x", "/v1/handler/rollback", "/console/app.js", "/console/../package.json"),
    fc.stringMatching(/^\/[!-~]{0,30}$/),
  ),
  auth: fc.oneof(
    fc.constant(undefined),
    fc.constant(`Bearer ${token}`),
    fc.constantFrom(`bearer ${token}`, `Bearer  ${token}`, `Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, `Basic ${Buffer.from(`u:${token}`).toString("base64")}`, "Bearer", "Bearer "),
    fc.stringMatching(/^Bearer [!-~]{1,40}$/),
    bytes(40).map((b) => b.replace(/[\r\n\u0000]/g, "")),
  ),
  body: fc.oneof(fc.constant(undefined), fc.json().map((j) => j), bytes(400), bytes(40).map((b) => `\u0000asm\u0001\u0000\u0000\u0000${b}`)),
  name: fc.option(fc.stringMatching(/^[ -~]{0,30}$/), { nil: undefined }),
  lengthBy: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 50 }) }),
  cutAt: fc.option(fc.nat(500), { nil: undefined, freq: 4 }),
}, { requiredKeys: ["method", "path", "auth", "body", "name", "lengthBy", "cutAt"] });

type Req = ReturnType<typeof request> extends fc.Arbitrary<infer T> ? T : never;


function encode(r: Req): Buffer {
  const body = r.body === undefined ? undefined : Buffer.from(r.body, "latin1");
  const lines = [`${r.method} ${r.path} HTTP/1.1`, "Host: admin", "Connection: close"];
  if (r.auth !== undefined) lines.push(`Authorization: ${r.auth}`);
  if (r.name !== undefined) lines.push(`X-Handler-Name: ${r.name}`);
  if (body) lines.push(`Content-Length: ${Math.max(0, body.length + r.lengthBy)}`);
  const all = Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1"), body ?? Buffer.alloc(0)]);
  return r.cutAt === undefined ? all : all.subarray(0, Math.min(all.length, r.cutAt));
}

describe("the admin API under hostile requests", () => {
  const dir = mkdtempSync("/dev/shm/paste-fuzz-admin-");
  const pool = join(dir, "a.pool");
  let s: Server | undefined;
  let token = "";
  let adminPort = 0;
  beforeAll(async () => {
    s = await startServer({ pool, handler: join(root, "samples", "wal-append", "wal-append.wasm") });
    token = readFileSync(`${pool}.token`, "utf8").trim();
    for (let i = 0; !adminPort; i++) {
      const m = /admin API on http:\/\/127\.0\.0\.1:(\d+)/.exec(s.output());
      if (m) adminPort = Number(m[1]);
      else if (i > 200) throw new Error(`no admin API address in the host's output:\n${s.output()}`);
      else await new Promise((res) => setTimeout(res, 25));
    }
  });
  afterAll(async () => {
    await s?.stop("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  async function handlerSha(): Promise<string> {
    for (let i = 0; ; i++) {
      const r = await fetch(`http://127.0.0.1:${adminPort}/v1/status`, { headers: { Authorization: `Bearer ${token}` } });
      if (r.status === 200) return ((await r.json()) as { handler: { sha256: string } }).handler.sha256;
      if (i > 100) throw new Error(`/v1/status answers ${r.status}`);
      await new Promise((res) => setTimeout(res, 50));   // 503 until the first snapshot
    }
  }

  it("answers every request well-formed, 401 without the token, and changes nothing", async () => {
    const before = await handlerSha();
    const f = fuzz<[fc.Arbitrary<unknown>]>("admin", 30);
    await fc.assert(fc.asyncProperty(request(token), async (r) => {
      f.tick();
      const wire = encode(r);
      const got = await converse(adminPort, [wire], { idleMs: 100 });
      const what = `the request ${JSON.stringify(wire.toString("latin1").slice(0, 600))}`;
      expect(s!.child.exitCode, `the host runs after ${what}`).toBeNull();
      const text = got.data.toString("latin1");
      const complete = r.cutAt === undefined && r.lengthBy <= 0;
      if (text.length > 0 || complete) {
        const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*\r\n/.exec(text);
        expect(m, `a status line for ${what}: ${JSON.stringify(text.slice(0, 200))}`).not.toBeNull();
        const status = Number(m![1]);
        expect(status, `no 500 for ${what}`).not.toBe(500);
        const right = r.auth === `Bearer ${token}`;
        // without the token: 401, but for the tokenless paths (/healthz, a
        // liveness probe; the console's files, which hold no data) and a known
        // path's 405 (no secret in any)
        const path = r.path.split("?")[0];
        const open = ROUTES[path];
        const exempt = open && (!open.includes(r.method) ? status === 405
          : (path === "/healthz" && [200, 503].includes(status)) || (CONSOLE_PATHS.includes(path) && status === 200));
        if (!right && status !== 400 && status !== 431 && !exempt) expect(status, `401 without the token for ${what}`).toBe(401);
        if (status !== 400 && status !== 431) {
          const head = text.slice(0, text.indexOf("\r\n\r\n"));
          const len = Number(/\r\nContent-Length: (\d+)/i.exec(head)?.[1] ?? NaN);
          expect(Number.isInteger(len) && r.method !== "HEAD" ? text.length - head.length - 4 : len, `a body as long as its Content-Length for ${what}`).toBe(len);
        }
      }
      expect(await handlerSha(), `the handler after ${what}`).toBe(before);
    }), f.parameters);
  }, fuzz("admin", 30).timeoutMs);
});
