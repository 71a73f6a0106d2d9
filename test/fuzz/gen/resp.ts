// resp.ts -- RESP2 request streams for kv-wal and redis-server: the commands
// kv-wal supports, as arrays of bulk strings or inline, with binary keys and
// values, and mutations of their framing. Strings are latin1 (one char a
// byte), so a shrunk counterexample prints readably.
import fc from "fast-check";

/** A few keys, so that commands meet: binary ones included ("\xff\x01" and "\xfe\x01" were one key once). */
export const KEYS = ["a", "b", "key:1", "\xff\x01", "\xfe\x01", "", "a b", "x\r\ny", "\u0000z", "é"];

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u).toString("latin1"));
const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...KEYS) }, { weight: 1, arbitrary: bytes(12) });
const value = fc.oneof(fc.constantFrom("v", "", "1", "hello world"), bytes(200));
const word = fc.stringMatching(/^[a-z0-9]{1,6}$/);
const digits = fc.stringMatching(/^[0-9]{1,3}$/);   // never an option name: "SET k v 7" is a syntax error on both

/** The commands, as argument lists: right, and with the wrong number of arguments. */
export const command: fc.Arbitrary<string[]> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(key, value).map(([k, v]) => ["SET", k, v]) },
  { weight: 4, arbitrary: key.map((k) => ["GET", k]) },
  { weight: 2, arbitrary: fc.array(key, { minLength: 1, maxLength: 4 }).map((ks) => ["DEL", ...ks]) },
  { weight: 2, arbitrary: fc.array(key, { minLength: 1, maxLength: 4 }).map((ks) => ["EXISTS", ...ks]) },
  { weight: 1, arbitrary: fc.constant(["DBSIZE"]) },
  { weight: 1, arbitrary: fc.constantFrom(["FLUSHALL"], ["FLUSHALL", "SYNC"], ["flushall", "async"], ["FLUSHALL", "x"], ["FLUSHALL", "SYNC", "x"]) },
  { weight: 2, arbitrary: fc.option(value, { nil: undefined }).map((m) => (m === undefined ? ["PING"] : ["PING", m])) },
  { weight: 1, arbitrary: value.map((m) => ["ECHO", m]) },
  // never a number a lying length could cut down to 1..15: kv-wal has db 0 only (README, "Security")
  { weight: 1, arbitrary: fc.constantFrom(["SELECT", "0"], ["SELECT", "x"], ["SELECT", "-1"], ["SELECT", "00"], ["SELECT", "-99"], ["SELECT"]) },
  // wrong arity
  { weight: 2, arbitrary: fc.constantFrom(["GET"], ["SET"], ["DEL"], ["EXISTS"], ["ECHO"], ["DBSIZE", "x"], ["PING", "a", "b"]) },
  { weight: 1, arbitrary: fc.tuple(key, value, digits).map(([k, v, d]) => ["SET", k, v, d]) },
  { weight: 1, arbitrary: key.map((k) => ["SET", k]) },
  { weight: 1, arbitrary: fc.tuple(key, key).map(([a, b]) => ["GET", a, b]) },
  // unknown commands, their names and arguments echoed back in the error
  { weight: 2, arbitrary: fc.tuple(fc.oneof(word, bytes(8)), fc.array(fc.oneof(word, bytes(40)), { maxLength: 5 })).map(([c, a]) => [c, ...a]) },
  { weight: 1, arbitrary: fc.constant(["QUIT"]) },
);

/** inlineSafe -- can this argument be sent inline, unquoted? (no whitespace, no quote, no NUL) */
function inlineSafe(a: string): boolean {
  return a.length > 0 && !/[\s"'\u0000]/.test(a);
}

/** A framing mutation, applied to one command's encoding; `at` picks which occurrence. */
export type Mutation =
  | { kind: "count"; to: string }
  | { kind: "length"; at: number; to: string }
  | { kind: "lie"; at: number; by: number }
  | { kind: "crlf"; at: number; to: string }
  | { kind: "type"; at: number; to: string }
  | { kind: "insert"; at: number; bytes: string };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("count" as const), to: fc.constantFrom("-1", "0", "-0", "+2", "02", "2147483648", "99999999999999999999", "x", "", "1 ") }),
  fc.record({ kind: fc.constant("length" as const), at: fc.nat(8), to: fc.constantFrom("-1", "-2", "-0", "+3", "03", "536870913", "9223372036854775808", "", "x", "3 ") }),
  fc.record({ kind: fc.constant("lie" as const), at: fc.nat(8), by: fc.integer({ min: -4, max: 6 }) }),
  fc.record({ kind: fc.constant("crlf" as const), at: fc.nat(12), to: fc.constantFrom("", "\n", "\r", "\r\r\n", "\n\r") }),
  fc.record({ kind: fc.constant("type" as const), at: fc.nat(8), to: fc.constantFrom("+", ":", "-", "*", "x", "\u0000") }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(60), bytes: fc.oneof(fc.constantFrom("\r\n", "*", "$", "\u0000", " "), bytes(4)) }),
);

/** One command on the wire: its arguments, how it is sent, and at most one mutation. */
export interface Wire {
  args: string[];
  inline: boolean;
  /** inline: the separator between words and the line's end */
  sep: string;
  eol: string;
  mutation?: Mutation;
}

export const wire: fc.Arbitrary<Wire> = fc.record({
  args: command,
  inline: fc.boolean(),
  sep: fc.constantFrom(" ", "  ", "\t", " \t "),
  eol: fc.constantFrom("\r\n", "\r\n", "\n"),
  mutation: fc.option(mutation, { nil: undefined, freq: 3 }),
}, { requiredKeys: ["args", "inline", "sep", "eol"] });

/** encode -- the bytes of one command (as latin1), mutation applied. */
export function encode(w: Wire): string {
  const inline = w.inline && w.args.every(inlineSafe) && !w.args[0].startsWith("*");
  const s = inline ? w.args.join(w.sep) + w.eol : `*${w.args.length}\r\n` + w.args.map((a) => `$${a.length}\r\n${a}\r\n`).join("");
  return w.mutation ? mutate(s, w.mutation) : s;
}

function nth(s: string, re: RegExp, at: number): RegExpExecArray | undefined {
  const all = [...s.matchAll(re)];
  return all.length ? all[at % all.length] : undefined;
}

function mutate(s: string, m: Mutation): string {
  const put = (x: RegExpExecArray | undefined, to: (x: RegExpExecArray) => string) =>
    x ? s.slice(0, x.index) + to(x) + s.slice(x.index + x[0].length) : s;
  switch (m.kind) {
    case "count": return s.startsWith("*") ? s.replace(/^\*\d+/, `*${m.to}`) : s;
    case "length": return put(nth(s, /\$\d+/g, m.at), () => `$${m.to}`);
    case "lie": return put(nth(s, /\$(\d+)/g, m.at), (x) => `$${Math.max(0, Number(x[1]) + m.by)}`);
    case "crlf": return put(nth(s, /\r\n/g, m.at), () => m.to);
    case "type": return put(nth(s, /\$/g, m.at), () => m.to);
    case "insert": {
      const at = m.at % (s.length + 1);
      return s.slice(0, at) + m.bytes + s.slice(at);
    }
  }
}

/** A stream: commands pipelined on one connection, cut into segments at `cuts`. */
export const stream = fc.record({
  commands: fc.array(wire, { minLength: 1, maxLength: 8 }),
  cuts: fc.array(fc.nat(2000), { maxLength: 4 }),
});
