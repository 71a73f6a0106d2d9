// status.ts -- `paste-host status`: ask a running host's admin API and show
// what matters on one screen.

import { readFileSync } from "node:fs";
import type { HostSnapshot } from "./admin.js";
import { UnauthorizedError, UsageError } from "./errors.js";
import { formatSize } from "./size.js";

export type Status = HostSnapshot & { recordsPerSec: number };

/** fetchStatus -- GET /v1/status with the bearer token; the address and token default to the files beside the pool. */
export async function fetchStatus(o: { pool?: string; admin?: string; tokenFile?: string }): Promise<Status> {
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
  const token = readFileSync(tokenFile!, "utf8").trim();
  let res: Response;
  try {
    res = await fetch(`${url}/v1/status`, { headers: { Authorization: `Bearer ${token}` } });
  } catch (e) {
    throw new UsageError(`cannot reach the admin API at ${url}: ${(e as Error).message}`);
  }
  if (res.status === 401) throw new UnauthorizedError(`the admin API at ${url} refused the token in ${tokenFile}`);
  if (!res.ok) throw new UsageError(`the admin API at ${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Status;
}

export function formatStatus(s: Status): string {
  const st = s.stats;
  const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : "0%");
  const rows: [string, string][] = [
    ["serving", `${s.listen}, pool ${s.pool}`],
    ["persist", `${s.persist.mode}: ${s.persist.reason}; flush ${s.flush}`],
    ["handler", `${s.handler.name} (ABI ${s.handler.abi}, ${s.handler.size} bytes, sha256 ${s.handler.sha256.slice(0, 16)}...), loaded ${s.handler.loadedAt}`],
    ["records", `${st.records} logged since start, ${s.recordsPerSec}/s now; committed seq ${st.committedSeq}; ${st.trimmed} trimmed`],
    ["commits", `${st.batches} batches; last second: ${s.commit.count} commits, mean ${s.commit.meanUs.toFixed(1)} µs, max ${s.commit.maxUs.toFixed(1)} µs`],
    ["pool", `${st.freeBuffers} of ${s.buffers} buffers free, ${st.liveBuffers} held by the log; log ${formatSize(st.logUsed)} of ${formatSize(st.logCapacity)} (${pct(st.logUsed, st.logCapacity)})`],
    ["clients", `${s.connections.open} connected, ${s.connections.accepted} since start; ${st.replies} replies; ${st.handlerErrors} handler errors`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}
