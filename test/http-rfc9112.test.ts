// http-rfc9112.test.ts -- http-wal's request framing, rule by rule: each row
// quotes the sentence of RFC 9112 (or RFC 9110, where 9112 points to it) it
// tests, sends a request that exercises it, and checks the status and
// whether the connection was closed after it. Where the RFC lets a server
// choose, http-wal takes the stricter choice, and the row says so.
// test/fuzz/http-wal.fuzz.test.ts compares the same parser with Node's.
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { root, startServer, type Server } from "./helpers.js";
import { converse } from "./fuzz/wire.js";

interface Rule {
  rule: string;
  quote: string;
  request: string;
  /** The status lines of the responses, in order. */
  statuses: number[];
  closed: boolean;
}

const ok = (path = "/healthz") => `GET ${path} HTTP/1.1\r\nHost: h\r\n\r\n`;
const post = (body: string, extra = "") => `POST /p HTTP/1.1\r\nHost: h\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`;

const rules: Rule[] = [
  // ---- 2.2 message parsing
  { rule: "9112 2.2", quote: "a recipient MAY recognize a single LF as a line terminator and ignore any preceding CR (stricter: it does not)",
    request: "GET /healthz HTTP/1.1\nHost: h\n\n", statuses: [400], closed: true },
  { rule: "9112 2.2", quote: "A recipient of such a bare CR MUST consider that element to be invalid or replace each bare CR with SP before processing",
    request: "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", statuses: [400], closed: true },
  { rule: "9112 2.2", quote: "a server that is expecting to receive and parse a request-line SHOULD ignore at least one empty line (CRLF) received prior to the request-line",
    request: `\r\n\r\n${ok()}`, statuses: [200], closed: false },
  { rule: "9112 2.2", quote: "(a bare LF before the request-line is ignored too, as llhttp ignores it: between requests it frames nothing)",
    request: `\n${ok()}\n${ok()}`, statuses: [200, 200], closed: false },
  { rule: "9112 2.2", quote: "A recipient that receives whitespace between the start-line and the first header field MUST either reject the message as invalid or consume each whitespace-preceded line",
    request: "GET /healthz HTTP/1.1\r\n Host: h\r\n\r\n", statuses: [400], closed: true },
  // ---- 2.3 and 3: the request line
  { rule: "9112 2.3", quote: "HTTP-name = %s\"HTTP\" (case-sensitive)",
    request: "GET /healthz http/1.1\r\nHost: h\r\n\r\n", statuses: [400], closed: true },
  { rule: "9110 6.2", quote: "A server can send a 505 (HTTP Version Not Supported) response if it wishes ... to refuse service of the client's major protocol version (stricter: any version but 1.0 and 1.1)",
    request: "GET /healthz HTTP/1.2\r\nHost: h\r\n\r\n", statuses: [505], closed: true },
  { rule: "9112 3", quote: "request-line = method SP request-target SP HTTP-version; recipients MAY instead parse on whitespace-delimited word boundaries (stricter: one SP exactly)",
    request: "GET  /healthz HTTP/1.1\r\nHost: h\r\n\r\n", statuses: [400], closed: true },
  { rule: "9112 3.2", quote: "A recipient SHOULD NOT attempt to autocorrect and then process the request without a redirect, since the invalid request-line might be deliberately crafted to bypass security filters",
    request: "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", statuses: [400], closed: true },
  { rule: "9110 9.1", quote: "The method token is case-sensitive ... An origin server that receives a request method that is unrecognized or not implemented SHOULD respond with the 501 (Not Implemented) status code",
    request: "get /healthz HTTP/1.1\r\nHost: h\r\n\r\n", statuses: [501], closed: true },
  { rule: "9112 3.2", quote: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message that lacks a Host header field",
    request: "GET /healthz HTTP/1.1\r\n\r\n", statuses: [400], closed: true },
  { rule: "9112 3.2", quote: "... and to any request message that contains more than one Host header field line",
    request: "GET /healthz HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", statuses: [400], closed: true },
  // ---- 5: field syntax
  { rule: "9112 5.1", quote: "A server MUST reject, with a response status code of 400 (Bad Request), any received request message that contains whitespace between a header field name and colon",
    request: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nhello", statuses: [400], closed: true },
  { rule: "9112 5.2", quote: "A server that receives an obs-fold in a request message ... MUST either reject the message by sending a 400 (Bad Request) ... or replace each received obs-fold with one or more SP octets",
    request: "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", statuses: [400], closed: true },
  { rule: "9110 5.5", quote: "a recipient of CR, LF, or NUL within a field value MUST either reject the message or replace each of those characters with SP",
    request: "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\u0000b\r\n\r\n", statuses: [400], closed: true },
  { rule: "9110 5.5", quote: "Field values containing other CTL characters are also invalid; however, recipients MAY retain such characters (stricter: refused)",
    request: "GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\u007fb\r\n\r\n", statuses: [400], closed: true },
  { rule: "9112 5.1", quote: "field-line = field-name \":\" OWS field-value OWS (the whitespace around a value is not part of it)",
    request: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length:\t 5 \t\r\n\r\nhello", statuses: [201], closed: false },
  // ---- 6.1 Transfer-Encoding, 6.3 message body length
  { rule: "9112 6.1", quote: "A server or client that receives an HTTP/1.0 message containing a Transfer-Encoding header field MUST treat the message as if the framing is faulty, even if a Content-Length is present, and close the connection",
    request: "POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", statuses: [400], closed: true },
  { rule: "9112 6.3 rule 3", quote: "If a message is received with both a Transfer-Encoding and a Content-Length header field ... ought to be handled as an error (it is)",
    request: "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", statuses: [400], closed: true },
  { rule: "9112 6.3 rule 4", quote: "If a Transfer-Encoding header field is present in a request and the chunked transfer coding is not the final encoding ... the server MUST respond with the 400 (Bad Request) status code and then close the connection",
    request: "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", statuses: [400], closed: true },
  { rule: "9112 6.1", quote: "A sender MUST NOT apply the chunked transfer coding more than once to a message body",
    request: "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", statuses: [400], closed: true },
  { rule: "9112 6.1", quote: "A server that receives a request message with a transfer coding it does not understand SHOULD respond with 501 (Not Implemented) (http-wal decodes no coding, chunked included)",
    request: "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", statuses: [501], closed: true },
  { rule: "9112 6.3 rule 5", quote: "If a message is received without Transfer-Encoding and with an invalid Content-Length header field, then the message framing is invalid and the recipient MUST treat it as an unrecoverable error ... the server MUST respond with a 400 (Bad Request) status code and then close the connection",
    request: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello", statuses: [400], closed: true },
  { rule: "9112 6.3 rule 5", quote: "... unless the field value can be successfully parsed as a comma-separated list ... and all values in the list are the same (stricter: a list is refused) -- the smuggling probe, 5 then 7",
    request: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhelloxx", statuses: [400], closed: true },
  { rule: "9112 6.3 rule 5", quote: "(stricter: two equal Content-Length fields are refused too)",
    request: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", statuses: [400], closed: true },
  { rule: "9112 6.3 rule 5", quote: "(stricter: an equal list is refused)",
    request: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello", statuses: [400], closed: true },
  { rule: "9112 6.3 rule 6", quote: "If a valid Content-Length header field is present without Transfer-Encoding, its decimal value defines the expected message body length in octets (Content-Length = 1*DIGIT: leading zeros are valid)",
    request: post("hello").replace("Content-Length: 5", "Content-Length: 005") + post("xy"), statuses: [201, 201], closed: false },
  { rule: "9112 6.3 rule 7", quote: "If this is a request message and none of the above are true, then the message body length is zero (a GET's next request starts right after its head)",
    request: ok() + ok(), statuses: [200, 200], closed: false },
  { rule: "9110 15.5.12", quote: "The 411 (Length Required) status code indicates that the server refuses to accept the request without a defined Content-Length (a POST's body is what is logged)",
    request: "POST /p HTTP/1.1\r\nHost: h\r\n\r\n", statuses: [411], closed: true },
  // ---- 9.3 pipelining, 9.6 tear-down
  { rule: "9112 9.3.2", quote: "A server MAY process a sequence of pipelined requests in parallel ... but it MUST send the corresponding responses in the same order that the requests were received",
    request: post("a") + ok() + post("bc") + ok("/other"), statuses: [201, 200, 201, 405], closed: false },
  { rule: "9112 9.6", quote: "A server that receives a \"close\" connection option MUST initiate closure of the connection after it sends the final response to the request that contained the \"close\" connection option ... The server MUST NOT process any further requests received on that connection",
    request: "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n" + post("never"), statuses: [200], closed: true },
  { rule: "9112 9.3", quote: "If the received protocol is HTTP/1.0, the \"keep-alive\" connection option is present ... the connection will persist (otherwise it closes)",
    request: "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n" + ok(), statuses: [200, 200], closed: true },
  { rule: "9110 9.3.2", quote: "The HEAD method is identical to GET except that the server MUST NOT send content in the response",
    request: "HEAD /healthz HTTP/1.1\r\nHost: h\r\n\r\n" + ok(), statuses: [200, 200], closed: false },
];

/** statuses -- the status codes of a stream of responses, each framed by its Content-Length (none for HEAD). */
function statusesOf(data: Buffer, heads: boolean[]): number[] {
  const out: number[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf("\r\n\r\n", at);
    if (end < 0) throw new Error(`a partial response: ${JSON.stringify(data.subarray(at).toString("latin1"))}`);
    const head = data.subarray(at, end).toString("latin1");
    const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1]);
    const len = Number(/\r\nContent-Length: (\d+)/i.exec(head)?.[1] ?? 0);
    at = end + 4 + (heads[out.length] ? 0 : len);
    out.push(status);
  }
  return out;
}

describe("http-wal follows RFC 9112's message framing", () => {
  let s: Server;
  const dir = mkdtempSync("/dev/shm/paste-rfc-");   // one server for every row: made before, removed after all
  beforeAll(async () => {
    s = await startServer({ pool: join(dir, "rfc.pool"), handler: join(root, "samples", "http-wal", "http-wal.wasm") });
  });
  afterAll(async () => {
    await s?.stop("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  // 9112 9.6: "If a server performs an immediate close of a TCP connection,
  // there is a significant risk that the client will not be able to read the
  // last HTTP response ... servers typically close a connection in stages."
  it("9112 9.6: a client still sending after a refused request reads the 400, and the close is a FIN, not a reset", async () => {
    const sock = connect(s.port, "127.0.0.1");
    const got: Buffer[] = [];
    let reset = "";
    const ended = new Promise<void>((res) => {
      sock.on("data", (d) => got.push(d));
      sock.on("end", () => res());
      sock.on("error", (e: NodeJS.ErrnoException) => ((reset = e.code ?? e.message), res()));
    });
    await new Promise<void>((res) => sock.once("connect", () => res()));
    // A pipelining client that has not read yet: the refused request, then
    // more requests while the 400 is on its way. The waits block this thread
    // (no read happens in between), as a busy client's would: a reset that
    // arrives meanwhile fails the next write, and the client never reads the
    // 400 its kernel holds.
    const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    sock.write("GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n");   // obs-fold: 400, then the server closes
    for (let i = 0; i < 5 && !sock.destroyed; i++) {
      pause(60);
      sock.write(`GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n`);
    }
    sock.end();
    await ended;
    sock.destroy();
    expect(reset, "the connection was reset").toBe("");
    expect(Buffer.concat(got).toString("latin1")).toMatch(/^HTTP\/1\.1 400 /);
  });

  it.each(rules.map((r) => [`${r.rule}: ${r.quote.slice(0, 90)}`, r] as const))("%s", async (_, r) => {
    const got = await converse(s.port, [Buffer.from(r.request, "latin1")], { idleMs: 300 });
    const heads = r.request.split(/(?=(?:GET|POST|HEAD) \/)/).map((x) => x.startsWith("HEAD"));
    expect(statusesOf(got.data, heads), got.data.toString("latin1")).toEqual(r.statuses);
    expect(got.closed, "connection closed").toBe(r.closed);
  });
});
