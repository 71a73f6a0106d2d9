// format.ts -- how `pool info` reads to a person: one screen, the durability
// facts first (mode and why, flush instruction), geometry after.

import { formatSize } from "../core/size.js";
import type { PoolInfo } from "../core/pool.js";
import { formatSpace, type Space } from "../core/space.js";

const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

function medium(i: PoolInfo): string {
  const fs = i.persist.filesystem;
  if (i.persist.medium === "dax") return `DAX on ${fs} (real NVMM)`;
  if (i.persist.medium === "tmpfs") return "tmpfs (RAM)";
  return `plain file on ${fs}`;
}

export function formatPoolInfo(i: PoolInfo, space?: Space, records?: number): string {
  const g = i.geometry;
  const usedPct = i.log.capacity ? ((100 * i.log.usedBytes) / i.log.capacity).toFixed(1) : "0.0";
  const shutdown = i.state.inUse
    ? `in use by pid ${i.state.ownerPid} (shown read-only)`
    : i.state.openCount === 0
      ? "clean (never opened by a host)"
      : i.state.cleanShutdown
        ? `clean (opened ${i.state.openCount} time${i.state.openCount === 1 ? "" : "s"}, last ${i.state.lastOpenAt})`
        : `NOT clean: the last host did not close it (pid ${i.state.ownerPid}); recovery runs at the next open`;
  const rows: [string, string][] = [
    ["pool", i.path],
    ["uuid", `${i.uuid}  (format v${i.formatVersion}, created ${i.createdAt})`],
    ["persist", `${i.persist.mode}: ${i.persist.reason}`],
    ["medium", `${medium(i)}; mode preference stored in the pool: ${i.persist.preference}`],
    ["flush", `${i.flush} (chosen by cpuid at start-up)`],
    ["size", `${formatSize(g.poolSize)} (${g.poolSize} bytes)`],
    ["buffers", `${g.buffers} x ${g.bufSize} B = ${formatSize(g.buffers * g.bufSize)}; ${g.ringBuffers} sit in ring slots, buffer 0 is reserved`],
    ["rings", `${g.rings} pair${g.rings === 1 ? "" : "s"} (TX + RX) x ${g.slotsPerRing} slots, netmap API 14 layout`],
    ["window", `${formatSize(g.windowSize)} at Wasm ${hex(g.windowBase)}..${hex(g.windowBase + g.windowSize)}; handler data from ${hex(g.handlerBase)}`],
    ["regions", `log @${hex(g.logOffset)} (${formatSize(g.logSize)}), rings @${hex(g.ringOffset)}, buffers @${hex(g.bufOffset)}`],
    ["log", `${formatSize(i.log.usedBytes)} of ${formatSize(i.log.capacity)} used (${usedPct}%); head ${i.log.head}, tail ${i.log.tail}, next live seq ${i.log.headSeq}`],
    ["shutdown", shutdown],
  ];
  if (space) {
    const f = formatSpace(space);
    rows.splice(rows.length - 1, 0, ["records", `${records} in the log`], ["space", f.buffers], ["data", f.data]);
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}
