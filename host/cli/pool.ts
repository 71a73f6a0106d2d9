// pool.ts -- `paste-host pool create` and `pool info`.

import { Command } from "commander";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { formatPoolInfo } from "./format.js";
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
        console.log(o.json ? JSON.stringify(info, null, 2) : formatPoolInfo(info));
      } finally {
        p.close();
      }
    });
}
