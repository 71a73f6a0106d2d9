// log.ts -- `paste-host log dump`, `log tail` and `log verify`: the log read without a handler.

import { Command } from "commander";
import { LogCorruptError, PasteError } from "../core/errors.js";
import { preview, walkLog, type DumpedRecord } from "../core/logwalk.js";
import { Pool } from "../core/pool.js";
import { parseCount } from "../core/size.js";
import { tailLog } from "../tools/logtail.js";
import { optionParser } from "./options.js";

/** formatRecord -- one record as dump and tail print it: a line of text, or a JSON object with the payload in base64. */
function formatRecord(r: DumpedRecord, json: boolean): string {
  if (json) {
    return JSON.stringify({ seq: r.seq, len: r.len, crcOk: r.crcOk, crc: r.storedCrc, extents: r.extents, data: r.data.toString("base64") });
  }
  const ext = r.extents.map((e) => `${e.buf}+${e.off}:${e.len}`).join(",");
  return `${String(r.seq).padStart(8)}  ${String(r.len).padStart(7)} B  [${ext}]  ${r.crcOk ? "crc ok " : "CRC BAD"}  ${preview(r.data)}`;
}

export function logDump(parent: Command): void {
  parent
    .command("dump")
    .description("print the live records from the head: sequence, length, extents, checksum, payload")
    .argument("<path>", "pool file")
    .option("--json", "one JSON object per line, payload in base64", false)
    .option("--from <seq>", "start at this sequence number", optionParser((t) => parseCount(t, "--from")), 0)
    .option("--limit <n>", "stop after n records", optionParser((t) => parseCount(t, "--limit")))
    .action((path: string, o) => {
      const pool = Pool.open(path, { readOnly: true });
      try {
        let n = 0;
        for (const r of walkLog(pool, o.from)) {
          if (o.limit !== undefined && n >= o.limit) break;
          n++;
          console.log(formatRecord(r, o.json));
        }
        if (!o.json) console.error(`${n} record${n === 1 ? "" : "s"}`);
      } finally {
        pool.close();
      }
    });
}

export function logTail(parent: Command): void {
  parent
    .command("tail")
    .description("print committed records as they commit, read-only beside a running host: the newest, or from --from; --follow keeps going")
    .argument("<path>", "pool file")
    .option("--from <seq>", "start at this sequence number (default: the newest --lines records)", optionParser((t) => parseCount(t, "--from")))
    .option("-n, --lines <n>", "without --from: how many of the newest records to print first", optionParser((t) => parseCount(t, "--lines")), 10)
    .option("-f, --follow", "keep printing records as they commit, until Ctrl-C (SIGINT) or SIGTERM", false)
    .option("--json", "one JSON object per line, payload in base64", false)
    .option("--interval-ms <ms>", "how often --follow looks for new records", optionParser((t) => parseCount(t, "--interval-ms")), 200)
    .action(async (path: string, o) => {
      const t = tailLog(path, { from: o.from, lines: o.lines, follow: o.follow, intervalMs: Math.max(1, o.intervalMs) },
        (r) => console.log(formatRecord(r, o.json)),
        (first, last) => console.error(`paste-host: records ${first}..${last} were trimmed before they could be printed`));
      const stop = () => t.stop();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      try {
        await t.done;
      } finally {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
    });
}

export function logVerify(parent: Command): void {
  parent
    .command("verify")
    .description("check every live record's crc32c and the log's structure; exit 0 only if all hold")
    .argument("<path>", "pool file")
    .action((path: string) => {
      const pool = Pool.open(path, { readOnly: true });
      try {
        let ok = 0;
        const bad: number[] = [];
        for (const r of walkLog(pool)) {
          if (r.crcOk) ok++;
          else {
            bad.push(r.seq);
            console.log(`seq ${r.seq}: payload checksum mismatch (stored 0x${r.storedCrc.toString(16).padStart(8, "0")}, computed 0x${r.computedCrc.toString(16).padStart(8, "0")})`);
          }
        }
        if (bad.length) {
          throw new LogCorruptError(`${bad.length} of ${ok + bad.length} records fail their checksum: seq ${bad.slice(0, 20).join(", ")}${bad.length > 20 ? ", ..." : ""}`);
        }
        console.log(`ok: ${ok} record${ok === 1 ? "" : "s"}, every checksum holds`);
      } catch (e) {
        if (e instanceof PasteError && e.code === "PASTE_ERR_POOL_CORRUPT") throw new LogCorruptError(e.message, { cause: e });
        throw e;
      } finally {
        pool.close();
      }
    });
}
