// wire.ts -- one conversation over loopback: write chunks (a stream split at
// given points, each its own segment), collect what comes back until the peer
// closes or nothing has come for idleMs (the peer waits for more).
import { connect } from "node:net";

export interface Conversation {
  data: Buffer;
  /** The peer closed the connection (rather than falling silent, waiting). */
  closed: boolean;
  /** This side's port: how a server in this process tells the conversation apart. */
  localPort: number;
}

export function converse(port: number, chunks: Buffer[], o: { idleMs?: number; gapMs?: number; onConnect?: (localPort: number) => void; until?: (got: Buffer) => boolean } = {}): Promise<Conversation> {
  const idleMs = o.idleMs ?? 150;
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    sock.setNoDelay(true);
    const got: Buffer[] = [];
    let idle: NodeJS.Timeout | undefined;
    let sent = false;
    let settled = false;
    let localPort = 0;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      clearTimeout(limit);
      sock.destroy();
      resolve({ data: Buffer.concat(got), closed, localPort });
    };
    const arm = () => {
      clearTimeout(idle);
      if (sent) idle = setTimeout(() => finish(false), idleMs);
    };
    const limit = setTimeout(() => {
      settled = true;
      sock.destroy();
      reject(new Error(`no end to the conversation in 20 s; got ${JSON.stringify(Buffer.concat(got).toString("latin1").slice(0, 400))}`));
    }, 20_000);
    sock.on("data", (d) => {
      got.push(d);
      if (o.until?.(Buffer.concat(got))) finish(false);
      else arm();
    });
    sock.on("end", () => finish(true));
    sock.on("close", () => finish(true));
    // a peer that closes with unread input resets the connection: that is a close too
    sock.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" || e.code === "EPIPE" ? finish(true) : reject(e)));
    sock.on("connect", async () => {
      localPort = sock.localPort ?? 0;
      o.onConnect?.(localPort);
      for (let i = 0; i < chunks.length && !settled; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, o.gapMs ?? 1));
        if (!settled && !sock.destroyed) sock.write(chunks[i]);
      }
      sent = true;
      arm();
    });
  });
}

/** splitAt -- bytes cut at the given offsets (sorted, deduplicated, clipped to the length). */
export function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.min(Math.max(0, c), bytes.length)))].sort((a, b) => a - b).filter((c) => c > 0 && c < bytes.length);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    out.push(bytes.subarray(from, c));
    from = c;
  }
  out.push(bytes.subarray(from));
  return out;
}
