// status.ts -- the admin API's clients: `paste-host status` (one screen on a
// running host) and `paste-host deploy` (swap its handler, say what changed).

import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { DeployResult, HostSnapshot } from "../server/admin.js";
import { HandlerInvalidError, PasteError, UnauthorizedError, UsageError, catalogue } from "../core/errors.js";
import { formatSize } from "../core/size.js";
import { MAX_HANDLER_BYTES } from "../core/validate.js";
import { readConfigFile, type ConfigInfo } from "../core/config.js";
import { formatSpace } from "../core/space.js";

export type Status = HostSnapshot & { recordsPerSec: number };

export interface AdminTarget {
  pool?: string;
  admin?: string;
  tokenFile?: string;
  /** Give up on the request after this long (default 120 s: a deploy may wait and replay). */
  timeoutMs?: number;
}

/** adminRequest -- an authenticated request; the address and token default to the files beside the pool. */
async function adminRequest(o: AdminTarget, path: string, init: RequestInit = {}): Promise<{ res: Response; url: string }> {
  const { url, tokenFile } = locate(o);
  let token: string;
  try {
    token = readFileSync(tokenFile, "utf8").trim();
  } catch (e) {
    throw new UsageError(`cannot read the token file ${tokenFile}: ${(e as Error).message}`);
  }
  // A deadline on a timer that keeps the process alive: a host killed while
  // fetch is still sending the body can leave fetch settling never, and with
  // no socket left the process would just end.
  const ac = new AbortController();
  const ms = o.timeoutMs ?? 120_000;
  const deadline = setTimeout(() => ac.abort(new Error(`no answer in ${ms / 1000} s`)), ms);
  let res: Response;
  try {
    res = await fetch(`${url}${path}`, { ...init, signal: ac.signal, headers: { ...init.headers, Authorization: `Bearer ${token}` } });
  } catch (e) {
    throw new UsageError(`cannot reach the admin API at ${url}: ${(e as Error).message}`);
  } finally {
    clearTimeout(deadline);
  }
  if (res.status === 401) throw new UnauthorizedError(`the admin API at ${url} refused the token in ${tokenFile}`);
  return { res, url };
}

function locate(o: AdminTarget): { url: string; tokenFile: string } {
  let url = o.admin;
  let tokenFile = o.tokenFile;
  if (!url || !tokenFile) {
    if (!o.pool) throw new UsageError("say which host: --pool PATH (or --admin URL with --token-file FILE)");
    try {
      const a = JSON.parse(readFileSync(`${o.pool}.admin`, "utf8"));
      url ??= a.url;
      tokenFile ??= a.tokenFile;
    } catch {
      throw new UsageError(`no running host found for ${o.pool} (no ${o.pool}.admin): is paste-host run serving it?`);
    }
  }
  return { url: url!, tokenFile: tokenFile! };
}

/** fetchStatus -- GET /v1/status. */
export async function fetchStatus(o: AdminTarget): Promise<Status> {
  const { res, url } = await adminRequest(o, "/v1/status");
  if (!res.ok) throw new UsageError(`the admin API at ${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Status;
}

/**
 * deployHandler -- POST a module to /v1/handler; the result, or the host's
 * refusal as the PasteError of its code (the CLI exits non-zero with it).
 * name: what the host calls it (default: the file's name). A module over the
 * host's size limit is refused here, before the upload: the host would answer
 * 413 without reading it, and the upload could break off before that answer.
 */
export async function deployHandler(file: string, o: AdminTarget & { name?: string; config?: string }): Promise<DeployResult> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new HandlerInvalidError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (bytes.length > MAX_HANDLER_BYTES) {
    throw new HandlerInvalidError(`${file}: the module is larger than the ${MAX_HANDLER_BYTES / (1 << 20)} MiB limit for a handler; ` +
      "the old handler keeps serving");
  }
  const name = o.name ?? basename(file);
  // a config is read and its size checked here too, before the upload
  const config = o.config === undefined ? null : readConfigFile(o.config);
  const init: RequestInit = config === null
    ? { method: "POST", body: new Uint8Array(bytes), headers: { "Content-Type": "application/wasm", "X-Handler-Name": name } }
    : { method: "POST", body: deployForm(bytes, name, config), headers: { "X-Handler-Name": name } };
  const { res, url } = await adminRequest(o, "/v1/handler", init);
  return deployAnswer(res, url);
}

/** deployForm -- a deploy with a config: the multipart body POST /v1/handler reads (server/upload.ts). */
function deployForm(bytes: Uint8Array, name: string, config: Uint8Array): FormData {
  const form = new FormData();
  form.append("module", new Blob([new Uint8Array(bytes)], { type: "application/wasm" }), name);
  form.append("config", new Blob([new Uint8Array(config)]), "config");
  return form;
}

/** rollbackRunning -- POST /v1/handler/rollback: the running host deploys the handler that served before (tools/rollback.ts). */
export async function rollbackRunning(o: AdminTarget): Promise<DeployResult> {
  const { res, url } = await adminRequest(o, "/v1/handler/rollback", { method: "POST" });
  return deployAnswer(res, url);
}

/** deployAnswer -- a deploy's or rollback's result, or the host's refusal as the PasteError of its code. */
async function deployAnswer(res: Response, url: string): Promise<DeployResult> {
  const body = await res.text();
  let json: { error?: string; message?: string } & Partial<DeployResult>;
  try {
    json = JSON.parse(body);
  } catch {
    throw new UsageError(`the admin API at ${url} answered ${res.status}: ${body.slice(0, 200)}`);
  }
  if (!res.ok) {
    const C = catalogue.find((c) => c.code === json.error);
    throw C ? new C(json.message ?? C.summary) : new PasteError(json.error ?? "PASTE_ERR_DEPLOY_FAILED", json.message ?? body);
  }
  return json as DeployResult;
}

/** formatConfig -- a config as status and deploy show it. */
export function formatConfig(c: ConfigInfo | null | undefined): string {
  return c ? `${c.size} bytes, sha256 ${c.sha256.slice(0, 16)}...` : "none";
}

export function formatDeploy(r: DeployResult): string {
  const h = (x: { name: string; sha256: string; abi: number; size: number; config?: ConfigInfo | null }) =>
    `${x.name} (ABI ${x.abi}, ${x.size} bytes, sha256 ${x.sha256.slice(0, 16)}...; config ${formatConfig(x.config)})`;
  return [
    `${r.rolledBack ? "back to  " : "deployed "} ${h(r.handler)}`,
    `replacing ${h(r.previous)}`,
    `replayed  ${r.replayed} records into the new handler; data path paused ${r.pauseMs} ms ` +
      `(compiled in ${r.prepareMs} ms and waited ${r.waitMs} ms for a quiet batch boundary while serving)`,
  ].join("\n");
}

/** spaceLine -- the pool's pressure in words: ring buffers, the cleaner's reserve, whether cleaning is due. */
function spaceLine(sp: Status["space"] | undefined): string {
  if (!sp) return "unknown";
  const due = sp.pressure.length ? `due (${sp.pressure.join(", ")})` : "not due";
  return `${sp.ringBuffers} buffers in ring slots; ` + (sp.cleaner
    ? `${sp.reserveBuffers} buffers and ${formatSize(sp.logReserve)} of log kept for the handler's cleaner; cleaning ${due}`
    : `the handler has no cleaner (on_clean): the pool fills until it trims; pressure ${due}`);
}

