/*
 * layout.c -- every size, offset and constant of paste.h as a table, so the
 * TypeScript mirror (host/core/layout.ts) and the AssemblyScript mirror are checked
 * against the compiler's own numbers instead of a copy of them.
 */
#include "internal.h"

#define SIZE(t)      { "sizeof(" #t ")", (int64_t)sizeof(struct t) },
#define OFS(t, f)    { #t "." #f, (int64_t)offsetof(struct t, f) },
#define CONST(c)     { #c, (int64_t)(c) },

static const struct {
	const char *name;
	int64_t value;
} layout[] = {
	SIZE(paste_super)
	OFS(paste_super, magic) OFS(paste_super, version) OFS(paste_super, sb_size)
	OFS(paste_super, uuid) OFS(paste_super, pool_size) OFS(paste_super, created_ns)
	OFS(paste_super, buf_size) OFS(paste_super, nbufs) OFS(paste_super, nrings)
	OFS(paste_super, ring_slots) OFS(paste_super, state_ofs) OFS(paste_super, log_ofs)
	OFS(paste_super, log_size) OFS(paste_super, ring_ofs) OFS(paste_super, ring_size)
	OFS(paste_super, buf_ofs) OFS(paste_super, window_size) OFS(paste_super, persist_pref)
	OFS(paste_super, incompat) OFS(paste_super, csum)

	SIZE(paste_state)
	OFS(paste_state, shutdown) OFS(paste_state, open_count) OFS(paste_state, last_open_ns)
	OFS(paste_state, owner_pid)

	SIZE(paste_log_hdr)
	OFS(paste_log_hdr, head) OFS(paste_log_hdr, head_seq) OFS(paste_log_hdr, tail)

	SIZE(paste_extent)
	OFS(paste_extent, buf_idx) OFS(paste_extent, off) OFS(paste_extent, len)

	SIZE(paste_log_rec)
	OFS(paste_log_rec, seq) OFS(paste_log_rec, len) OFS(paste_log_rec, payload_crc)
	OFS(paste_log_rec, nextents) OFS(paste_log_rec, nlines) OFS(paste_log_rec, flags)
	OFS(paste_log_rec, rec_crc) OFS(paste_log_rec, ext)

	SIZE(netmap_slot)
	OFS(netmap_slot, buf_idx) OFS(netmap_slot, len) OFS(netmap_slot, flags) OFS(netmap_slot, ptr)

	SIZE(netmap_ring)
	OFS(netmap_ring, buf_ofs) OFS(netmap_ring, num_slots) OFS(netmap_ring, nr_buf_size)
	OFS(netmap_ring, ringid) OFS(netmap_ring, dir) OFS(netmap_ring, head) OFS(netmap_ring, cur)
	OFS(netmap_ring, tail) OFS(netmap_ring, flags) OFS(netmap_ring, ts_sec)
	OFS(netmap_ring, offset_mask) OFS(netmap_ring, buf_align) OFS(netmap_ring, sem)
	OFS(netmap_ring, slot)

	SIZE(netmap_if)
	OFS(netmap_if, ni_name) OFS(netmap_if, ni_version) OFS(netmap_if, ni_flags)
	OFS(netmap_if, ni_tx_rings) OFS(netmap_if, ni_rx_rings) OFS(netmap_if, ni_bufs_head)
	OFS(netmap_if, ni_host_tx_rings) OFS(netmap_if, ni_host_rx_rings) OFS(netmap_if, ring_ofs)

	SIZE(paste_info)

	SIZE(paste_wasm_extent)
	OFS(paste_wasm_extent, addr) OFS(paste_wasm_extent, len)
	SIZE(paste_pressure)
	OFS(paste_pressure, free_bufs) OFS(paste_pressure, nbufs) OFS(paste_pressure, reserve_bufs)
	OFS(paste_pressure, flags) OFS(paste_pressure, log_used) OFS(paste_pressure, log_capacity)
	OFS(paste_pressure, log_reserve) OFS(paste_pressure, live_bufs) OFS(paste_pressure, ring_bufs)
	CONST(PASTE_BUSY_POLL_US) CONST(PASTE_BUSY_POLL_MAX_US)
	CONST(PASTE_PRESSURE_BUFS) CONST(PASTE_PRESSURE_LOG) CONST(PASTE_PRESSURE_FULL) CONST(PASTE_ENTER_CLEAN) CONST(PASTE_ENTER_RESERVE)
	CONST(PASTE_SIM_TAG_CLEAN) CONST(PASTE_SIM_TAG_TRIM) CONST(PASTE_SIM_TAG_PACK) CONST(PASTE_SIM_TAG_RELOG)

	SIZE(paste_wasm_record)
	OFS(paste_wasm_record, seq) OFS(paste_wasm_record, len) OFS(paste_wasm_record, nextents)
	OFS(paste_wasm_record, ext)

	CONST(PASTE_FORMAT_VERSION) CONST(PASTE_CACHELINE) CONST(PASTE_PAGE) CONST(PASTE_RING_ALIGN)
	CONST(PASTE_STATE_OFS) CONST(PASTE_LOG_OFS) CONST(PASTE_LOG_HDR_SIZE) CONST(PASTE_LOG_MIN_SIZE)
	CONST(PASTE_WINDOW_BASE) CONST(PASTE_HANDLER_BASE) CONST(PASTE_WINDOW_MAX)
	CONST(PASTE_MAILBOX_BASE) CONST(PASTE_MAILBOX_SIZE) CONST(PASTE_ABI_VERSION)
	CONST(PASTE_BUF_SIZE_MIN) CONST(PASTE_BUF_SIZE_MAX) CONST(PASTE_BUF_SIZE_DEFAULT)
	CONST(PASTE_RINGS_MAX) CONST(PASTE_SLOTS_MIN) CONST(PASTE_SLOTS_MAX) CONST(PASTE_SLOTS_DEFAULT)
	CONST(PASTE_STATE_CLEAN) CONST(PASTE_STATE_DIRTY)
	CONST(PASTE_REC_PAD) CONST(PASTE_REC_INLINE_EXT) CONST(PASTE_REC_EXT_PER_LINE) CONST(PASTE_REC_MAX_EXTENTS)
	CONST(NETMAP_API) CONST(NS_BUF_CHANGED) CONST(NS_REPORT) CONST(NS_FORWARD) CONST(NS_NO_LEARN)
	CONST(NS_INDIRECT) CONST(NS_MOREFRAG)
	CONST(PASTE_PTR_FD_SHIFT) CONST(PASTE_PTR_FD_MASK) CONST(PASTE_PTR_OFF_SHIFT) CONST(PASTE_PTR_OFF_MASK)
	CONST(PASTE_OPEN_RDONLY)
	CONST(PASTE_PERSIST_AUTO) CONST(PASTE_PERSIST_PMEM) CONST(PASTE_PERSIST_MSYNC) CONST(PASTE_PERSIST_NONE)
	CONST(PASTE_MEDIUM_FILE) CONST(PASTE_MEDIUM_TMPFS) CONST(PASTE_MEDIUM_DAX)
	CONST(PASTE_FLUSH_CLWB) CONST(PASTE_FLUSH_CLFLUSHOPT) CONST(PASTE_FLUSH_CLFLUSH)
	CONST(PASTE_ERR_IO) CONST(PASTE_ERR_INVALID_ARG) CONST(PASTE_ERR_EXISTS) CONST(PASTE_ERR_NOT_FOUND)
	CONST(PASTE_ERR_NOT_A_POOL) CONST(PASTE_ERR_BAD_MAGIC) CONST(PASTE_ERR_VERSION)
	CONST(PASTE_ERR_POOL_CORRUPT) CONST(PASTE_ERR_POOL_TRUNCATED) CONST(PASTE_ERR_POOL_LOCKED)
	CONST(PASTE_ERR_NO_SPACE) CONST(PASTE_ERR_WINDOW) CONST(PASTE_ERR_READ_ONLY)
	CONST(PASTE_ERR_LOG_FULL) CONST(PASTE_ERR_POOL_FULL) CONST(PASTE_ERR_HANDLER) CONST(PASTE_ERR_STATE)
	CONST(PASTE_ERR_ADDR_IN_USE) CONST(PASTE_ERR_SIM_CRASHED) CONST(PASTE_ERR_UNSUPPORTED)
	CONST(PASTE_REC_OK) CONST(PASTE_REC_BAD_CRC)
};

int paste_layout_count(void)
{
	return (int)(sizeof(layout) / sizeof(layout[0]));
}

const char *paste_layout_name(int i)
{
	return i >= 0 && i < paste_layout_count() ? layout[i].name : NULL;
}

int64_t paste_layout_value(int i)
{
	return i >= 0 && i < paste_layout_count() ? layout[i].value : 0;
}
