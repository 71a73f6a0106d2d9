// control.ts -- the shared control array between the main thread and the
// data-path worker (worker.ts). A module of its own because importing
// worker.ts runs the worker.

import type { HandlerPhase } from "../core/runtime.js";

/** Slots of the shared control array. */
export const Ctl = {
  /** 1: stop after the batch in flight. */
  STOP: 0,
  /** 1: a message waits on the control port. */
  MAIL: 1,
  /** Milliseconds since WorkerConfig.epoch (+1) when the running handler call began; 0 when none runs. */
  BUSY_SINCE: 2,
  /** Which call: index into PHASES. */
  BUSY_PHASE: 3,
  /** 1: a trap stops the handler (a previous one can be restored); 0: serve on without the trapping requests. */
  STOP_ON_TRAP: 4,
  SIZE: 5,
} as const;
export const PHASES: readonly HandlerPhase[] = ["on_init", "on_replay", "on_rx", "on_close", "on_clean"];
