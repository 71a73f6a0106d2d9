// errors.ts -- the host's message for the last import call it refused.
import * as host from "./imports";

/** lastError -- the host's message for the last failed import call. */
export function lastError(): string {
  const cap: u32 = 512;
  const buf = heap.alloc(cap);
  const n = host.error(buf, cap);
  const s = String.UTF8.decodeUnsafe(buf, <usize>min<u32>(<u32>n, cap));
  heap.free(buf);
  return s;
}

/** failWith -- abort the handler call with what failed and the host's reason. */
export function failWith(what: string): void {
  abort(what + ": " + lastError());
}
