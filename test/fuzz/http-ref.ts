// http-ref.ts -- the reference for http-wal: Node's own HTTP/1.1 parser
// (llhttp, through a plain node:http server in its strict default), with
// http-wal's application rules on top. What it records per connection, in
// order, is what llhttp made of the stream: each request it parsed and what
// the rules did with it, and a parse error if one came. That record, not
// Node's socket (which may drop the response to a request that came before a
// malformed one in the same read), is what http-wal is compared with.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export type Outcome =
  | { kind: "accepted"; body: Buffer }   // a POST logged: 201
  | { kind: "ok" }                        // GET /healthz: 200
  | { kind: "405" }                       // anything else framed and whole
  | { kind: "refused" }                   // any 4xx/5xx refusal; the connection closes
  | { kind: "pending" };                  // parsed, its body still arriving

export interface Ledger {
  outcomes: Outcome[];
  /** Requests llhttp has read whole whose "end" has not been seen yet: settle them now. */
  settle: (() => void)[];
  /** The connection ends after the last outcome (a refusal, or a request that closes it). */
  closing: boolean;
}

const MAX_BODY = 1 << 20;
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"]);

export function referenceServer(): { server: Server; ledger: (localPort: number) => Ledger; listening: Promise<number> } {
  const ledgers = new Map<number, Ledger>();
  const of = (sock: Socket) => {
    const port = sock.remotePort!;
    if (!ledgers.has(port)) ledgers.set(port, { outcomes: [], settle: [], closing: false });
    return ledgers.get(port)!;
  };
  // requireHostHeader answers 400 without telling the application, and parses on: the rule is applied below instead
  const server = createServer({ requireHostHeader: false }, (req: IncomingMessage, res: ServerResponse) => {
    const l = of(req.socket);
    if (l.closing) return;
    const i = l.outcomes.push({ kind: "pending" }) - 1;
    const refuse = (status: number) => {
      l.outcomes[i] = { kind: "refused" };
      l.closing = true;
      res.writeHead(status, { Connection: "close", "Content-Length": "0" }).end();
    };
    // http-wal's rules where llhttp leaves the choice to the application
    const hosts = req.rawHeaders.filter((_, k) => k % 2 === 0 && req.rawHeaders[k].toLowerCase() === "host").length;
    if (hosts > 1 || (hosts === 0 && req.httpVersion === "1.1")) return refuse(400);   // RFC 9112 3.2: MUST 400
    if (req.headers["transfer-encoding"] !== undefined) return refuse(req.httpVersion === "1.0" ? 400 : 501);   // 6.1; chunked is not decoded
    if (!METHODS.has(req.method!)) return refuse(501);
    const len = req.headers["content-length"];
    if (req.method === "POST" && len === undefined) return refuse(411);
    if (len !== undefined && Number(len) > MAX_BODY) return refuse(413);
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      const body = Buffer.concat(chunks);
      const o: Outcome = req.method === "POST" ? { kind: "accepted", body } : req.method === "GET" && req.url === "/healthz" ? { kind: "ok" } : { kind: "405" };
      l.outcomes[i] = o;
      if (!res.shouldKeepAlive) l.closing = true;
      const status = o.kind === "accepted" ? 201 : o.kind === "ok" ? 200 : 405;
      if (!res.headersSent) res.writeHead(status, { "Content-Length": "0" }).end();
    };
    // a parse error later in the stream can stop "end" from coming: what
    // llhttp had read whole by then counts (req.complete), as it does for http-wal
    l.settle.push(() => req.complete && settle());
    req.on("end", settle);
  });
  // a client port comes round again after some thousands of connections: each connection starts a fresh ledger
  server.on("connection", (sock: Socket) => void ledgers.set(sock.remotePort!, { outcomes: [], settle: [], closing: false }));
  server.on("clientError", (e: NodeJS.ErrnoException, sock: Socket) => {
    // llhttp's refusals are HPE_* (HPE_HEADER_OVERFLOW is a 431); a reset is the client leaving
    // (HPE_INVALID_EOF_STATE is the client hanging up mid-request: the harness, done waiting)
    if (!e.code?.startsWith("HPE_") || e.code === "HPE_INVALID_EOF_STATE") return void sock.destroy();
    // bytes after a request that closes the connection: llhttp calls them an
    // error before the request's own response is out; RFC 9112 9.6 says they
    // are not to be processed, which is all http-wal does with them
    if (e.code === "HPE_CLOSED_CONNECTION") return;
    const l = of(sock);
    for (const f of l.settle.splice(0)) f();
    if (!l.closing) {
      l.outcomes.push({ kind: "refused" });
      l.closing = true;
    }
    if (sock.writable) sock.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    else sock.destroy();
  });
  const listening = new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
  return { server, ledger: (p) => ledgers.get(p) ?? { outcomes: [], settle: [], closing: false }, listening };
}

/** responses -- http-wal's responses on the wire, as outcomes; the X-Seq of each 201. */
export function responses(data: Buffer): { outcomes: Outcome[]; seqs: number[] } {
  const outcomes: Outcome[] = [];
  const seqs: number[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf("\r\n\r\n", at);
    if (end < 0) throw new Error(`a partial response from http-wal: ${JSON.stringify(data.subarray(at).toString("latin1"))}`);
    const head = data.subarray(at, end).toString("latin1");
    const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1]);
    at = end + 4 + Number(/\r\nContent-Length: (\d+)/i.exec(head)?.[1] ?? 0);
    if (status === 100) continue;
    if (status === 201) {
      outcomes.push({ kind: "accepted", body: Buffer.alloc(0) });
      seqs.push(Number(/\r\nX-Seq: (\d+)/.exec(head)![1]));
    } else if (status === 200) outcomes.push({ kind: "ok" });
    else if (status === 405) outcomes.push({ kind: "405" });
    else outcomes.push({ kind: "refused" });
  }
  return { outcomes, seqs };
}
