// tcp.ts -- which engine the TCP port runs on, and why.
//
// io_uring (native/port_uring.c), the default wherever the kernel allows
// it: the kernel receives straight into the pool buffer it picks and one
// io_uring_enter per poll carries a batch's replies out and the next
// requests in. Where io_uring is refused (kernel.io_uring_disabled, a
// container's seccomp profile: Docker's default refuses it; a kernel before
// 6.1; a build without liburing), "auto" (the default) falls back to the
// epoll engine and says why; "uring" fails with that reason.

import { PasteError, UnsupportedError } from "./errors.js";
import { check, native } from "./native.js";

export type PortEngine = "auto" | "uring" | "epoll";
export const PORT_ENGINES: PortEngine[] = ["auto", "uring", "epoll"];

/**
 * defaultEngine -- PASTE_PORT_ENGINE if set (how the tests run the TCP suite
 * once per engine), else auto: io_uring where allowed, else epoll.
 *
 * io_uring was opt-in for a while: twice in nine full test runs under load,
 * and once more beside two other suites, the boundary fuzzer's host stopped
 * answering after handler restarts, always on io_uring. The fuzzer's slow
 * cases (a case still running 5 s in, a handler restart taking 3-6 s, on
 * either engine) all held a reply(conn, ptr, 2^31) from a valid range of the
 * handler's memory: the host copied each such reply (up to gigabytes, in a
 * native call the watchdog cannot stop) and kept the memory. Since replies
 * copy at most 64 MiB a batch (native/reply.c), 17 runs of 120 cases on
 * io_uring beside a loop of two other TCP files had no slow case, where five
 * runs before had four; and the whole suite runs with the fuzzer on both
 * engines. A lead ruled out on the way (native/probes/uring-exit.c, Linux
 * 6.18): that a terminated thread's DEFER_TASKRUN ring goes on taking data
 * off its sockets. It does not: its multishot receives end when the thread
 * exits, and the next thread's ring receives everything.
 */
export function defaultEngine(): PortEngine {
  const e = process.env.PASTE_PORT_ENGINE as PortEngine | undefined;
  return e && PORT_ENGINES.includes(e) ? e : "auto";
}

/** The engine a port runs on ("io_uring" or "epoll") and why that one. */
export interface EngineChoice {
  engine: string;
  reason: string;
}

/** whence -- where the engine asked for came from, for the startup line. */
function whence(engine: PortEngine | undefined): string {
  if (engine) return `--port-engine ${engine}`;
  const env = process.env.PASTE_PORT_ENGINE;
  return env && PORT_ENGINES.includes(env as PortEngine) ? `PASTE_PORT_ENGINE=${env}` : "the default";
}

/**
 * listenOn -- attach the TCP port to worker w on host:port with the engine
 * asked for (none: defaultEngine()); the reason names where the choice came from.
 */
export function listenOn(w: unknown, host: string, port: number, engine?: PortEngine): EngineChoice {
  const n = native();
  const ask = engine ?? defaultEngine();
  const from = whence(engine);
  if (ask === "epoll") {
    check(n.tcpListen(w, host, port, 4096));
    return { engine: "epoll", reason: from };
  }
  try {
    check(n.uringListen(w, host, port, 4096));
    if (ask === "uring") return { engine: "io_uring", reason: from };
    if (engine) return { engine: "io_uring", reason: "available" };
    return { engine: "io_uring", reason: from === "the default" ? "the default: io_uring where the kernel allows it" : `available (${from})` };
  } catch (e) {
    if (!(e instanceof UnsupportedError) || ask === "uring") throw e;
    check(n.tcpListen(w, host, port, 4096));
    return { engine: "epoll", reason: `fallback: ${(e as PasteError).message}` };
  }
}