/** usageRows -- buffers by state, and the data's bytes (space.ts); a host older than them reports neither. */
function usageRows(s: Status): [string, string][] {
  if (!s.space?.usage) return [["pool", `${s.stats.freeBuffers} of ${s.buffers} buffers free, ${s.stats.liveBuffers} held by the log`]];
  const f = formatSpace(s.space.usage);
  const refused = s.stats.refused ? `; ${s.stats.refused} writes refused for want of space since start` : "";
  return [["buffers", f.buffers], ["data", f.data + refused]];
}

/** commitLine -- the last report's commit latency; a host older than the histogram sent no percentiles. */
function commitLine(s: Status): string {
  const c = s.commit;
  const us = (v: number) => `${v.toFixed(1)} µs`;
  const pcts = c.p50Us === undefined ? "" : `p50 ${us(c.p50Us)}, p99 ${us(c.p99Us)}, `;
  return `${s.stats.batches} batches; last second: ${c.count} commits, ${pcts}mean ${us(c.meanUs)}, max ${us(c.maxUs)}`;
}

/** busyPollLine -- the budget, and how often a spin found work before it ran out (native/busypoll.c). */
function busyPollLine(b: Status["busyPoll"]): string {
  if (!b.budgetUs) return "busy poll off: every poll with nothing to do sleeps in the kernel";
  const found = b.spins ? `; ${b.hits} of ${b.spins} spins found work (${((100 * b.hits) / b.spins).toFixed(1)}%)` : "; no spin yet";
  return `busy poll ${b.budgetUs} µs before sleeping${found}`;
}

export function formatStatus(s: Status): string {
  const st = s.stats;
  const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : "0%");
  const rows: [string, string][] = [
    ["serving", `${s.listen}, pool ${s.pool}${s.portEngine ? `; port engine ${s.portEngine.engine} (${s.portEngine.reason})` : ""}`],
    ...(s.busyPoll ? [["polling", busyPollLine(s.busyPoll)] as [string, string]] : []),
    ["persist", `${s.persist.mode}: ${s.persist.reason}; flush ${s.flush}`],
    ["handler", `${s.handler.name} (ABI ${s.handler.abi}, ${s.handler.size} bytes, sha256 ${s.handler.sha256.slice(0, 16)}...), since ${s.handler.deployedAt}` +
      `${s.handler.previous ? `; previous ${s.handler.previous}` : ""}`],
    ["config", formatConfig(s.handler.config)],
    ["records", `${st.records} logged since start, ${s.recordsPerSec}/s now; committed seq ${st.committedSeq}; ${st.trimmed} trimmed`],
    ["commits", commitLine(s)],
    ...usageRows(s),
    ["log", `${formatSize(st.logUsed)} of ${formatSize(st.logCapacity)} used (${pct(st.logUsed, st.logCapacity)})`],
    ["space", spaceLine(s.space)],
    ["clients", `${s.connections.open} connected, ${s.connections.accepted} since start; ${st.replies} replies; ${st.handlerErrors} handler errors`],
  ];
  const last = s.handler.events?.at(-1);
  if (last && last.kind !== "started") rows.push(["last event", `${last.at} ${last.kind}: ${last.message}`]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}
