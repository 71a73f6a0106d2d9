// native.ts -- the koffi bindings to native/build/libpaste.so, one line per C
// function, in the order of native/paste.h. Nothing here adds behaviour: the
// Pool class (pool.ts) turns return codes into errors and structs into objects.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { NativeMissingError, fromNative, type PasteError } from "./errors.js";

const require = createRequire(import.meta.url);
type Koffi = typeof import("koffi");

/** The package root: host/ and dist/host/ both sit below it. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new NativeMissingError("cannot find the paste-host package root");
    dir = up;
  }
  return dir;
}

export const libraryPath: string = process.env.PASTE_NATIVE_LIB
  ? resolve(process.env.PASTE_NATIVE_LIB)
  : join(packageRoot(), "native", "build", "libpaste.so");

/** structs -- the C structs the bindings pass, field for field as in native/paste.h. */
function structs(koffi: Koffi): void {
  koffi.opaque("paste_pool");
  koffi.opaque("paste_worker");
  koffi.struct("paste_create_opts", {
    size: "uint64_t", log_size: "uint64_t", buf_size: "uint32_t", nrings: "uint32_t",
    ring_slots: "uint32_t", persist: "uint32_t", force: "uint32_t", reserved: "uint32_t",
  });
  koffi.struct("paste_info", {
    pool_size: "uint64_t", created_ns: "uint64_t", log_ofs: "uint64_t", log_size: "uint64_t",
    ring_ofs: "uint64_t", ring_size: "uint64_t", buf_ofs: "uint64_t",
    window_size: "uint64_t", window_base: "uint64_t", handler_base: "uint64_t",
    log_head: "uint64_t", log_head_seq: "uint64_t", log_tail: "uint64_t", log_capacity: "uint64_t",
    open_count: "uint64_t", last_open_ns: "uint64_t",
    version: "uint32_t", buf_size: "uint32_t", nbufs: "uint32_t", nrings: "uint32_t",
    ring_slots: "uint32_t", ring_bufs: "uint32_t",
    persist_pref: "uint32_t", persist: "uint32_t", medium: "uint32_t", flush: "uint32_t",
    clean: "uint32_t", read_only: "uint32_t", in_use: "uint32_t", owner_pid: "uint32_t",
    uuid: koffi.array("uint8_t", 16, "Array"),
  });
  koffi.struct("paste_recovery", {
    records: "uint64_t", bytes: "uint64_t", first_seq: "uint64_t", last_seq: "uint64_t", next_seq: "uint64_t",
    corrupt: "uint64_t", first_corrupt_seq: "uint64_t", skipped: "uint64_t", torn_pos: "uint64_t",
    discarded: "uint64_t", torn: "uint32_t", was_clean: "uint32_t", live_bufs: "uint32_t", free_bufs: "uint32_t",
    beyond_tail: "uint64_t",
  });
  koffi.struct("paste_rec_info", {
    seq: "uint64_t", pos: "uint64_t", len: "uint32_t", nextents: "uint32_t", status: "uint32_t",
    stored_crc: "uint32_t", computed_crc: "uint32_t", reserved: "uint32_t",
  });
  koffi.struct("paste_sim_rec", { seq: "uint64_t", len: "uint32_t", crc: "uint32_t" });
  koffi.struct("paste_sim_report", {
    steps: "uint64_t", committed: "uint64_t", trimmed: "uint64_t", appended: "uint64_t", crashed: "uint32_t", reserved: "uint32_t",
  });
  koffi.struct("paste_sim_point", {
    step: "uint64_t", seed: "uint64_t", committed: "uint64_t", trimmed: "uint64_t", appended: "uint64_t",
    replies: "uint64_t", tags: "uint32_t", reserved: "uint32_t",
  });
  koffi.struct("paste_extent", { buf_idx: "uint32_t", off: "uint16_t", len: "uint16_t" });
  koffi.struct("paste_stats", {
    records: "uint64_t", payload_bytes: "uint64_t", batches: "uint64_t", payload_copies: "uint64_t",
    replies: "uint64_t", reply_bytes: "uint64_t", trimmed: "uint64_t", handler_errors: "uint64_t",
    next_seq: "uint64_t", committed_seq: "uint64_t", log_used: "uint64_t", log_capacity: "uint64_t",
    free_bufs: "uint32_t", live_bufs: "uint32_t", log_bytes: "uint64_t", hold_bufs: "uint32_t", ring_bufs: "uint32_t", refused: "uint64_t",
  });
  koffi.struct("paste_pressure", {
    free_bufs: "uint32_t", nbufs: "uint32_t", reserve_bufs: "uint32_t", flags: "uint32_t",
    log_used: "uint64_t", log_capacity: "uint64_t", log_reserve: "uint64_t", live_bufs: "uint32_t", ring_bufs: "uint32_t",
  });
}

