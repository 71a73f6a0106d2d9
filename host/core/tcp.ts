// tcp.ts -- which engine the TCP port runs on, and why.
//
// io_uring (native/port_uring.c), opt-in for now (see defaultEngine): the kernel receives straight
// into the pool buffer it picks and one io_uring_enter per poll carries a
// batch's replies out and the next requests in. Where io_uring is refused
// (kernel.io_uring_disabled, a container's seccomp profile: Docker's default
// refuses it; a kernel before 6.1; a build without liburing), "auto" falls
// back to the epoll engine and says why; "uring" fails with that reason.

import { PasteError, UnsupportedError } from "./errors.js";
import { check, native } from "./native.js";

export type PortEngine = "auto" | "uring" | "epoll";
export const PORT_ENGINES: PortEngine[] = ["auto", "uring", "epoll"];

/**
 * defaultEngine -- PASTE_PORT_ENGINE if set (how the tests run the TCP suite
 * once per engine), else epoll. io_uring is opt-in (--port-engine uring, or
 * auto: io_uring where allowed) until a hang seen under load is understood:
 * twice in nine full test runs, the boundary fuzzer's host stopped answering
 * after handler restarts (takeovers) on io_uring, never on epoll, and never
 * in 450 cases of that fuzzer run alone. Since then: once more, in a run of
 * seven TCP files on io_uring while two other test suites loaded the
 * machine; not in 19 runs of the fuzzer at 100 cases beside four TCP files,
 * 2 runs of the whole suite on io_uring, 22 runs of those seven files. The
 * fuzzer now prints the host's threads (kernel stacks) for any case still
 * running after 5 s, so the next occurrence shows where it waits. Not seen
 * either in 15 runs of it at 60 cases beside a loop of the deploy and kv-wal
 * fuzz files on io_uring, nor in a whole suite with it in the uring project.
 * One lead ruled out (native/probes/uring-exit.c, on this kernel, 6.18): that a terminated
 * thread's DEFER_TASKRUN ring goes on taking data off its sockets after the
 * thread is gone, so a request vanishes with the old ring. It does not: the
 * thread's multishot receives end when it exits, silently (no completion),
 * data sent before and after stays in the socket, and the ring the next
 * thread opens receives all of it, whether the old ring is closed first or
 * not.
 */
export function defaultEngine(): PortEngine {
  const e = process.env.PASTE_PORT_ENGINE as PortEngine | undefined;
  return e && PORT_ENGINES.includes(e) ? e : "epoll";
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
    return { engine: "epoll", reason: from === "the default" ? "the default; --port-engine uring or auto for io_uring" : from };
  }
  try {
    check(n.uringListen(w, host, port, 4096));
    if (ask === "uring") return { engine: "io_uring", reason: from };
    return { engine: "io_uring", reason: engine ? "available" : `available (${from}: auto)` };
  } catch (e) {
    if (!(e instanceof UnsupportedError) || ask === "uring") throw e;
    check(n.tcpListen(w, host, port, 4096));
    return { engine: "epoll", reason: `fallback: ${(e as PasteError).message}` };
  }
}
