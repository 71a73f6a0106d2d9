// admin.ts -- the admin API of a running host: HTTP on 127.0.0.1 by default,
// every call authenticated with a bearer token.
//
// On start the host writes a random token to POOL.token (mode 0600, created
// once, reused after) and the API's address to POOL.admin (0600), so
// `paste-host status --pool POOL` finds both. A request without the right
// token gets 401 and a log line naming the method, path and peer, never the
// token. /healthz and the console's files alone need no token: a liveness
// probe carries no secret and its answer tells nothing but the state; the
// page's files hold no data. A known path asked with the
// wrong method gets 405 and Allow; an unknown path 404.
//
//   GET /healthz     200 "ok" while the data path serves; 503 "starting"
//                    while it starts or restarts, "stopping" once it stops
//   GET /v1/status   handler (name, sha256, ABI, loaded at), pool usage,
//                    connections, records/s, commit latency
//   GET /metrics     Prometheus text format (prom-client)
//   GET /v1/series   the last ten minutes as per-second points (?after=MS)
//   GET /v1/log      records from ?from=SEQ, ?limit=N (at most 200): seq,
//                    length, extents, checksum state, a printable preview
//   POST /v1/handler a .wasm body, or multipart parts "module" and "config"
//                    (upload.ts): validated, then swapped in between two
//                    batches (X-Handler-Name names it). 200 with what changed;
//                    400 invalid module, 409 busy, 413 module or config too
//                    large, 422 it failed while taking over; the old handler
//                    keeps serving.
//   POST /v1/handler/rollback  the handler (and config) that served before
//                    the serving one, from POOL.handlers/, deployed the same
//                    way; 409 PASTE_ERR_NO_PREVIOUS_HANDLER if none
//   GET /v1/handlers the pool's handler history: sha256, name, since, how,
//                    config, serving; and where a rollback goes
//   GET /            the web console (console.ts); its files need no token,
//                    every call it makes does
//
// A request a browser sends for another site (a foreign Origin, or
// Sec-Fetch-Site cross-site or same-site) is refused with 403 before its
// token is even looked at.

import { randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import client from "prom-client";
import { PasteError } from "../core/errors.js";
import type { LogPage } from "../core/logwalk.js";
import type { CommitLatencySample } from "../core/latency.js";
import type { Space } from "../core/space.js";
import type { ConfigInfo } from "../core/config.js";
import type { ServedHandler } from "../core/handlerstore.js";
import { CONSOLE_PATHS, consoleAsset, foreignOrigin, secure } from "./console.js";
import { CommitHistogram } from "./metrics.js";
import { Series } from "./series.js";
import { readUpload } from "./upload.js";

export interface HandlerSummaryWithTime {
  name: string;
  sha256: string;
  abi: number;
  size: number;
  deployedAt: string;
  /** The config it serves with (size, sha256); null: none. */
  config: ConfigInfo | null;
}

/** Something that happened to the handler slot: shown by status, newest last. */
export interface HandlerEvent {
  at: string;
  kind: "started" | "deployed" | "rolled back" | "stopped" | "restored";
  handler: string;
  message: string;
}

export interface DeployResult {
  handler: HandlerSummaryWithTime;
  previous: { name: string; sha256: string; abi: number; size: number; config: ConfigInfo | null };
  replayed: number;
  /** Compiling the module and making its memory, while the old handler served. */
  prepareMs: number;
  /** Waiting for no request to be half received (serving on). */
  waitMs: number;
  /** The data path stopped: replay and takeover. */
  pauseMs: number;
  /** Set when this was a rollback: the replaced handler was dropped from the history. */
  rolledBack?: boolean;
}

/** A handler this host still keeps (to restore or roll back to), oldest first. */
export interface KeptHandler {
  name: string;
  sha256: string;
  abi: number;
  size: number;
  since: string;
  config: ConfigInfo | null;
}

/**
 * previous: what a stopped handler falls back to (this process's list);
 * rollbackTo: what a rollback serves (the pool's history, handlerstore.ts).
 */
export type HandlerView = HandlerSummaryWithTime & { previous: string | null; rollbackTo?: string | null; events: HandlerEvent[]; history: KeptHandler[] };

/** GET /v1/handlers: every handler the pool has served, oldest first, the serving one marked, and where a rollback goes. */
export interface HandlerHistory {
  pool: string;
  handlers: (ServedHandler & { serving: boolean })[];
  rollbackTo: ServedHandler | null;
}

type Send = (code: number, body: string | Buffer, type?: string) => void;

export interface AdminHooks {
  /** Lines to log (401s, refusals). */
  log: (line: string) => void;
  /** Validate and swap in a handler; rejects with a PasteError. */
  deploy?: (bytes: Uint8Array, name: string, config: Uint8Array) => Promise<DeployResult>;
  /** False while the data path is not serving (a stopped handler's replacement is starting). */
  serving?: () => boolean;
  /** True once the host is shutting down. */
  stopping?: () => boolean;
  /** The handler serving now, the one before it, the ones kept, and recent events. */
  handler?: () => HandlerView;
  /** The pool's handler history (POOL.handlers/), as `paste-host handlers list` shows it. */
  history?: () => HandlerHistory;
  /** Deploy the previous handler again; rejects with NoPreviousHandlerError or a deploy's refusal. */
  rollback?: () => Promise<DeployResult>;
  /** A page of the log, read by the data path between two batches. */
  readLog?: (from: number, limit: number) => Promise<LogPage>;
}

/** The most records one /v1/log call returns: each page is a walk the data path pauses for. */
export const MAX_LOG_PAGE = 200;

/** The methods each path takes (HEAD is not served: 405 like any other). */
export const ROUTES: Record<string, string[]> = {
  "/healthz": ["GET"], "/v1/status": ["GET"], "/v1/series": ["GET"], "/v1/log": ["GET"], "/metrics": ["GET"],
  "/v1/handler": ["POST"], "/v1/handler/rollback": ["POST"], "/v1/handlers": ["GET"],
  ...Object.fromEntries(CONSOLE_PATHS.map((p) => [p, ["GET"]])),
};

/** HTTP status for each deploy refusal. */
const DEPLOY_STATUS: Record<string, number> = {
  PASTE_ERR_HANDLER_INVALID: 400, PASTE_ERR_DEPLOY_BUSY: 409, PASTE_ERR_DEPLOY_FAILED: 422, PASTE_ERR_NO_PREVIOUS_HANDLER: 409,
  PASTE_ERR_HANDLER_CONFIG: 413, PASTE_ERR_USAGE: 400,
};

export interface HostSnapshot {
  pool: string;
  listen: string;
  /** The TCP port's engine (io_uring or epoll) and why that one. */
  portEngine: { engine: string; reason: string };
  persist: { mode: string; reason: string };
  flush: string;
  handler: HandlerView;
  recovery: Record<string, unknown>;
  stats: {
    records: number; payloadBytes: number; batches: number; replies: number; handlerErrors: number; trimmed: number;
    committedSeq: number; logUsed: number; logCapacity: number; freeBuffers: number; liveBuffers: number;
    /** Writes refused for want of space (the handler answered them with an error). */
    refused: number;
  };
  buffers: number;
  /** The pool's space as the cleaner sees it (buffers in ring slots, the reserve, why cleaning is due) and where its bytes are (usage). */
  space: { ringBuffers: number; cleaner: boolean; reserveBuffers: number; logReserve: number; pressure: string[]; usage: Space };
  connections: { open: number; accepted: number };
  /** Busy polling (native/busypoll.c): the budget in microseconds (0: off), polls that spun, spins that found work. */
  busyPoll: { budgetUs: number; spins: number; hits: number };
  /** Commit latency over the last report interval: percentiles and mean in microseconds, and the histogram's buckets. */
  commit: CommitLatencySample;
  at: number;
}

/** tokenFor -- the pool's admin token, made once (0600) and reused. */
export function tokenFor(pool: string): { token: string; file: string } {
  const file = `${pool}.token`;
  if (existsSync(file)) return { token: readFileSync(file, "utf8").trim(), file };
  const token = randomBytes(24).toString("base64url");
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(file, 0o600);
  return { token, file };
}

export class AdminApi {
  readonly registry = new client.Registry();
  #server: Server;
  #latest: Omit<HostSnapshot, "handler"> | null = null;
  #ratePerSec = 0;
  readonly #series = new Series();
  readonly #startedAt = new Date().toISOString();
  #g = {
    records: new client.Counter({ name: "paste_records_total", help: "Records logged since the host started", registers: [this.registry] }),
    bytes: new client.Counter({ name: "paste_payload_bytes_total", help: "Payload bytes logged (by reference)", registers: [this.registry] }),
    batches: new client.Counter({ name: "paste_commits_total", help: "Batch commits that made records durable", registers: [this.registry] }),
    replies: new client.Counter({ name: "paste_replies_total", help: "Replies released after their commit", registers: [this.registry] }),
    errors: new client.Counter({ name: "paste_handler_errors_total", help: "Handler errors contained", registers: [this.registry] }),
    refused: new client.Counter({ name: "paste_writes_refused_total", help: "Writes refused for want of space (answered with an error)", registers: [this.registry] }),
    committed: new client.Gauge({ name: "paste_committed_seq", help: "Highest durable sequence number", registers: [this.registry] }),
    logUsed: new client.Gauge({ name: "paste_log_used_bytes", help: "Log index bytes between head and tail", registers: [this.registry] }),
    logCap: new client.Gauge({ name: "paste_log_capacity_bytes", help: "Log index capacity", registers: [this.registry] }),
    free: new client.Gauge({ name: "paste_buffers_free", help: "Pool buffers on the free list", registers: [this.registry] }),
    live: new client.Gauge({ name: "paste_buffers_live", help: "Pool buffers referenced by the log or held", registers: [this.registry] }),
    conns: new client.Gauge({ name: "paste_connections_open", help: "Open client connections", registers: [this.registry] }),
    spins: new client.Counter({ name: "paste_busy_poll_spins_total", help: "Polls that spun before sleeping (--busy-poll)", registers: [this.registry] }),
    hits: new client.Counter({ name: "paste_busy_poll_hits_total", help: "Spins that found work before the budget ran out", registers: [this.registry] }),
    commitMean: new client.Gauge({ name: "paste_commit_latency_mean_seconds", help: "Mean commit latency over the last interval", registers: [this.registry] }),
    commitLatency: new CommitHistogram(this.registry),
    commitMax: new client.Gauge({ name: "paste_commit_latency_max_seconds", help: "Max commit latency over the last interval", registers: [this.registry] }),
    deploys: new client.Counter({ name: "paste_deploys_total", help: "Deploys by result (ok, or the refusal's code)", labelNames: ["result"], registers: [this.registry] }),
    stopped: new client.Counter({ name: "paste_handler_stops_total", help: "Handlers stopped by the host, by reason (error code)", labelNames: ["reason"], registers: [this.registry] }),
    info: new client.Gauge({ name: "paste_handler_info", help: "The handler serving now (value 1)", labelNames: ["name", "sha256", "abi"], registers: [this.registry] }),
  };

  constructor(private readonly token: string, private readonly hooks: AdminHooks) {
    // the process's CPU, memory, event-loop lag and handles: the main thread's,
    // which the worker shares the process with
    client.collectDefaultMetrics({ register: this.registry });
    // A request that fails in a way #handle did not foresee (a client gone
    // mid-upload, a hook that throws) is answered 500 or hung up on; it must
    // never become an unhandled rejection, which would stop the host.
    this.#server = createServer((req, res) => {
      const peer = req.socket.remoteAddress;   // gone from the socket once the client is
      void this.#handle(req, res).catch((e: unknown) => this.#failed(req, res, peer, e));
    });
  }

  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        const a = this.#server.address() as { address: string; port: number };
        resolve(`http://${a.address.includes(":") ? `[${a.address}]` : a.address}:${a.port}`);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** update -- a snapshot from the data path (once a second). */
  update(s: Omit<HostSnapshot, "handler">): void {
    const p = this.#latest;
    const point = this.#series.add(p, s);
    if (point) this.#ratePerSec = point.recordsPerSec;
    const inc = (c: client.Counter, now: number, before: number) => now > before && c.inc(now - before);
    const b = p?.stats;
    inc(this.#g.records, s.stats.records, b?.records ?? 0);
    inc(this.#g.bytes, s.stats.payloadBytes, b?.payloadBytes ?? 0);
    inc(this.#g.batches, s.stats.batches, b?.batches ?? 0);
    inc(this.#g.replies, s.stats.replies, b?.replies ?? 0);
    inc(this.#g.errors, s.stats.handlerErrors, b?.handlerErrors ?? 0);
    inc(this.#g.refused, s.stats.refused, b?.refused ?? 0);
    inc(this.#g.spins, s.busyPoll.spins, p?.busyPoll.spins ?? 0);
    inc(this.#g.hits, s.busyPoll.hits, p?.busyPoll.hits ?? 0);
    this.#g.committed.set(s.stats.committedSeq);
    this.#g.logUsed.set(s.stats.logUsed);
    this.#g.logCap.set(s.stats.logCapacity);
    this.#g.free.set(s.stats.freeBuffers);
    this.#g.live.set(s.stats.liveBuffers);
    this.#g.conns.set(s.connections.open);
    this.#g.commitMean.set(s.commit.meanUs / 1e6);
    this.#g.commitMax.set(s.commit.maxUs / 1e6);
    this.#g.commitLatency.add(s.commit);
    this.#latest = s;
  }

  /** handlerStopped -- the host stopped a handler (budget, memory); counted by reason. */
  handlerStopped(reason: string): void {
    this.#g.stopped.inc({ reason });
  }

  #failed(req: IncomingMessage, res: ServerResponse, peer: string | undefined, e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    this.hooks.log(`admin: ${req.method} ${req.url} from ${peer} failed: ${msg}`);
    if (res.headersSent || req.destroyed) return void res.destroy();
    const body = JSON.stringify({ error: "PASTE_ERR_ADMIN", message: msg });
    res.writeHead(500, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body), Connection: "close" });
    res.end(body);
  }

  #authorized(req: IncomingMessage): boolean {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "");
    if (!m) return false;
    const a = Buffer.from(m[1]);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // the path as sent (new URL would read "//x/y" as a host and a path)
    const [path, query = ""] = (req.url ?? "/").split("?", 2);
    const params = new URLSearchParams(query);
    const asset = req.method === "GET" ? consoleAsset(path) : null;
    secure(res, asset !== null);
    const send: Send = (code, body, type = "application/json") => {
      res.writeHead(code, { "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    };
    const allowed = ROUTES[path];
    if (allowed && !allowed.includes(req.method ?? "")) {
      res.setHeader("Allow", allowed.join(", "));
      return send(405, JSON.stringify({ error: "method not allowed", allow: allowed }));
    }
    if (path === "/healthz") return this.#health(send);   // no token: it says only ok, starting or stopping
    if (asset) return send(200, asset.body, asset.type);   // the page's files hold no data
    const foreign = foreignOrigin(req.headers);
    if (foreign) {
      this.hooks.log(`admin: 403 ${req.method} ${path} from ${req.socket.remoteAddress}: a cross-site request (${foreign})`);
      return send(403, JSON.stringify({ error: "PASTE_ERR_UNAUTHORIZED", message: `cross-site requests are refused (${foreign})` }));
    }
    if (!this.#authorized(req)) {
      this.hooks.log(`admin: 401 ${req.method} ${path} from ${req.socket.remoteAddress} (${req.headers.authorization ? "wrong token" : "no token"})`);
      res.setHeader("WWW-Authenticate", 'Bearer realm="paste-host"');
      return send(401, JSON.stringify({ error: "PASTE_ERR_UNAUTHORIZED", message: "a valid bearer token is required (see POOL.token)" }));
    }
    const route = `${req.method} ${path}`;
    if (route === "GET /v1/status") return this.#status(send);
    if (route === "GET /v1/series") return send(200, JSON.stringify({ points: this.#series.after(Number(params.get("after")) || 0) }));
    if (route === "GET /v1/log") return this.#log(params, send);
    if (route === "GET /metrics") {
      const h = this.hooks.handler?.();
      this.#g.info.reset();
      if (h) this.#g.info.set({ name: h.name, sha256: h.sha256, abi: String(h.abi) }, 1);
      return send(200, await this.registry.metrics(), this.registry.contentType);
    }
    if (route === "POST /v1/handler" && this.hooks.deploy) return this.#deploy(req, res, send);
    if (route === "POST /v1/handler/rollback" && this.hooks.rollback) return this.#settle(this.hooks.rollback(), send);
    if (route === "GET /v1/handlers" && this.hooks.history) return send(200, JSON.stringify(this.hooks.history(), null, 2));
    send(404, JSON.stringify({ error: "not found", paths: Object.entries(ROUTES).flatMap(([p, ms]) => ms.map((m) => `${m} ${p}`)) }));
  }

  #status(send: Send): void {
    if (!this.#latest) return send(503, JSON.stringify({ error: "starting" }));
    const s = this.#latest;
    const up = { startedAt: this.#startedAt, uptimeS: Math.round((Date.now() - Date.parse(this.#startedAt)) / 1000) };
    send(200, JSON.stringify({ ...s, ...up, handler: this.hooks.handler?.(), recordsPerSec: Math.round(this.#ratePerSec),
      rates: this.#series.latest ?? null }, null, 2));
  }

  /** #log -- GET /v1/log?from=SEQ&limit=N: a page of the log, read by the data path. */
  async #log(q: URLSearchParams, send: Send): Promise<void> {
    const from = Number(q.get("from") ?? 0);
    const limit = Number(q.get("limit") ?? 50);
    if (!Number.isSafeInteger(from) || from < 0 || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LOG_PAGE) {
      return send(400, JSON.stringify({ error: "PASTE_ERR_USAGE", message: `from must be a sequence number >= 0 and limit 1..${MAX_LOG_PAGE}` }));
    }
    if (!this.hooks.readLog) return send(404, JSON.stringify({ error: "not found" }));
    try {
      send(200, JSON.stringify(await this.hooks.readLog(from, limit)));
    } catch (e) {
      if (!(e instanceof PasteError)) throw e;
      send(503, JSON.stringify({ error: e.code, message: e.message }));
    }
  }

  #health(send: Send): void {
    if (this.hooks.stopping?.()) return send(503, "stopping\n", "text/plain");
    if (!this.#latest || (this.hooks.serving && !this.hooks.serving())) return send(503, "starting\n", "text/plain");
    send(200, "ok\n", "text/plain");
  }

  /** #deploy -- POST /v1/handler: the module and its config (upload.ts), deployed; a refusal of the upload itself is answered here. */
  async #deploy(req: IncomingMessage, res: ServerResponse, send: Send): Promise<void> {
    const u = await readUpload(req);
    if (!u.ok) {
      if (u.status === 413) res.setHeader("Connection", "close");   // the rest of the body was not read
      this.#g.deploys.inc({ result: u.error });
      return send(u.status, JSON.stringify({ error: u.error, message: u.message }));
    }
    return this.#settle(this.hooks.deploy!(u.bytes, u.name, u.config), send);
  }

  /** #settle -- a deploy's (or rollback's) answer: 200 with what changed, or the refusal's status and code. */
  async #settle(deploy: Promise<DeployResult>, send: Send): Promise<void> {
    try {
      const r = await deploy;
      this.#g.deploys.inc({ result: "ok" });
      send(200, JSON.stringify(r, null, 2));
    } catch (e) {
      if (!(e instanceof PasteError)) throw e;
      this.#g.deploys.inc({ result: e.code });
      send(DEPLOY_STATUS[e.code] ?? 500, JSON.stringify({ error: e.code, message: e.message }));
    }
  }
}
