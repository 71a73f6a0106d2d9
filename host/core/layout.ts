// layout.ts -- the TypeScript mirror of native/paste.h: sizes, offsets and
// constants the host needs to read the pool without the native library (file
// offsets in tests, the ring layout a handler sees). test/layout.test.ts checks
// every entry against the C compiler's numbers, so a change to the header that
// is not made here fails the build's tests, not a user's pool.

export const SUPER = {
  size: 256,
  magic: 0, version: 8, sb_size: 12, uuid: 16, pool_size: 32, created_ns: 40,
  buf_size: 48, nbufs: 52, nrings: 56, ring_slots: 60, state_ofs: 64, log_ofs: 72,
  log_size: 80, ring_ofs: 88, ring_size: 96, buf_ofs: 104, window_size: 112,
  persist_pref: 120, incompat: 124, csum: 252,
} as const;

export const STATE = { size: 64, shutdown: 0, open_count: 8, last_open_ns: 16, owner_pid: 24 } as const;

export const LOG_HDR = { size: 128, head: 0, head_seq: 8, tail: 64 } as const;

export const EXTENT = { size: 8, buf_idx: 0, off: 4, len: 6 } as const;

export const LOG_REC = {
  size: 64, seq: 0, len: 8, payload_crc: 12, nextents: 16, nlines: 18, flags: 20, rec_crc: 24, ext: 32,
} as const;

export const NETMAP_SLOT = { size: 16, buf_idx: 0, len: 4, flags: 6, ptr: 8 } as const;

export const NETMAP_RING = {
  size: 256, buf_ofs: 0, num_slots: 8, nr_buf_size: 12, ringid: 16, dir: 18, head: 20, cur: 24,
  tail: 28, flags: 32, ts_sec: 40, offset_mask: 56, buf_align: 64, sem: 128, slot: 256,
} as const;

export const NETMAP_IF = {
  size: 56, ni_name: 0, ni_version: 16, ni_flags: 20, ni_tx_rings: 24, ni_rx_rings: 28,
  ni_bufs_head: 32, ni_host_tx_rings: 36, ni_host_rx_rings: 40, ring_ofs: 56,
} as const;

export const WASM_EXTENT = { size: 8, addr: 0, len: 4 } as const;

export const WASM_RECORD = { size: 16, seq: 0, len: 8, nextents: 12, ext: 16 } as const;

/** struct paste_pressure: the pool's space, for the cleaner (paste_h_pressure, paste_pool_pressure). */
export const PRESSURE = {
  size: 48, free_bufs: 0, nbufs: 4, reserve_bufs: 8, flags: 12, log_used: 16, log_capacity: 24, log_reserve: 32,
  live_bufs: 40, ring_bufs: 44,
} as const;

export const CONST = {
  PASTE_FORMAT_VERSION: 1,
  PASTE_CACHELINE: 64,
  PASTE_PAGE: 4096,
  PASTE_RING_ALIGN: 2 * 1024 * 1024,
  PASTE_STATE_OFS: 4096,
  PASTE_LOG_OFS: 8192,
  PASTE_LOG_HDR_SIZE: 4096,
  PASTE_LOG_MIN_SIZE: 256 * 1024,
  PASTE_WINDOW_BASE: 0x0020_0000,
  PASTE_HANDLER_BASE: 0x8000_0000,
  PASTE_WINDOW_MAX: 0x8000_0000 - 0x0020_0000,
  PASTE_MAILBOX_BASE: 0x10000,
  PASTE_MAILBOX_SIZE: 0x8000,
  PASTE_ABI_VERSION: 1,
  PASTE_REC_OK: 0,
  PASTE_REC_BAD_CRC: 1,
  PASTE_BUF_SIZE_MIN: 512,
  PASTE_BUF_SIZE_MAX: 32768,
  PASTE_BUF_SIZE_DEFAULT: 2048,
  PASTE_RINGS_MAX: 32,
  PASTE_SLOTS_MIN: 8,
  PASTE_SLOTS_MAX: 32768,
  PASTE_SLOTS_DEFAULT: 1024,
  PASTE_STATE_CLEAN: 0x4e41454c43,
  PASTE_STATE_DIRTY: 0x5954524944,
  PASTE_REC_PAD: 0x1,
  PASTE_REC_INLINE_EXT: 4,
  PASTE_REC_EXT_PER_LINE: 8,
  PASTE_REC_MAX_EXTENTS: 4000,
  NETMAP_API: 14,
  NS_BUF_CHANGED: 0x1,
  NS_REPORT: 0x2,
  NS_FORWARD: 0x4,
  NS_NO_LEARN: 0x8,
  NS_INDIRECT: 0x10,
  NS_MOREFRAG: 0x20,
  PASTE_PTR_FD_SHIFT: 8,
  PASTE_PTR_FD_MASK: 0x0000_00ff_ffff_ff00,
  PASTE_PTR_OFF_SHIFT: 40,
  PASTE_PTR_OFF_MASK: 0x0003_ff00_0000_0000,
  PASTE_OPEN_RDONLY: 0x1,
  PASTE_PERSIST_AUTO: 0,
  PASTE_PERSIST_PMEM: 1,
  PASTE_PERSIST_MSYNC: 2,
  PASTE_PERSIST_NONE: 3,
  PASTE_MEDIUM_FILE: 0,
  PASTE_MEDIUM_TMPFS: 1,
  PASTE_MEDIUM_DAX: 2,
  PASTE_FLUSH_CLWB: 0,
  PASTE_FLUSH_CLFLUSHOPT: 1,
  PASTE_FLUSH_CLFLUSH: 2,
  PASTE_BUSY_POLL_US: 50,
  PASTE_BUSY_POLL_MAX_US: 100000,
  PASTE_PRESSURE_BUFS: 0x1,
  PASTE_PRESSURE_LOG: 0x2,
  PASTE_PRESSURE_FULL: 0x4,
  PASTE_ENTER_CLEAN: 0x1,
  PASTE_ENTER_RESERVE: 0x2,
  PASTE_SIM_TAG_CLEAN: 0x01,
  PASTE_SIM_TAG_TRIM: 0x02,
  PASTE_SIM_TAG_PACK: 0x04,
  PASTE_SIM_TAG_RELOG: 0x08,
} as const;

export const MAGIC = "PASTPOOL";

/** Persistence modes by name, as the CLI spells them; the index is enum paste_persist. */
export const PERSIST_MODES = ["auto", "pmem", "msync", "none"] as const;
export type PersistMode = (typeof PERSIST_MODES)[number];
export const MEDIA = ["file", "tmpfs", "dax"] as const;
export const FLUSHES = ["clwb", "clflushopt", "clflush"] as const;

/** mirror -- every entry above under the names native/layout.c gives them. */
export function mirror(): Map<string, number> {
  const m = new Map<string, number>();
  const structs: Record<string, Record<string, number>> = {
    paste_super: SUPER, paste_state: STATE, paste_log_hdr: LOG_HDR, paste_extent: EXTENT,
    paste_log_rec: LOG_REC, netmap_slot: NETMAP_SLOT, netmap_ring: NETMAP_RING, netmap_if: NETMAP_IF,
    paste_wasm_extent: WASM_EXTENT, paste_wasm_record: WASM_RECORD, paste_pressure: PRESSURE,
  };
  for (const [name, fields] of Object.entries(structs)) {
    for (const [field, value] of Object.entries(fields)) {
      m.set(field === "size" ? `sizeof(${name})` : `${name}.${field}`, value);
    }
  }
  for (const [name, value] of Object.entries(CONST)) m.set(name, value);
  return m;
}
