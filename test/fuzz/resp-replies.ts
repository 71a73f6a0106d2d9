// resp-replies.ts -- a RESP2 reply stream cut into replies, for comparing
// two servers: errors keep only their class (the word after '-'), since an
// error's wording may differ between kv-wal and Redis but its class may not.

/** replies -- the replies in data (latin1), normalized; an unfinished tail is kept as it is, marked. */
export function replies(data: Buffer): string[] {
  const s = data.toString("latin1");
  const out: string[] = [];
  let at = 0;
  while (at < s.length) {
    const end = one(s, at);
    if (end < 0) {
      out.push(`(unfinished) ${s.slice(at)}`);
      break;
    }
    const r = s.slice(at, end);
    out.push(r.startsWith("-") ? `-${/^-(\S*)/.exec(r)![1]}` : r);
    at = end;
  }
  return out;
}

/** one -- the end of the reply at `at`, or -1 if it is not all there. */
function one(s: string, at: number): number {
  const eol = s.indexOf("\r\n", at);
  if (eol < 0) return -1;
  const type = s[at];
  if (type === "+" || type === "-" || type === ":") return eol + 2;
  const n = Number(s.slice(at + 1, eol));
  if (type === "$") {
    if (n < 0) return eol + 2;
    return eol + 2 + n + 2 <= s.length ? eol + 2 + n + 2 : -1;
  }
  if (type === "*") {
    let p = eol + 2;
    for (let i = 0; i < n; i++) {
      p = one(s, p);
      if (p < 0) return -1;
    }
    return p;
  }
  throw new Error(`not a RESP reply at ${at}: ${JSON.stringify(s.slice(at, at + 40))}`);
}
