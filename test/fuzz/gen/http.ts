// http.ts -- HTTP/1.1 request streams for http-wal and Node's parser: valid
// requests pipelined, with mutations of their framing fields (duplicated,
// invalid, conflicting and oversized lengths and headers, line endings,
// folding). Strings are latin1 (one char a byte).
//
// Left out on purpose, as documented differences (README, "Security"), each
// covered by a row of test/http-rfc9112.test.ts instead: a bare LF before the
// request line, more than one SP in the request line, versions other than
// HTTP/1.x, an empty Transfer-Encoding, bytes after a request that closes the
// connection; and HEAD, Expect and CONNECT, whose responses change framing.
import fc from "fast-check";

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u).toString("latin1"));
const token = fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/);
const fieldValue = fc.stringMatching(/^[ -~]{0,20}$/).map((v) => v.trim());

export type HttpMutation =
  | { kind: "dupLength"; delta: number }
  | { kind: "badLength"; to: string }
  | { kind: "lie"; by: number }
  | { kind: "te"; to: string; keepLength: boolean }
  | { kind: "spaceBeforeColon"; at: number }
  | { kind: "fold"; at: number }
  | { kind: "lineEnd"; at: number; to: string }
  | { kind: "ctl"; at: number; c: string }
  | { kind: "host"; count: 0 | 2 }
  | { kind: "bigHeader"; size: number }
  | { kind: "method"; to: string }
  | { kind: "version"; to: string }
  | { kind: "badName"; name: string }
  | { kind: "leadingCrlf"; n: number };

export const httpMutation: fc.Arbitrary<HttpMutation> = fc.oneof(
  fc.record({ kind: fc.constant("dupLength" as const), delta: fc.integer({ min: -2, max: 2 }) }),
  fc.record({ kind: fc.constant("badLength" as const), to: fc.constantFrom("+5", "-1", "5 5", "", "0x5", "5, 5", "5,5", "99999999999999999999", "1e3", "\t3 ", "007") }),
  fc.record({ kind: fc.constant("lie" as const), by: fc.integer({ min: -3, max: 6 }) }),
  fc.record({ kind: fc.constant("te" as const), to: fc.constantFrom("chunked", "gzip, chunked", "chunked, gzip", "gzip", "identity", "CHUNKED", "chunked, chunked"), keepLength: fc.boolean() }),
  fc.record({ kind: fc.constant("spaceBeforeColon" as const), at: fc.nat(5) }),
  fc.record({ kind: fc.constant("fold" as const), at: fc.nat(5) }),
  fc.record({ kind: fc.constant("lineEnd" as const), at: fc.nat(6), to: fc.constantFrom("\n", "\r", "\r\r\n") }),
  fc.record({ kind: fc.constant("ctl" as const), at: fc.nat(5), c: fc.constantFrom("\u0000", "\u0001", "\u007f", "\r", "\u00ff", "\t") }),
  fc.record({ kind: fc.constant("host" as const), count: fc.constantFrom(0 as const, 2 as const) }),
  fc.record({ kind: fc.constant("bigHeader" as const), size: fc.constantFrom(100, 2000, 20_000) }),
  fc.record({ kind: fc.constant("method" as const), to: fc.constantFrom("get", "Post", "FOO", "P@ST", "") }),
  fc.record({ kind: fc.constant("version" as const), to: fc.constantFrom("HTTP/1.2", "http/1.1", "HTTP/1.", "HTTP/11", "HTTP/1.1 ") }),
  fc.record({ kind: fc.constant("badName" as const), name: fc.constantFrom("X A", "", "X\"A", "X(A)", "é") }),
  fc.record({ kind: fc.constant("leadingCrlf" as const), n: fc.integer({ min: 1, max: 3 }) }),
);

export interface Req {
  method: string;
  target: string;
  http10: boolean;
  headers: [string, string][];
  body: string;
  mutation?: HttpMutation;
}

