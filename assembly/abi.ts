// abi.ts -- the ABI exports `paste-host build` adds to every handler.
import { ABI_VERSION } from "./layout";
import { flushReplies } from "./outbox";
import { holdPending } from "./stream";

/** paste_abi_version -- the handler ABI this module was built for; the host refuses others. */
export function paste_abi_version(): i32 {
  return ABI_VERSION;
}

/**
 * paste_end -- the host calls it after each call into the handler (on_rx,
 * on_clean, on_close, on_init, on_replay), before it takes the RX slots
 * back: the streams hold what they still need (stream.ts), and the call's
 * replies go to the host in one import call (outbox.ts). ok 0: the call
 * trapped; its replies still go (the host sends what the batch owes before
 * it closes the connections of the requests left unreleased), the streams
 * that took pieces in it are reset.
 */
export function paste_end(ok: i32): void {
  holdPending(ok != 0);
  flushReplies();
}