type Lib = ReturnType<Koffi["load"]>;

/** handlerImports -- native/imports.c: handed to Wasm as they are (module "paste"), so a handler's log() has no JS in between. */
function handlerImports(lib: Lib) {
  return {
    hLog: lib.func("double paste_h_log(uint32_t buf_idx, uint32_t off, uint32_t len)"),
    hLogCopy: lib.func("double paste_h_log_copy(uint32_t buf_idx, uint32_t off, uint32_t len)"),
    hLogCopyExtents: lib.func("double paste_h_log_copy_extents(uint32_t ptr, uint32_t n)"),
    hLogExtents: lib.func("double paste_h_log_extents(uint32_t ptr, uint32_t n)"),
    hReply: lib.func("int paste_h_reply(uint32_t conn, uint32_t ptr, uint32_t len)"),
    hReplies: lib.func("int paste_h_replies(uint32_t ptr, uint32_t n, uint32_t data)"),
    hReplyRef: lib.func("int paste_h_reply_ref(uint32_t conn, uint32_t buf_idx, uint32_t off, uint32_t len)"),
    hHold: lib.func("int paste_h_hold(uint32_t buf_idx, uint32_t conn)"),
    hUnhold: lib.func("int paste_h_unhold(uint32_t buf_idx, uint32_t conn)"),
    hClose: lib.func("int paste_h_close(uint32_t conn)"),
    hTrim: lib.func("double paste_h_trim(double upto_seq)"),
    hCommitted: lib.func("double paste_h_committed(void)"),
    hError: lib.func("int paste_h_error(uint32_t ptr, uint32_t cap)"),
    hPressure: lib.func("int paste_h_pressure(uint32_t ptr)"),
    hLogPack: lib.func("double paste_h_log_pack(uint32_t ptr, uint32_t n, uint32_t out, uint32_t out_cap)"),
    hUseReserve: lib.func("int paste_h_use_reserve(uint32_t on)"),
  };
}

/** tcpPort -- the TCP port's functions (native/port_tcp.c, port_uring.c, busypoll.c). */
function tcpPort(lib: Lib) {
  return {
    tcpListen: lib.func("int paste_tcp_listen(paste_worker *w, const char *host, uint32_t port, int backlog)"),
    uringListen: lib.func("int paste_uring_listen(paste_worker *w, const char *host, uint32_t port, int backlog)"),
    tcpEngine: lib.func("const char *paste_tcp_engine(paste_worker *w)"),
    tcpPort: lib.func("int paste_tcp_port(paste_worker *w)"),
    raiseNofile: lib.func("int64_t paste_raise_nofile(void)"),
    tcpPoll: lib.func("int paste_tcp_poll(paste_worker *w, int timeout_ms)"),
    tcpBlocked: lib.func("int paste_tcp_blocked(paste_worker *w)"),
    tcpTakeClosed: lib.func("int paste_tcp_take_closed(paste_worker *w, _Out_ uint32_t *out, uint32_t cap)"),
    tcpCloseConn: lib.func("int paste_tcp_close_conn(paste_worker *w, uint32_t id)"),
    tcpStats: lib.func("int paste_tcp_stats(paste_worker *w, _Out_ uint64_t *open, _Out_ uint64_t *accepted)"),
    tcpBusyPoll: lib.func("int paste_tcp_busy_poll(paste_worker *w, int64_t budget_us, _Out_ uint64_t *spins, _Out_ uint64_t *hits)"),
    tcpQuiesce: lib.func("int paste_tcp_quiesce(paste_worker *w, int on)"),
    tcpStopAccepting: lib.func("int paste_tcp_stop_accepting(paste_worker *w)"),
  };
}

