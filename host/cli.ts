#!/usr/bin/env node
// cli.ts -- the paste-host command: the table of commands (each defined in
// host/cli/), parsing, and the exit status. commander gives every subcommand
// its --help and consistent errors.
//
// Exit status: 0 success, 1 a PASTE_ERR_* error (printed with its code), 2 a
// usage error (unknown option, missing argument).

import { Command } from "commander";
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PasteError, UsageError } from "./core/errors.js";
import { packageRoot } from "./core/native.js";
import { build, deploy, dev, init, rollback, validate } from "./cli/handler.js";
import { logDump, logTail, logVerify } from "./cli/log.js";
import { handlersList, handlersRollback } from "./cli/handlers.js";
import { poolCreate, poolInfo } from "./cli/pool.js";
import { run as runCommand, status } from "./cli/run.js";
import { bench, crashtest, mem, torture, walClient } from "./cli/tools.js";

type Register = (parent: Command) => void;

/**
 * Every command, in the order --help lists them. A group is a command with
 * subcommands (`pool create`); each register function adds one command and
 * lives in host/cli/ beside the others of its kind.
 */
const COMMANDS: [group: { name: string; description: string } | null, commands: Register[]][] = [
  [{ name: "pool", description: "create and inspect pool files" }, [poolCreate, poolInfo]],
  [null, [init, build, dev, status, deploy, rollback, validate]],
  [{ name: "log", description: "inspect and check a pool's log (read-only; safe on a running pool)" }, [logDump, logTail, logVerify]],
  [{ name: "handlers", description: "the handlers a pool has served (kept beside it): list them, roll back to the one before" },
    [handlersList, handlersRollback]],
  [null, [mem, runCommand, walClient, crashtest, torture, bench]],
];

/** version -- this package's version, from its package.json (the one npm installed). */
export function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command("paste-host")
    .description("A WebAssembly-hosted logging runtime for non-volatile main memory (PASTE on Wasm).")
    .version(version(), "-V, --version", "print the version of paste-host")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (s, write) => write(s) });
  for (const [group, commands] of COMMANDS) {
    const parent = group ? program.command(group.name).description(group.description) : program;
    for (const add of commands) add(parent);
  }
  return program;
}

/** run -- parse argv and run; returns the exit status instead of exiting. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride();
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
  // exitCode, not exit(): stdout to a pipe is written asynchronously, and
  // process.exit() would cut a long `log dump` short.
  // A command whose work is left waiting on nothing (a promise no handle will
  // ever settle) would otherwise end with status 0 and no output: say so.
  let settled = false;
  process.on("beforeExit", () => {
    if (settled) return;
    console.error("paste-host: internal error: the command stopped with its work unfinished (it waited for something that can no longer happen)");
    process.exit(70);
  });
  run(process.argv.slice(2)).then(
    (code) => {
      settled = true;
      if (code !== 0 || process.exitCode === undefined) process.exitCode = code;   // an action may have set it
    },
    (e) => {
      console.error(`paste-host: internal error: ${(e as Error).stack ?? e}`);
      process.exit(70);
    },
  );
}
