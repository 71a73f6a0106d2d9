// handlers.ts -- the handlers a running host has served, newest (the serving
// one) last, with their bytes: what a stopped handler is replaced with, and
// what status shows. The pool's own history, across restarts, is
// core/handlerstore.ts; this one lives as long as the process.

import { sameConfig } from "../core/config.js";
import type { ServedHow } from "../core/handlerstore.js";
import type { HandlerEvent, HandlerView } from "./admin.js";
import { Ctl } from "./control.js";
import type { HandlerSummary } from "./worker.js";

/** Handlers kept for restoring, newest last. */
const KEEP_HANDLERS = 8;

/** A handler the host can run: its bytes, what validation found, when it took over. */
export interface Installed {
  bytes: Uint8Array;
  /** The config it serves with (empty: none). */
  config: Uint8Array;
  summary: HandlerSummary;
  since: string;
}

/**
 * Handlers -- the handlers this host has run, newest (the serving one) last,
 * and what happened to them: what a stopped handler is replaced with, and
 * what status shows.
 */
export class Handlers {
  readonly list: Installed[];
  readonly events: HandlerEvent[] = [];

  /** served -- told whenever another handler starts to serve: the pool's handler history records it. */
  constructor(first: Installed, private readonly ctl: Int32Array, private readonly served: (h: Installed, how: ServedHow) => void) {
    this.list = [first];
  }

  get current(): Installed {
    return this.list[this.list.length - 1];
  }

  event(kind: HandlerEvent["kind"], message: string): void {
    this.events.push({ at: new Date().toISOString(), kind, handler: this.current.summary.name, message });
    if (this.events.length > 20) this.events.shift();
  }

  /** view -- what status shows of the handlers: the serving one, the one before, those kept, the events. */
  view(): HandlerView {
    const c = this.current;
    return { ...c.summary, deployedAt: c.since, previous: this.list.at(-2)?.summary.name ?? null, events: this.events,
      history: this.list.map((h) => ({ ...h.summary, since: h.since })) };
  }

  /**
   * push -- a deployed handler took over. A rolled-back one replaces the one
   * it came back from, and its own older entry if that is the one before (a
   * rollback's target is the pool's, handlerstore.ts: after a restart it may
   * be older than anything this process ran).
   */
  push(h: Installed, rollback = false): void {
    if (rollback) {
      this.list.pop();
      const top = this.list.at(-1);
      if (top && top.summary.sha256 === h.summary.sha256 && sameConfig(top.summary.config, h.summary.config)) this.list.pop();
    }
    this.list.push(h);
    if (this.list.length > KEEP_HANDLERS) this.list.splice(0, this.list.length - KEEP_HANDLERS);
    this.#changed();
    this.served(h, rollback ? "rollback" : "deploy");
  }

  /** drop -- the serving handler was stopped: the one before it serves again (false if there is none). */
  drop(): boolean {
    if (this.list.length < 2) return false;
    this.list.pop();
    this.#changed();
    this.served(this.current, "restored");
    return true;
  }

  /** #changed -- stopOnTrap: a trapping handler is replaced when there is an older one to go back to. */
  #changed(): void {
    Atomics.store(this.ctl, Ctl.STOP_ON_TRAP, this.list.length > 1 ? 1 : 0);
  }
}