function bind(koffi: Koffi) {
  const lib = koffi.load(libraryPath);
  structs(koffi);
  return {
    koffi,
    lastError: lib.func("const char *paste_last_error(void)"),
    flushKind: lib.func("int paste_flush_kind(void)"),
    flushName: lib.func("const char *paste_flush_name(void)"),
    cpuHasCrc32c: lib.func("int paste_cpu_has_crc32c(void)"),
    crc32c: lib.func("uint32_t paste_crc32c(uint32_t crc, const void *buf, size_t len)"),
    crc32cSw: lib.func("uint32_t paste_crc32c_sw(uint32_t crc, const void *buf, size_t len)"),
    crc32cHw: lib.func("uint32_t paste_crc32c_hw(uint32_t crc, const void *buf, size_t len)"),
    poolCreate: lib.func("int paste_pool_create(const char *path, const paste_create_opts *opts)"),
    poolOpen: lib.func("int paste_pool_open(const char *path, uint32_t flags, uint32_t persist, _Out_ paste_pool **out)"),
    poolClose: lib.func("int paste_pool_close(paste_pool *p, int clean)"),
    poolAttach: lib.func("int paste_pool_attach(const char *path, _Out_ paste_pool **out)"),
    poolInfo: lib.func("int paste_pool_info(const paste_pool *p, _Out_ paste_info *out)"),
    poolPersistReason: lib.func("const char *paste_pool_persist_reason(const paste_pool *p)"),
    poolFsName: lib.func("const char *paste_pool_fs_name(const paste_pool *p)"),
    persistWindow: lib.func("int paste_persist_window(paste_pool *p, uint64_t off, uint64_t len)"),
    windowMap: lib.func("int paste_window_map(paste_pool *p, void *mem, uint64_t mem_len)"),
    windowUnmap: lib.func("int paste_window_unmap(paste_pool *p, void *mem)"),
    addr: lib.func("uint64_t paste_addr(const void *mem)"),
    // the runtime
    poolRecover: lib.func("int paste_pool_recover(paste_pool *p, _Out_ paste_recovery *out)"),
    poolStats: lib.func("int paste_pool_stats(paste_pool *p, _Out_ paste_stats *out)"),
    trim: lib.func("int64_t paste_trim(paste_pool *p, uint64_t upto_seq)"),
    walkBegin: lib.func("int paste_log_walk_begin(paste_pool *p)"),
    walkNext: lib.func("int paste_log_walk_next(paste_pool *p, _Out_ paste_rec_info *out)"),
    walkSeek: lib.func("int paste_log_walk_seek(paste_pool *p, uint64_t seq)"),
    logRead: lib.func("int64_t paste_log_read(paste_pool *p, uint64_t pos, _Out_ uint8_t *buf, uint64_t cap)"),
    logExtent: lib.func("int paste_log_extent(paste_pool *p, uint64_t pos, uint32_t i, _Out_ paste_extent *out)"),
    workerBind: lib.func("int paste_worker_bind(paste_pool *p, uint32_t id, void *mem, uint64_t mem_len, _Out_ paste_worker **out)"),
    workerTakeover: lib.func("int paste_worker_takeover(paste_pool *p, uint32_t id, _Out_ uint32_t *dropped, _Out_ uint32_t *closed)"),
    logDiscard: lib.func("int paste_log_discard(paste_pool *p)"),
    memZero: lib.func("int paste_mem_zero(void *mem, uint64_t off, uint64_t len)"),
    memResident: lib.func("int64_t paste_mem_resident(void *mem, uint64_t off, uint64_t len)"),
    workerMemLen: lib.func("int paste_worker_mem_len(paste_worker *w, uint64_t mem_len)"),
    workerRxRing: lib.func("int64_t paste_worker_rx_ring(paste_worker *w)"),
    workerReplay: lib.func("int64_t paste_worker_replay(paste_worker *w, uint64_t pos)"),
    workerReplayNext: lib.func("int64_t paste_worker_replay_next(paste_worker *w)"),
    workerEnter: lib.func("int paste_worker_enter(paste_worker *w, uint32_t flags)"),
    poolPressureFlags: lib.func("int paste_pool_pressure_flags(paste_pool *p)"),
    poolPressure: lib.func("int paste_pool_pressure(paste_pool *p, _Out_ paste_pressure *out)"),
    workerLeave: lib.func("void paste_worker_leave(void)"),
    rxRelease: lib.func("int paste_rx_release(paste_worker *w, int all)"),
    commit: lib.func("int64_t paste_commit(paste_worker *w)"),
    // the mem port
    memFill: lib.func("int paste_mem_fill(paste_worker *w, uint32_t size, uint32_t max, uint32_t conns)"),
    memNativeWal: lib.func("int paste_mem_native_wal(paste_worker *w, uint32_t size, uint32_t max, uint32_t conns)"),
    memFillBytes: lib.func("int paste_mem_fill_bytes(paste_worker *w, const uint8_t *data, uint32_t len, uint32_t conn)"),
    memTakeReplies: lib.func("int64_t paste_mem_take_replies(paste_worker *w, _Out_ uint8_t *buf, uint64_t cap)"),
    ...tcpPort(lib),
    ...handlerImports(lib),
    simEnable: lib.func("int paste_sim_enable(paste_pool *p, uint64_t crash_at, uint64_t seed, const char *image)"),
    simReport: lib.func("int paste_sim_report(paste_pool *p, _Out_ paste_sim_report *out)"),
    simRecord: lib.func("int paste_sim_record(paste_pool *p, uint64_t i, _Out_ paste_sim_rec *out)"),
    simCapture: lib.func("int paste_sim_capture(paste_pool *p, const uint64_t *steps, const uint64_t *seeds, uint64_t n)"),
    simTake: lib.func("int paste_sim_take(paste_pool *p, const char *path, _Out_ paste_sim_point *out)"),
    simTrack: lib.func("int paste_sim_track(paste_pool *p, paste_pool *check)"),
    simWrite: lib.func("int paste_sim_write(paste_pool *p, const char *path)"),
    simTags: lib.func("uint64_t paste_sim_tags(paste_pool *p, _Out_ uint8_t *out, uint64_t cap)"),
    checkBuffers: lib.func("int paste_check_buffers(paste_pool *p)"),
    layoutCount: lib.func("int paste_layout_count(void)"),
    layoutName: lib.func("const char *paste_layout_name(int i)"),
    layoutValue: lib.func("int64_t paste_layout_value(int i)"),
  };
}

export type Native = ReturnType<typeof bind>;
let cached: Native | undefined;

/** native -- the bound library, loaded on first use; NativeMissingError if it is not built. */
export function native(): Native {
  if (cached) return cached;
  if (!existsSync(libraryPath)) {
    throw new NativeMissingError(
      `native library not found at ${libraryPath}: run \`npm install\` (or \`npm run build:native\`) with a C compiler present`,
    );
  }
  try {
    cached = bind(require("koffi") as Koffi);
  } catch (cause) {
    throw new NativeMissingError(`cannot load ${libraryPath}: ${(cause as Error).message}`, { cause });
  }
  return cached;
}

/** check -- throw the catalogued error for a negative native return code, else pass rc through. */
export function check(rc: number): number {
  if (rc < 0) throw lastError(rc);
  return rc;
}

export function lastError(rc: number): PasteError {
  return fromNative(rc, native().lastError());
}
