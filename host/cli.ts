#!/usr/bin/env node
// cli.ts -- the paste-host command. commander gives every subcommand its
// --help and consistent errors; each action is a few lines over host/.
//
// Exit status: 0 success, 1 a PASTE_ERR_* error (printed with its code), 2 a
// usage error (unknown option, missing argument).

import { Command, InvalidArgumentError as CommanderArgError, Option } from "commander";
import { mkdirSync, realpathSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { PasteError, UsageError } from "./errors.js";
import { formatPoolInfo } from "./format.js";
import { PERSIST_MODES, type PersistMode } from "./layout.js";
import { Pool } from "./pool.js";
import { formatSize, parseCount, parseSize } from "./size.js";

// commander calls these with the raw text; a UsageError becomes its usage error.
function optionParser<T>(parse: (text: string) => T) {
  return (text: string): T => {
    try {
      return parse(text);
    } catch (e) {
      throw new CommanderArgError((e as Error).message);
    }
  };
}

const persistOption = () =>
  new Option("--persist <mode>", "persistence mode: auto (DAX or tmpfs: pmem, else msync), pmem, msync or none")
    .choices(PERSIST_MODES as unknown as string[]);

export function buildProgram(): Command {
  const program = new Command("paste-host")
    .description("A WebAssembly-hosted logging runtime for non-volatile main memory (PASTE on Wasm).")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (s, write) => write(s) });

  const pool = program.command("pool").description("create and inspect pool files");

  pool
    .command("create")
    .description("create and format a pool file: superblock, log, netmap rings and buffers")
    .argument("<path>", "pool file to create (on /dev/shm to emulate NVMM, on a DAX mount for real NVMM)")
    .requiredOption("--size <size>", "file size, e.g. 64M or 1G (binary units)", optionParser((t) => parseSize(t, "--size")))
    .option("--buf-size <bytes>", "bytes per buffer, a power of two from 512 to 32768", optionParser((t) => parseSize(t, "--buf-size")), 2048)
    .option("--rings <n>", "ring pairs (one TX + one RX per data-path worker)", optionParser((t) => parseCount(t, "--rings")), 1)
    .option("--slots <n>", "slots per ring", optionParser((t) => parseCount(t, "--slots")), 1024)
    .option("--log-size <size>", "bytes for the log index (default: size/16, at least 256K)", optionParser((t) => parseSize(t, "--log-size")))
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

  pool
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

  return program;
}

/** run -- parse argv and run; returns the exit status instead of exiting. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  for (const c of program.commands) {
    c.exitOverride();
    for (const s of c.commands) s.exitOverride();
  }
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number };
    if (typeof err.code === "string" && err.code.startsWith("commander.")) {
      // help and version exit 0; usage mistakes exit 2 (commander already printed them)
      return err.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof PasteError) {
      console.error(`paste-host: ${e.code}: ${e.message}`);
      return e instanceof UsageError ? 2 : e.exitCode;
    }
    throw e;
  }
}

// Run when executed directly (bin or `node dist/host/cli.js`), not when imported.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(`paste-host: internal error: ${(e as Error).stack ?? e}`);
      process.exit(70);
    },
  );
}
