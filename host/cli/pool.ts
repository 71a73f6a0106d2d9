// pool.ts -- `paste-host pool create` and `pool info`.

import { Command } from "commander";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { formatPoolInfo } from "./format.js";
import { logSpace } from "../core/logwalk.js";
import { spaceOf } from "../core/space.js";
import type { PersistMode } from "../core/layout.js";
import { Pool } from "../core/pool.js";
import { formatSize, parseCount, parseSize } from "../core/size.js";
import { optionParser, persistOption } from "./options.js";

export function poolCreate(parent: Command): void {
  parent
    .command("create")
    .description("create and format a pool file: superblock, log, netmap rings and buffers")
    .argument("<path>", "pool file to create (on /dev/shm to emulate NVMM, on a DAX mount for real NVMM)")
    .requiredOption("--size <size>", "file size, e.g. 64M or 1G (binary units)", optionParser((t) => parseSize(t, "--size")))
    .option("--buf-size <bytes>", "bytes per buffer, a power of two from 512 to 32768", optionParser((t) => parseSize(t, "--buf-size")), 2048)
    .option("--rings <n>", "ring pairs (one TX + one RX per data-path worker)", optionParser((t) => parseCount(t, "--rings")), 1)
    .option("--slots <n>", "slots per ring", optionParser((t) => parseCount(t, "--slots")), 1024)
    .option("--log-size <size>", "bytes for the log index: one 64-byte line a record (default: 3/8 of size less the rings' buffers, at least 256K)", optionParser((t) => parseSize(t, "--log-size")))
    .addOption(persistOption().default("auto"))
    .option("--force", "replace an existing file (refused while a host has it open)", false)
    .action((path: string, o) => {
      mkdirSync(dirname(path), { recursive: true });
      Pool.create(path, {
        size: o.size,
        bufSize: o.bufSize,
        rings: o.rings,
        slots: o.slots,
        logSize: o.logSize,
        persist: o.persist as PersistMode,
        force: o.force,
      });
      const p = Pool.open(path, { readOnly: true });
      try {
        const i = p.info();
        console.log(
          `created ${path}: ${formatSize(i.geometry.poolSize)}, ${i.geometry.buffers} buffers of ${i.geometry.bufSize} B, ` +
            `persist ${i.persist.mode} (${i.persist.reason})`,
        );
      } finally {
        p.close();
      }
    });
}

export function poolInfo(parent: Command): void {
  parent
    .command("info")
    .description("show a pool's persistence mode, flush instruction, geometry, log usage and state")
    .argument("<path>", "pool file")
    .option("--json", "print machine-readable JSON", false)
    .addOption(persistOption().default("auto").hideHelp())
    .action((path: string, o) => {
      const p = Pool.open(path, { readOnly: true, persist: o.persist as PersistMode });
      try {
        const info = p.info();
        const g = info.geometry;
        // one walk of the log, no payload read; a running host may move the
        // head under it, and then `status` has the live figures
        const walked = walkedSpace(p, info.state.inUse);
        if (!walked) {
          console.log(o.json ? JSON.stringify(info, null, 2) : formatPoolInfo(info));
          return;
        }
        const space = spaceOf({
          bufSize: g.bufSize, buffers: g.buffers, ringBuffers: g.ringBuffers, liveBuffers: walked.buffers, holdBuffers: 0,
          freeBuffers: g.buffers - 1 - g.ringBuffers - walked.buffers, liveBytes: walked.liveBytes, logUsed: info.log.usedBytes,
        });
        console.log(o.json ? JSON.stringify({ ...info, space: { records: walked.records, ...space } }, null, 2) : formatPoolInfo(info, space, walked.records));
      } finally {
        p.close();
      }
    });
}

/** walkedSpace -- logSpace, or null where a running host changed the log under the walk. */
function walkedSpace(p: Pool, inUse: boolean): ReturnType<typeof logSpace> | null {
  try {
    return logSpace(p);
  } catch (e) {
    if (inUse) return null;
    throw e;
  }
}
