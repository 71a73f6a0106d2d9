// logger.ts -- the host's log lines: one pino JSON object per line for
// collectors, or the plain `paste-host: ...` lines a person reads at a
// terminal ("auto": pretty when stdout is a TTY).
//
// Both formats route by level, as the CLI always has: debug and info to
// stdout, warn and above to stderr. Every line is written before the call
// returns (a destination object, no worker-thread transport), so a process
// that exits right after logging, or a test reading its sink, loses nothing.

import pino from "pino";

import type { LogLevel } from "../core/handler.js";

export type { LogLevel };
export type LogFormat = "json" | "pretty" | "auto";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  fatal(msg: string, fields?: Record<string, unknown>): void;
  /** child -- a logger whose lines also carry bindings (json: top-level fields). */
  child(bindings: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  /** Default "auto": pretty when isTTY, json otherwise. */
  format?: LogFormat;
  /** Lowest level written; default "info". */
  level?: LogLevel;
  /** Receives each debug/info line, without its newline; default process.stdout. */
  out?: (line: string) => void;
  /** Receives each warn/error/fatal line, without its newline; default process.stderr. */
  err?: (line: string) => void;
  /** Is stdout a terminal? Default process.stdout.isTTY. */
  isTTY?: boolean;
}

/** pino's numbers, so both formats filter alike. */
const LEVELS: Record<LogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const NAMES = Object.keys(LEVELS) as LogLevel[];

const stdout = (line: string) => { process.stdout.write(`${line}\n`); };
const stderr = (line: string) => { process.stderr.write(`${line}\n`); };

/** createLogger -- a Logger writing to out/err synchronously, in the chosen format. */
export function createLogger(o: LoggerOptions = {}): Logger {
  const format = o.format ?? "auto";
  const pretty = format === "pretty" || (format === "auto" && (o.isTTY ?? process.stdout.isTTY ?? false));
  const level = o.level ?? "info";
  const out = o.out ?? stdout;
  const err = o.err ?? stderr;
  return pretty ? new PrettyLogger(LEVELS[level], out, err, {}) : jsonLogger(level, out, err);
}

// ------------------------------------------------------------------- json

function jsonLogger(level: LogLevel, out: (line: string) => void, err: (line: string) => void): Logger {
  // pino ends each object with "\n"; the sinks take lines without it.
  const sink = (to: (line: string) => void) => ({ write: (s: string) => to(s.endsWith("\n") ? s.slice(0, -1) : s) });
  // dedupe: a line goes only to the highest stream at or below its level, so
  // warn and above reach stderr alone, not stdout as well.
  const dest = pino.multistream(
    [{ level: "trace", stream: sink(out) }, { level: "warn", stream: sink(err) }],
    { dedupe: true },
  );
  const p = pino(
    {
      name: "paste-host",
      level,
      // pid is cheap and tells the CLI from a data-path worker's parent; the
      // hostname says nothing a collector does not already know.
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
  return new JsonLogger(p);
}

class JsonLogger implements Logger {
  constructor(private readonly p: pino.Logger) {}
  debug(msg: string, fields?: Record<string, unknown>): void { this.p.debug(fields ?? {}, msg); }
  info(msg: string, fields?: Record<string, unknown>): void { this.p.info(fields ?? {}, msg); }
  warn(msg: string, fields?: Record<string, unknown>): void { this.p.warn(fields ?? {}, msg); }
  error(msg: string, fields?: Record<string, unknown>): void { this.p.error(fields ?? {}, msg); }
  fatal(msg: string, fields?: Record<string, unknown>): void { this.p.fatal(fields ?? {}, msg); }
  child(bindings: Record<string, unknown>): Logger { return new JsonLogger(this.p.child(bindings)); }
}

// ----------------------------------------------------------------- pretty

/**
 * The lines the CLI has always printed, `paste-host: [CODE: ]message`: no
 * colour and no timestamp, so what a user copies into an issue is what
 * scripts and the tests match. Fields other than `code` are for collectors.
 */
class PrettyLogger implements Logger {
  constructor(
    private readonly min: number,
    private readonly out: (line: string) => void,
    private readonly err: (line: string) => void,
    private readonly bindings: Record<string, unknown>,
  ) {}

  private write(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    const n = LEVELS[level];
    if (n < this.min) return;
    const code = fields?.code ?? this.bindings.code;
    const line = `paste-host: ${code ? `${code}: ` : ""}${msg}`;
    (n >= LEVELS.warn ? this.err : this.out)(line);
  }

  debug(msg: string, fields?: Record<string, unknown>): void { this.write("debug", msg, fields); }
  info(msg: string, fields?: Record<string, unknown>): void { this.write("info", msg, fields); }
  warn(msg: string, fields?: Record<string, unknown>): void { this.write("warn", msg, fields); }
  error(msg: string, fields?: Record<string, unknown>): void { this.write("error", msg, fields); }
  fatal(msg: string, fields?: Record<string, unknown>): void { this.write("fatal", msg, fields); }
  child(bindings: Record<string, unknown>): Logger {
    return new PrettyLogger(this.min, this.out, this.err, { ...this.bindings, ...bindings });
  }
}

/** isLogLevel -- is s one of the level names (for --log-level and the like)? */
export function isLogLevel(s: string): s is LogLevel {
  return (NAMES as string[]).includes(s);
}