export const request: fc.Arbitrary<Req> = fc.record({
  method: fc.constantFrom("POST", "POST", "POST", "POST", "GET", "GET", "PUT", "DELETE", "OPTIONS"),
  target: fc.constantFrom("/", "/healthz", "/events?x=1", "/a/b%20c", "*"),
  http10: fc.constantFrom(false, false, false, true),   // shrinks towards HTTP/1.1
  headers: fc.array(fc.tuple(token.map((t) => `X-${t}`), fieldValue), { maxLength: 3 }),
  body: fc.oneof(bytes(300), fc.constantFrom("", "hello")),
  mutation: fc.option(httpMutation, { nil: undefined, freq: 2 }),
}, { requiredKeys: ["method", "target", "http10", "headers", "body"] });

/** encode -- one request's bytes; `last` says whether it may close the connection (HTTP/1.0 without keep-alive). */
export function encodeRequest(r: Req, last: boolean): string {
  const m = r.mutation;
  const method = m?.kind === "method" ? m.to : r.method;
  const version = m?.kind === "version" ? m.to : r.http10 ? "HTTP/1.0" : "HTTP/1.1";
  const hasBody = r.method === "POST" || r.body.length > 0;
  const lines: [string, string][] = [];
  const hosts = m?.kind === "host" ? m.count : 1;
  for (let i = 0; i < hosts; i++) lines.push(["Host", i ? "other.example" : "fuzz.example"]);
  lines.push(...r.headers);
  if (r.http10 && !last) lines.push(["Connection", "keep-alive"]);
  const body = r.method === "POST" || hasBody ? r.body : "";
  let len: string | undefined = hasBody ? String(body.length) : undefined;
  if (m?.kind === "badLength") len = m.to;
  if (m?.kind === "lie" && hasBody) len = String(Math.max(0, body.length + m.by));
  if (len !== undefined && !(m?.kind === "te" && !m.keepLength)) lines.push(["Content-Length", len]);
  if (m?.kind === "dupLength" && hasBody) lines.push(["Content-Length", String(Math.max(0, body.length + m.delta))]);
  if (m?.kind === "te") lines.push(["Transfer-Encoding", m.to]);
  if (m?.kind === "bigHeader") lines.push(["X-Big", "b".repeat(m.size)]);
  if (m?.kind === "badName") lines.push([m.name, "v"]);
  const text = lines.map(([n, v], i) => {
    let line = `${n}${m?.kind === "spaceBeforeColon" && m.at % lines.length === i ? " " : ""}: ${v}`;
    if (m?.kind === "ctl" && m.at % lines.length === i) line = `${line.slice(0, line.length - 1)}${m.c}${line.slice(-1)}`;
    if (m?.kind === "fold" && m.at % lines.length === i) line += "\r\n folded";
    return line;
  });
  const all = [`${method} ${r.target} ${version}`, ...text, ""];
  let out = all.map((l, i) => l + (m?.kind === "lineEnd" && m.at % all.length === i ? m.to : "\r\n")).join("");
  if (m?.kind === "leadingCrlf") out = "\r\n".repeat(m.n) + out;
  return out + body;
}

/** Whether a request, as generated, asks the connection to close after it (so nothing may follow it). */
export function closes(r: Req): boolean {
  return r.http10;
}

export const httpStream = fc.record({
  requests: fc.array(request, { minLength: 1, maxLength: 6 }),
  cuts: fc.array(fc.nat(3000), { maxLength: 4 }),
});

/** streamBytes -- the requests in order; an HTTP/1.0 request is the last one kept (it closes the connection). */
export function streamBytes(reqs: Req[]): { bytes: string; closing: boolean } {
  const kept: Req[] = [];
  for (const r of reqs) {
    kept.push(r);
    if (closes(r)) break;
  }
  return { bytes: kept.map((r, i) => encodeRequest(r, i === kept.length - 1)).join(""), closing: closes(kept[kept.length - 1]) };
}
