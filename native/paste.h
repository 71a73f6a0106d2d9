/*
 * paste.h -- the one header that tells the truth about PASTE-on-Wasm memory.
 *
 * A pool is one file (on NVMM through DAX, on tmpfs emulating NVMM, or a plain
 * file synced with msync). Everything in it is addressed by offsets, never by
 * pointers, so it means the same thing in every process and at every mapping
 * address. All integers are little-endian, x86-64.
 *
 *   file offset
 *   0          4K         8K             8K+4K                 ring_ofs (2 MiB aligned)              buf_ofs
 *   +----------+----------+--------------+---------------------+-----------+---------------------+----------------------------+
 *   |superblock|  state   |  log header  |  log records        | netmap_if | tx0 .. rx0 ..       | buf 0 | buf 1 | ... | buf N-1 |
 *   |immutable,|  8-byte  | head, head_  |  64-byte lines,     | ring_ofs[]| netmap_ring + slots | nbufs x buf_size           |
 *   |crc32c    |  words   | seq, tail    |  circular           |           | (netmap API 14)     | buf 0 is never handed out   |
 *   +----------+----------+--------------+---------------------+-----------+---------------------+----------------------------+
 *   '------------- native only: never visible to a handler ---'  '---------- the window: mapped MAP_SHARED|MAP_FIXED at --------'
 *                                                                            WINDOW_BASE in the handler's WebAssembly.Memory
 *
 *   window offset w  <->  file offset ring_ofs + w  <->  Wasm address PASTE_WINDOW_BASE + w
 *   BUF(ring, i) = (char *)ring + ring->buf_ofs + i * ring->nr_buf_size   (netmap's formula)
 *
 * Why the split: handlers must read rings and buffers in place (zero copy), so
 * those live in the window; the superblock and the log index decide what is
 * durable, so a handler can never reach them (docs/design.md, invariant 3).
 *
 * Ownership marks, as in netmap.h: (u) written by the user (handler), (n)
 * written by native code, (c) constant after pool create.
 *
 * Persistent mutable fields are 8-byte words, each updated by a single aligned
 * store and then persisted, so a power failure leaves either the old or the new
 * value, never a torn mix. The superblock is written once, at create.
 *
 * The library in layers, each file one concept; a file calls only the layers
 * below it (native/layers.mjs checks the objects at every build). The layers
 * below reach a port only through the table it fills in (struct
 * paste_port_ops), and the pool reaches the runtime only through the one
 * pointer the runtime registers, so no lower file names a higher one.
 *
 *                port_uring.c     the TCP port's io_uring engine: ring, poll, accept, takeover
 *   uring_recv.c uring_send.c     its receiving and sending sides (state in uring.h)
 *   port_mem.c   port_tcp.c       the ports: requests in, replies out (TCP: epoll engine)
 *   tcp_linger.c                   closing a connection in stages (RFC 9112 9.6)
 *   ------------------------------------------------------------------ port ops
 *   imports.c                      every paste_h_*: the handler ABI
 *   worker.c                       recover, workers, connections, replay, takeover
 *   reply.c                        replies wait for the commit, then go to the port
 *   ring.c                         netmap rings: reset, claim, publish, take back
 *   log.c     logwalk.c            append, commit, trim, the reserve; the walker, recovery's log half
 *   bufs.c                         buffer states, free stack, references, holds
 *   pool.c                         open, lock, map, persist modes, close, the window
 *   sim.c     format.c             the persistence simulator; geometry, superblock, create
 *   error.c   cpu.c   layout.c     errors, flush + crc32c dispatch, layout table
 *
 * The commit path of one batch, top to bottom: a port fills RX slots
 * (ring.c), the handler's log() appends records (imports.c -> log.c), the host
 * releases the slots (ring.c) and commits (reply.c: log.c's flush, fence,
 * tail, fence), and only then reply.c hands the batch's replies to the port.
 */
#ifndef PASTE_H
#define PASTE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- constants */

#define PASTE_MAGIC            "PASTPOOL"          /* 8 bytes, no NUL stored */
#define PASTE_FORMAT_VERSION   1u
#define PASTE_CACHELINE        64u
#define PASTE_PAGE             4096u
#define PASTE_RING_ALIGN       (2u << 20)          /* window starts 2 MiB aligned (DAX huge pages) */

#define PASTE_STATE_OFS        4096u
#define PASTE_LOG_OFS          8192u
#define PASTE_LOG_HDR_SIZE     4096u               /* records start this far into the log region */
#define PASTE_LOG_MIN_SIZE     (256u << 10)

/*
 * The window inside the handler's WebAssembly.Memory. wasm32 addresses reach
 * 4 GiB; the handler's own data and heap start at PASTE_HANDLER_BASE (asc
 * --memoryBase), so the window may use [PASTE_WINDOW_BASE, PASTE_HANDLER_BASE).
 * Address 0 .. WINDOW_BASE stays ordinary zeroed memory so a null pointer in a
 * handler never reads pool data.
 */
#define PASTE_WINDOW_BASE      0x00200000ull       /* 2 MiB */
#define PASTE_HANDLER_BASE     0x80000000ull       /* 2 GiB */
#define PASTE_WINDOW_MAX       (PASTE_HANDLER_BASE - PASTE_WINDOW_BASE)
/* Below the window, [MAILBOX_BASE, WINDOW_BASE) is where the host hands a
 * handler descriptors it builds (a replayed record's extents); it is ordinary
 * Wasm memory, never the pool. One mailbox per worker, MAILBOX_SIZE apart. */
#define PASTE_MAILBOX_BASE     0x00010000ull       /* 64 KiB */
#define PASTE_MAILBOX_SIZE     0x00008000ull       /* 32 KiB: a record of PASTE_REC_MAX_EXTENTS */

#define PASTE_BUF_SIZE_MIN     512u
#define PASTE_BUF_SIZE_MAX     32768u              /* extent and slot lengths are u16 */
#define PASTE_BUF_SIZE_DEFAULT 2048u
#define PASTE_RINGS_MAX        32u
#define PASTE_SLOTS_MIN        8u
#define PASTE_SLOTS_MAX        32768u
#define PASTE_SLOTS_DEFAULT    1024u

/* Persistence modes (decided once at open; PMDK's model). */
enum paste_persist {
	PASTE_PERSIST_AUTO  = 0,  /* DAX -> pmem, tmpfs -> pmem (emulated NVMM), else msync */
	PASTE_PERSIST_PMEM  = 1,  /* flush cache lines (clwb/clflushopt/clflush) + sfence */
	PASTE_PERSIST_MSYNC = 2,  /* msync(MS_SYNC) of dirty pages: payload and records, then the tail */
	PASTE_PERSIST_NONE  = 3,  /* nothing is made durable: a networking-only baseline */
};

/* What the file lives on, as detected at open. */
enum paste_medium {
	PASTE_MEDIUM_FILE  = 0,   /* a block filesystem without DAX */
	PASTE_MEDIUM_TMPFS = 1,   /* memory-backed: lost at power off, emulates NVMM */
	PASTE_MEDIUM_DAX   = 2,   /* MAP_SHARED_VALIDATE|MAP_SYNC accepted: real NVMM */
};

/* Flush instructions, best first; picked by cpuid when the library loads. */
enum paste_flush {
	PASTE_FLUSH_CLWB       = 0,
	PASTE_FLUSH_CLFLUSHOPT = 1,
	PASTE_FLUSH_CLFLUSH    = 2,
};

/* --------------------------------------------------------------- superblock */

/* At file offset 0. Written once by pool create, never again: crc32c covers it. */
struct paste_super {
	uint8_t  magic[8];        /* (c) "PASTPOOL" */
	uint32_t version;         /* (c) PASTE_FORMAT_VERSION; never moves from offset 8 */
	uint32_t sb_size;         /* (c) sizeof(struct paste_super) */
	uint8_t  uuid[16];        /* (c) random, RFC 4122 version 4 */
	uint64_t pool_size;       /* (c) file size in bytes */
	uint64_t created_ns;      /* (c) CLOCK_REALTIME at create */
	uint32_t buf_size;        /* (c) bytes per buffer, power of two */
	uint32_t nbufs;           /* (c) buffers in the buffer region, buf 0 included */
	uint32_t nrings;          /* (c) ring pairs: one TX + one RX per data-path worker */
	uint32_t ring_slots;      /* (c) slots per ring */
	uint64_t state_ofs;       /* (c) struct paste_state */
	uint64_t log_ofs;         /* (c) struct paste_log_hdr, then the records */
	uint64_t log_size;        /* (c) bytes of the log region, header included */
	uint64_t ring_ofs;        /* (c) netmap_if; the window starts here */
	uint64_t ring_size;       /* (c) bytes from ring_ofs to buf_ofs */
	uint64_t buf_ofs;         /* (c) buffer 0 */
	uint64_t window_size;     /* (c) bytes mapped into Wasm, page multiple */
	uint32_t persist_pref;    /* (c) enum paste_persist chosen at create */
	uint32_t incompat;        /* (c) feature bits; a host refuses any it does not know */
	uint64_t reserved[15];    /* zero */
	uint32_t reserved32;      /* zero */
	uint32_t csum;            /* (c) crc32c of bytes [0, offsetof(csum)) */
};

/* At state_ofs. Mutable words, each one store + persist. */
#define PASTE_STATE_CLEAN  0x4E41454C43ull    /* "CLEAN" in a hex dump: closed cleanly */
#define PASTE_STATE_DIRTY  0x5954524944ull    /* "DIRTY": open, or crashed while open */

struct paste_state {
	uint64_t shutdown;        /* (n) PASTE_STATE_CLEAN or PASTE_STATE_DIRTY */
	uint64_t open_count;      /* (n) read-write opens since create */
	uint64_t last_open_ns;    /* (n) CLOCK_REALTIME of the last read-write open */
	uint32_t owner_pid;       /* (n) pid of the last read-write opener (for lock errors) */
	uint32_t reserved32;
	uint64_t reserved[4];
};

/* ---------------------------------------------------------------------- log */

/*
 * The log is an index: records name pool buffers, they never hold payload.
 * Positions are byte offsets that only grow; position p lives at record-area
 * offset p % capacity. A record never wraps: if it does not fit before the end,
 * a PAD record fills the gap. Live records are those in [head, tail) whose seq
 * is >= head_seq; trim writes head_seq first and head second, so a crash in
 * between only leaves records recovery skips.
 *
 * The tail word is stored after a batch's records are durable and persisted
 * with the next batch's (one drain per batch: one msync in msync mode), so
 * after a power failure it may lag by one batch. Recovery then goes on past
 * it over records that prove themselves whole: the record checksum (over seq,
 * extents, payload crc and epoch), the next sequence number, the current
 * epoch, and a payload matching its crc. The epoch is what makes that safe: a
 * record that an earlier recovery cut off, still in the record area, carries
 * an older epoch and is never taken back. Records a batch dropped unfinished
 * (paste_log_abort) are zeroed durably before anything else is appended.
 */
struct paste_log_hdr {
	uint64_t head;            /* (n) position of the oldest record that may be live */
	uint64_t head_seq;        /* (n) lowest live sequence number (1 in a new pool) */
	uint64_t epoch;           /* (n) the log epoch: one per recovery, in every record appended after it */
	uint64_t reserved0[5];
	uint64_t tail;            /* (n) one past the last committed record; durable with the next batch */
	uint64_t reserved1[7];
};

/* One piece of a record's payload, in place in a pool buffer. */
struct paste_extent {
	uint32_t buf_idx;
	uint16_t off;
	uint16_t len;
};

#define PASTE_REC_PAD          0x1u   /* filler to the end of the record area; no payload */
#define PASTE_REC_INLINE_EXT   4u     /* extents in the first line */
#define PASTE_REC_EXT_PER_LINE 8u     /* extents in each further line */
#define PASTE_REC_MAX_EXTENTS  4000u

/* The first 64-byte line of a record; further lines hold 8 extents each. */
struct paste_log_rec {
	uint64_t seq;             /* dense, from 1 */
	uint32_t len;             /* payload bytes: the sum of the extents' lengths */
	uint32_t payload_crc;     /* crc32c of the payload, extents in order */
	uint16_t nextents;
	uint16_t nlines;          /* 64-byte lines the record takes, this one included */
	uint16_t flags;           /* PASTE_REC_* */
	uint16_t reserved16;
	uint32_t rec_crc;         /* crc32c of all the record's lines with this field zero */
	uint32_t epoch;           /* low 32 bits of the log epoch it was appended in */
	struct paste_extent ext[PASTE_REC_INLINE_EXT];
};

/* ----------------------------------------------------- rings: netmap API 14 */

#define NETMAP_API      14
#define NS_BUF_CHANGED  0x0001   /* buf_idx changed */
#define NS_REPORT       0x0002
#define NS_FORWARD      0x0004
#define NS_NO_LEARN     0x0008
#define NS_INDIRECT     0x0010
#define NS_MOREFRAG     0x0020   /* the packet continues in the next slot */

/* PASTE packs the connection and the data offset into slot.ptr. */
#define PASTE_PTR_FD_SHIFT   8
#define PASTE_PTR_FD_MASK    0x000000ffffffff00ull
#define PASTE_PTR_OFF_SHIFT  40
#define PASTE_PTR_OFF_MASK   0x0003ff0000000000ull

struct netmap_slot {
	uint32_t buf_idx;         /* buffer index; set NS_BUF_CHANGED when changing it */
	uint16_t len;             /* bytes in the buffer */
	uint16_t flags;           /* NS_* */
	uint64_t ptr;             /* PASTE: conn id bits 8..39, data offset bits 40..49 */
};

struct netmap_ring {
	int64_t  buf_ofs;         /* (c) BUF(ring, 0) - ring, bytes */
	uint32_t num_slots;       /* (c) */
	uint32_t nr_buf_size;     /* (c) */
	uint16_t ringid;          /* (c) */
	uint16_t dir;             /* (c) 0 tx, 1 rx */
	uint32_t head;            /* (u) first user slot */
	uint32_t cur;             /* (u) wakeup point */
	uint32_t tail;            /* (n) first native-owned slot */
	uint32_t flags;           /* (c) */
	uint32_t pad0;
	int64_t  ts_sec;          /* (n) time of the last sync (struct timeval) */
	int64_t  ts_usec;
	uint64_t offset_mask;     /* (c) */
	uint64_t buf_align;       /* (c) */
	uint8_t  pad1[56];
	uint8_t  sem[128];        /* netmap's cache-aligned semaphore area, unused */
	struct netmap_slot slot[];
};

struct netmap_if {
	char     ni_name[16];     /* (c) "paste" */
	uint32_t ni_version;      /* (c) NETMAP_API */
	uint32_t ni_flags;        /* (c) */
	uint32_t ni_tx_rings;     /* (c) */
	uint32_t ni_rx_rings;     /* (c) */
	uint32_t ni_bufs_head;    /* (n) extra buffers, linked through their first u32; 0 = none */
	uint32_t ni_host_tx_rings;/* (c) 0 */
	uint32_t ni_host_rx_rings;/* (c) 0 */
	uint32_t ni_spare1[3];
	int64_t  ring_ofs[];      /* (c) from the netmap_if: tx rings, host tx, rx rings, host rx */
};

/* ----------------------------------------------- handler-visible records */

/*
 * What a handler's on_replay(rec) receives: a record's payload as Wasm
 * addresses inside the window, in order. Built by native code in the
 * worker's mailbox; the bytes themselves are never copied.
 */
struct paste_wasm_extent {
	uint32_t addr;            /* Wasm address of the bytes (in the window) */
	uint32_t len;
};

struct paste_wasm_record {
	uint64_t seq;
	uint32_t len;             /* payload bytes in all extents */
	uint32_t nextents;
	struct paste_wasm_extent ext[];
};

/*
 * The pool's space as a handler's cleaner sees it (paste_h_pressure) and the
 * host decides when to call it (paste_pool_pressure). The reserve is kept for
 * the cleaner: outside on_clean a handler's log() is refused once free
 * buffers or log room fall to it, so requests still arrive and get an answer
 * (an error reply) while the cleaner can always re-log and copy. Only a
 * handler that has a cleaner (exports on_clean) has a reserve: for any other
 * the pool fills up and the port stops reading, as netmap's rings would.
 */
struct paste_pressure {
	uint32_t free_bufs;       /* on the free stack */
	uint32_t nbufs;           /* buffers in the pool, buffer 0 included */
	uint32_t reserve_bufs;    /* kept for the cleaner */
	uint32_t flags;           /* PASTE_PRESSURE_* */
	uint64_t log_used;        /* log bytes between the head and the volatile tail */
	uint64_t log_capacity;
	uint64_t log_reserve;     /* log bytes kept for the cleaner */
	uint32_t live_bufs;       /* out of the rings, referenced by the log or held */
	uint32_t ring_bufs;       /* in ring slots */
};

#define PASTE_PRESSURE_BUFS 0x1u  /* free buffers below a quarter of the pool: clean */
#define PASTE_PRESSURE_LOG  0x2u  /* the log more than half full: clean */
#define PASTE_PRESSURE_FULL 0x4u  /* in the reserve: log() outside on_clean is refused */

/* paste_worker_enter's flags */
#define PASTE_ENTER_CLEAN   0x1u  /* the call is on_clean: the reserve may be used */
#define PASTE_ENTER_RESERVE 0x2u  /* the handler has a cleaner: keep the reserve for it (else it has none) */

/* The handler ABI version: a module exports paste_abi_version() returning it. */
#define PASTE_ABI_VERSION 1u

/* ------------------------------------------------------ layout, asserted */

#define PASTE_ASSERT_OFS(t, f, o) _Static_assert(offsetof(struct t, f) == (o), #t "." #f " @" #o)
#define PASTE_ASSERT_SIZE(t, s)   _Static_assert(sizeof(struct t) == (s), "sizeof " #t " == " #s)

PASTE_ASSERT_SIZE(paste_super, 256);
PASTE_ASSERT_OFS(paste_super, magic, 0);
PASTE_ASSERT_OFS(paste_super, version, 8);
PASTE_ASSERT_OFS(paste_super, sb_size, 12);
PASTE_ASSERT_OFS(paste_super, uuid, 16);
PASTE_ASSERT_OFS(paste_super, pool_size, 32);
PASTE_ASSERT_OFS(paste_super, created_ns, 40);
PASTE_ASSERT_OFS(paste_super, buf_size, 48);
PASTE_ASSERT_OFS(paste_super, nbufs, 52);
PASTE_ASSERT_OFS(paste_super, nrings, 56);
PASTE_ASSERT_OFS(paste_super, ring_slots, 60);
PASTE_ASSERT_OFS(paste_super, state_ofs, 64);
PASTE_ASSERT_OFS(paste_super, log_ofs, 72);
PASTE_ASSERT_OFS(paste_super, log_size, 80);
PASTE_ASSERT_OFS(paste_super, ring_ofs, 88);
PASTE_ASSERT_OFS(paste_super, ring_size, 96);
PASTE_ASSERT_OFS(paste_super, buf_ofs, 104);
PASTE_ASSERT_OFS(paste_super, window_size, 112);
PASTE_ASSERT_OFS(paste_super, persist_pref, 120);
PASTE_ASSERT_OFS(paste_super, incompat, 124);
PASTE_ASSERT_OFS(paste_super, reserved, 128);
PASTE_ASSERT_OFS(paste_super, reserved32, 248);
PASTE_ASSERT_OFS(paste_super, csum, 252);

PASTE_ASSERT_SIZE(paste_state, 64);
PASTE_ASSERT_OFS(paste_state, shutdown, 0);
PASTE_ASSERT_OFS(paste_state, open_count, 8);
PASTE_ASSERT_OFS(paste_state, last_open_ns, 16);
PASTE_ASSERT_OFS(paste_state, owner_pid, 24);

PASTE_ASSERT_SIZE(paste_log_hdr, 128);
PASTE_ASSERT_OFS(paste_log_hdr, head, 0);
PASTE_ASSERT_OFS(paste_log_hdr, head_seq, 8);
PASTE_ASSERT_OFS(paste_log_hdr, epoch, 16);
PASTE_ASSERT_OFS(paste_log_hdr, tail, 64);     /* its own cache line: one flush per commit */

PASTE_ASSERT_SIZE(paste_extent, 8);
PASTE_ASSERT_OFS(paste_extent, buf_idx, 0);
PASTE_ASSERT_OFS(paste_extent, off, 4);
PASTE_ASSERT_OFS(paste_extent, len, 6);

PASTE_ASSERT_SIZE(paste_log_rec, 64);
PASTE_ASSERT_OFS(paste_log_rec, seq, 0);
PASTE_ASSERT_OFS(paste_log_rec, len, 8);
PASTE_ASSERT_OFS(paste_log_rec, payload_crc, 12);
PASTE_ASSERT_OFS(paste_log_rec, nextents, 16);
PASTE_ASSERT_OFS(paste_log_rec, nlines, 18);
PASTE_ASSERT_OFS(paste_log_rec, flags, 20);
PASTE_ASSERT_OFS(paste_log_rec, rec_crc, 24);
PASTE_ASSERT_OFS(paste_log_rec, epoch, 28);
PASTE_ASSERT_OFS(paste_log_rec, ext, 32);

PASTE_ASSERT_SIZE(netmap_slot, 16);
PASTE_ASSERT_OFS(netmap_slot, buf_idx, 0);
PASTE_ASSERT_OFS(netmap_slot, len, 4);
PASTE_ASSERT_OFS(netmap_slot, flags, 6);
PASTE_ASSERT_OFS(netmap_slot, ptr, 8);

PASTE_ASSERT_SIZE(netmap_ring, 256);
PASTE_ASSERT_OFS(netmap_ring, buf_ofs, 0);
PASTE_ASSERT_OFS(netmap_ring, num_slots, 8);
PASTE_ASSERT_OFS(netmap_ring, nr_buf_size, 12);
PASTE_ASSERT_OFS(netmap_ring, ringid, 16);
PASTE_ASSERT_OFS(netmap_ring, dir, 18);
PASTE_ASSERT_OFS(netmap_ring, head, 20);
PASTE_ASSERT_OFS(netmap_ring, cur, 24);
PASTE_ASSERT_OFS(netmap_ring, tail, 28);
PASTE_ASSERT_OFS(netmap_ring, flags, 32);
PASTE_ASSERT_OFS(netmap_ring, ts_sec, 40);
PASTE_ASSERT_OFS(netmap_ring, offset_mask, 56);
PASTE_ASSERT_OFS(netmap_ring, buf_align, 64);
PASTE_ASSERT_OFS(netmap_ring, sem, 128);
PASTE_ASSERT_OFS(netmap_ring, slot, 256);

PASTE_ASSERT_SIZE(netmap_if, 56);
PASTE_ASSERT_OFS(netmap_if, ni_name, 0);
PASTE_ASSERT_OFS(netmap_if, ni_version, 16);
PASTE_ASSERT_OFS(netmap_if, ni_flags, 20);
PASTE_ASSERT_OFS(netmap_if, ni_tx_rings, 24);
PASTE_ASSERT_OFS(netmap_if, ni_rx_rings, 28);
PASTE_ASSERT_OFS(netmap_if, ni_bufs_head, 32);
PASTE_ASSERT_OFS(netmap_if, ni_host_tx_rings, 36);
PASTE_ASSERT_OFS(netmap_if, ni_host_rx_rings, 40);
PASTE_ASSERT_OFS(netmap_if, ni_spare1, 44);
PASTE_ASSERT_OFS(netmap_if, ring_ofs, 56);

PASTE_ASSERT_SIZE(paste_pressure, 48);
PASTE_ASSERT_OFS(paste_pressure, free_bufs, 0);
PASTE_ASSERT_OFS(paste_pressure, nbufs, 4);
PASTE_ASSERT_OFS(paste_pressure, reserve_bufs, 8);
PASTE_ASSERT_OFS(paste_pressure, flags, 12);
PASTE_ASSERT_OFS(paste_pressure, log_used, 16);
PASTE_ASSERT_OFS(paste_pressure, log_capacity, 24);
PASTE_ASSERT_OFS(paste_pressure, log_reserve, 32);
PASTE_ASSERT_OFS(paste_pressure, live_bufs, 40);
PASTE_ASSERT_OFS(paste_pressure, ring_bufs, 44);

PASTE_ASSERT_SIZE(paste_wasm_extent, 8);
PASTE_ASSERT_SIZE(paste_wasm_record, 16);
PASTE_ASSERT_OFS(paste_wasm_record, seq, 0);
PASTE_ASSERT_OFS(paste_wasm_record, len, 8);
PASTE_ASSERT_OFS(paste_wasm_record, nextents, 12);
PASTE_ASSERT_OFS(paste_wasm_record, ext, 16);
_Static_assert(sizeof(struct paste_wasm_record) + PASTE_REC_MAX_EXTENTS * sizeof(struct paste_wasm_extent) <= PASTE_MAILBOX_SIZE,
	       "a whole record fits in a mailbox");
_Static_assert(PASTE_MAILBOX_BASE + PASTE_RINGS_MAX * PASTE_MAILBOX_SIZE <= PASTE_WINDOW_BASE, "every worker's mailbox lies below the window");

_Static_assert(PASTE_STATE_OFS % PASTE_PAGE == 0 && PASTE_STATE_OFS >= sizeof(struct paste_super), "state page");
_Static_assert(PASTE_LOG_OFS % PASTE_PAGE == 0 && PASTE_LOG_OFS >= PASTE_STATE_OFS + sizeof(struct paste_state), "log region");
_Static_assert(PASTE_LOG_HDR_SIZE >= sizeof(struct paste_log_hdr), "log header");
_Static_assert(PASTE_WINDOW_BASE % PASTE_RING_ALIGN == 0, "window base is huge-page aligned");
_Static_assert(PASTE_HANDLER_BASE % 65536 == 0, "handler base is a Wasm page boundary");

/* ------------------------------------------------------------------- errors */

/*
 * Every function returns 0 or a count on success and one of these on failure,
 * leaving its objects unchanged; paste_last_error() then says what and where.
 * The numbers are stable: host/core/errors.ts maps each one to a PASTE_ERR_* class.
 */
enum paste_err {
	PASTE_OK                 = 0,
	PASTE_ERR_IO             = -1,   /* a system call failed; the message has errno's text */
	PASTE_ERR_INVALID_ARG    = -2,   /* a parameter out of range */
	PASTE_ERR_EXISTS         = -3,   /* create refused: the file exists and force was not given */
	PASTE_ERR_NOT_FOUND      = -4,   /* no file at the path */
	PASTE_ERR_NOT_A_POOL     = -5,   /* not a pool file at all */
	PASTE_ERR_BAD_MAGIC      = -6,   /* a pool superblock whose magic is damaged */
	PASTE_ERR_VERSION        = -7,   /* written by a newer format or with unknown features */
	PASTE_ERR_POOL_CORRUPT   = -8,   /* checksum or geometry does not hold */
	PASTE_ERR_POOL_TRUNCATED = -9,   /* the file is shorter than its superblock says */
	PASTE_ERR_POOL_LOCKED    = -10,  /* another process has the pool open */
	PASTE_ERR_NO_SPACE       = -11,  /* the filesystem cannot hold the pool */
	PASTE_ERR_WINDOW         = -12,  /* the window cannot be mapped into Wasm memory */
	PASTE_ERR_READ_ONLY      = -13,  /* a write through a pool opened read-only */
	PASTE_ERR_LOG_FULL       = -14,  /* no room in the log index until a trim */
	PASTE_ERR_POOL_FULL      = -15,  /* no free buffer until a trim */
	PASTE_ERR_HANDLER        = -16,  /* a handler passed a bad buffer, slot, ring index or range */
	PASTE_ERR_STATE          = -17,  /* a call out of order (no recovery yet, no batch open) */
	PASTE_ERR_ADDR_IN_USE    = -18,  /* the listen address is taken by another process */
	PASTE_ERR_SIM_CRASHED    = -19,  /* the persistence simulator's power failure happened */
	PASTE_ERR_UNSUPPORTED    = -20,  /* the kernel or a sandbox refuses what was asked (io_uring) */
};

/* paste_last_error -- the message of this thread's last failure ("" if none) */
const char *paste_last_error(void);

/* ---------------------------------------------------------------- cpu, crc */

/* paste_flush_kind -- enum paste_flush picked by cpuid (PASTE_FLUSH may downgrade it) */
int paste_flush_kind(void);
/* paste_flush_name -- "clwb", "clflushopt" or "clflush" */
const char *paste_flush_name(void);
/* paste_cpu_has_crc32c -- 1 if the SSE4.2 crc32 instruction is used */
int paste_cpu_has_crc32c(void);
/* paste_crc32c -- crc32c (Castagnoli) continuing from crc (0 to start); hardware when present */
uint32_t paste_crc32c(uint32_t crc, const void *buf, size_t len);
/* paste_crc32c_sw -- the portable table path, identical results */
uint32_t paste_crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* paste_crc32c_hw -- the SSE4.2 path; without SSE4.2 it falls back to the table path */
uint32_t paste_crc32c_hw(uint32_t crc, const void *buf, size_t len);

/* ------------------------------------------------------------------- pools */

struct paste_create_opts {
	uint64_t size;            /* file size; must hold the rings and some buffers */
	uint64_t log_size;        /* 0: default_log_size (3/8 of what the rings leave) */
	uint32_t buf_size;        /* 0: PASTE_BUF_SIZE_DEFAULT */
	uint32_t nrings;          /* 0: 1 */
	uint32_t ring_slots;      /* 0: PASTE_SLOTS_DEFAULT */
	uint32_t persist;         /* enum paste_persist, stored as the pool's preference */
	uint32_t force;           /* 1: replace an existing file (refused while it is locked) */
	uint32_t reserved;
};

#define PASTE_OPEN_RDONLY 0x1u    /* inspect only: shared lock if free, writes nothing */

typedef struct paste_pool paste_pool;

/* What `pool info` shows; numbers only, strings through the accessors below. */
struct paste_info {
	uint64_t pool_size, created_ns, log_ofs, log_size, ring_ofs, ring_size, buf_ofs;
	uint64_t window_size, window_base, handler_base;
	uint64_t log_head, log_head_seq, log_tail, log_capacity;
	uint64_t open_count, last_open_ns;
	uint32_t version, buf_size, nbufs, nrings, ring_slots, ring_bufs;
	uint32_t persist_pref, persist, medium, flush;
	uint32_t clean;           /* 1 if the last read-write open ended in a clean close */
	uint32_t read_only;       /* 1 if opened with PASTE_OPEN_RDONLY */
	uint32_t in_use;          /* 1 if another process holds the pool read-write */
	uint32_t owner_pid;
	uint8_t  uuid[16];
};

/* paste_pool_create -- create and format a pool file; nothing is left behind on failure */
int paste_pool_create(const char *path, const struct paste_create_opts *opts);
/* paste_pool_open -- validate, lock and map a pool; persist overrides the pool's preference unless AUTO */
int paste_pool_open(const char *path, uint32_t flags, uint32_t persist, paste_pool **out);
/* paste_pool_close -- unmap and unlock; clean=1 marks the shutdown clean first */
int paste_pool_close(paste_pool *p, int clean);
/*
 * paste_pool_attach -- the pool at path this process already holds open
 * read-write, for a worker thread that takes over from one that was
 * terminated (a handler over its time budget): the lock, the recovered
 * runtime, the TCP port and its connections all live on in the process.
 */
int paste_pool_attach(const char *path, paste_pool **out);
/* paste_pool_info -- fill *out */
int paste_pool_info(const paste_pool *p, struct paste_info *out);
/* paste_pool_persist_reason -- why this persistence mode, one line */
const char *paste_pool_persist_reason(const paste_pool *p);
/* paste_pool_fs_name -- the filesystem the pool lives on ("tmpfs", "ext4", ...) */
const char *paste_pool_fs_name(const paste_pool *p);

/* paste_persist_window -- make window bytes [off, off+len) durable in the pool's mode */
int paste_persist_window(paste_pool *p, uint64_t off, uint64_t len);

/* --------------------------------------------------------------- the window */

/*
 * paste_window_map -- map the pool's ring and buffer regions at
 * mem + PASTE_WINDOW_BASE, MAP_SHARED|MAP_FIXED. mem is the backing store of
 * the handler's WebAssembly.Memory and mem_len its current byte length, which
 * must cover the window. The caller keeps the memory alive until unmap.
 */
int paste_window_map(paste_pool *p, void *mem, uint64_t mem_len);
/* paste_window_unmap -- put fresh zero pages back where the window was */
int paste_window_unmap(paste_pool *p, void *mem);
/* paste_window_mapped -- 1 if the window is mapped into mem */
int paste_window_mapped(paste_pool *p, void *mem);
/* paste_window_forget -- forget every window without unmapping (their memories died with a terminated worker) */
void paste_window_forget(paste_pool *p);
/* paste_addr -- the address of a buffer, to check that a memory never moved */
uint64_t paste_addr(const void *mem);


/* ------------------------------------------------------------ the runtime */

/*
 * After a read-write open, paste_pool_recover() runs once: it walks the log
 * from head to the persistent tail, verifies every record, cuts a torn tail,
 * rebuilds buffer reference counts and the free list, and resets the rings.
 * Then each data-path thread binds a worker (one RX + one TX ring) to its
 * handler's memory and runs batches: fill RX slots (a port), enter the
 * worker and call the handler, release the slots, commit.
 */

struct paste_recovery {
	uint64_t records;         /* live records, replayable */
	uint64_t bytes;           /* their payload bytes */
	uint64_t first_seq;       /* 0 if none */
	uint64_t last_seq;
	uint64_t next_seq;        /* what the next log() returns */
	uint64_t corrupt;         /* committed records whose payload fails its crc: not replayed */
	uint64_t first_corrupt_seq;
	uint64_t skipped;         /* trimmed records the head had not yet passed */
	uint64_t torn_pos;        /* where the walk stopped before the tail (if torn) */
	uint64_t discarded;       /* log bytes cut off at torn_pos */
	uint32_t torn;            /* 1 if a structurally invalid record stopped the walk */
	uint32_t was_clean;       /* the previous host closed the pool cleanly */
	uint32_t live_bufs;       /* buffers referenced by live records */
	uint32_t free_bufs;
	uint64_t beyond_tail;     /* of the live records, those found whole past the persistent tail */
};

/* What one record in the log is, for dump, verify and replay. */
enum paste_rec_status {
	PASTE_REC_OK      = 0,
	PASTE_REC_BAD_CRC = 1,    /* the payload no longer matches its crc32c */
};

struct paste_rec_info {
	uint64_t seq;
	uint64_t pos;             /* log position of the record */
	uint32_t len;
	uint32_t nextents;
	uint32_t status;          /* enum paste_rec_status */
	uint32_t stored_crc;
	uint32_t computed_crc;
	uint32_t reserved;
};

struct paste_stats {
	uint64_t records;         /* logged since open */
	uint64_t payload_bytes;
	uint64_t batches;         /* commits that made something durable */
	uint64_t payload_copies;  /* payload bytes native code copied while logging: 0 is the point */
	uint64_t replies;
	uint64_t reply_bytes;
	uint64_t trimmed;
	uint64_t handler_errors;
	uint64_t next_seq;
	uint64_t committed_seq;   /* every record up to here is durable */
	uint64_t log_used;        /* bytes between head and the volatile tail */
	uint64_t log_capacity;
	uint32_t free_bufs;
	uint32_t live_bufs;       /* out of the rings, referenced by the log or held */
	uint64_t log_bytes;       /* payload bytes of the records in the log (head to volatile tail) */
	uint32_t hold_bufs;       /* of live_bufs, held by the handler for requests still arriving */
	uint32_t ring_bufs;       /* in ring slots */
	uint64_t refused;         /* logs refused because only the cleaner's reserve was left (the request got an error reply) */
};

/* paste_pool_recover -- walk, verify, cut a torn tail, rebuild; once, after a read-write open */
int paste_pool_recover(paste_pool *p, struct paste_recovery *out);
/* paste_pool_pressure -- free buffers, log room, the reserve: whether the handler's cleaner should run */
int paste_pool_pressure(paste_pool *p, struct paste_pressure *out);
/* paste_pool_pressure_flags -- just its flags (PASTE_PRESSURE_*): the host asks after every batch */
int paste_pool_pressure_flags(paste_pool *p);
/* paste_pool_stats -- counters and occupancy */
int paste_pool_stats(paste_pool *p, struct paste_stats *out);
/* paste_trim -- release every record up to seq: head moves persistently, then buffers return to the free list */
int64_t paste_trim(paste_pool *p, uint64_t upto_seq);

/* paste_log_walk_begin/next -- visit live records from head to the persistent tail;
 * next returns 1 (a record in *out), 0 (end) or PASTE_ERR_POOL_CORRUPT (torn log) */
int paste_log_walk_begin(paste_pool *p);
int paste_log_walk_next(paste_pool *p, struct paste_rec_info *out);
/* paste_log_walk_seek -- after walk_begin: skip to the first record with seq >= seq
 * (structure checked, payloads not read); 0 or PASTE_ERR_POOL_CORRUPT */
int paste_log_walk_seek(paste_pool *p, uint64_t seq);
/* paste_log_read -- copy the payload of the record at pos (a dump; never on the data path) */
int64_t paste_log_read(paste_pool *p, uint64_t pos, void *buf, uint64_t cap);
/* paste_log_extent -- extent i of the record at pos */
int paste_log_extent(paste_pool *p, uint64_t pos, uint32_t i, struct paste_extent *out);

/*
 * A worker is one data path: an RX and a TX ring, the handler memory bound to
 * them, and a port. The host holds its handle; every call below that names a
 * worker acts on that one, so several runtimes in one thread stay apart.
 */
typedef struct paste_worker paste_worker;

/* paste_worker_bind -- worker id of a recovered pool, bound to mem (the Wasm memory the window is in); *out its handle */
int paste_worker_bind(paste_pool *p, uint32_t id, void *mem, uint64_t mem_len, paste_worker **out);
/*
 * paste_worker_takeover -- for a new thread taking over worker id after its
 * thread was terminated: drop the cut-off batch (uncommitted records, queued
 * replies, its requests), release the dead handler's holds, close the
 * connections that lose a request that way, forget the old memories.
 * *dropped: records dropped; *closed: connections closed.
 */
int paste_worker_takeover(paste_pool *p, uint32_t id, uint32_t *dropped, uint32_t *closed);
/* paste_log_discard -- drop the records appended since the last commit (a deploy's new handler failed during replay); records dropped */
int paste_log_discard(paste_pool *p);
/* paste_mem_zero -- [mem+off, +len) of a handler memory reads as zeros again (pages given back) */
int paste_mem_zero(void *mem, uint64_t off, uint64_t len);
/* paste_mem_resident -- bytes of [mem+off, +len) resident in RAM (how much of its heap a handler touched) */
int64_t paste_mem_resident(void *mem, uint64_t off, uint64_t len);
/* paste_worker_mem_len -- tell the worker its memory's new length after a grow */
int paste_worker_mem_len(paste_worker *w, uint64_t mem_len);
/* paste_worker_rx_ring -- Wasm address of the worker's RX ring */
int64_t paste_worker_rx_ring(paste_worker *w);
/* paste_worker_replay -- build the descriptor of the record at pos in the worker's mailbox; its Wasm address */
int64_t paste_worker_replay(paste_worker *w, uint64_t pos);
/* paste_worker_replay_next -- after paste_log_walk_begin: the next intact record in the mailbox, its Wasm address; 0 at the end */
int64_t paste_worker_replay_next(paste_worker *w);
/* paste_worker_enter -- the handler imports act on w until paste_worker_leave (around every call into a handler);
 * flags PASTE_ENTER_CLEAN for on_clean */
int paste_worker_enter(paste_worker *w, uint32_t flags);
/* paste_worker_leave -- the handler imports act on no worker: called outside a host call, they fail */
void paste_worker_leave(void);
/* paste_rx_release -- take back the RX slots the handler released ([old head, head)),
 * or every slot it holds if all (after a trap: those requests are dropped, unacknowledged) */
int paste_rx_release(paste_worker *w, int all);
/* paste_commit -- end of batch: fence, persist the tail, then release the batch's replies; replies released */
int64_t paste_commit(paste_worker *w);

/* The mem port (port_mem.c): netmap's pkt-gen for the log. It attaches to a worker with no port at its first request. */
/* paste_mem_fill -- fill up to max RX slots with size-byte synthetic requests over conns connections */
int paste_mem_fill(paste_worker *w, uint32_t size, uint32_t max, uint32_t conns);
/* paste_mem_native_wal -- the benchmark's Wasm-free baseline: a C loop doing the mem-wal handler's work */
int paste_mem_native_wal(paste_worker *w, uint32_t size, uint32_t max, uint32_t conns);
/* paste_mem_fill_bytes -- the caller's bytes as one request into the next RX slot; 1, or 0 if full */
int paste_mem_fill_bytes(paste_worker *w, const void *data, uint32_t len, uint32_t conn);
/* paste_mem_take_replies -- move delivered replies ({u32 conn, u32 len, bytes}...) into buf; bytes moved */
int64_t paste_mem_take_replies(paste_worker *w, void *buf, uint64_t cap);

/*
 * The TCP port (port_tcp.c): connections, closes, quiescing, with one of two
 * engines underneath. epoll (port_tcp.c): readv() straight into free pool
 * buffers. io_uring (port_uring.c): the free pool buffers are a provided-buffer
 * ring, so the kernel itself picks the pool buffer a receive lands in; one
 * io_uring_enter per poll submits the replies and waits for the next requests.
 * Every paste_tcp_* call below works on either.
 */
/* paste_tcp_listen -- attach the TCP port to w with the epoll engine: listen on host:port (0: any free port) */
int paste_tcp_listen(paste_worker *w, const char *host, uint32_t port, int backlog);
/* paste_uring_listen -- the same with the io_uring engine; PASTE_ERR_UNSUPPORTED (the message says why) where io_uring is refused */
int paste_uring_listen(paste_worker *w, const char *host, uint32_t port, int backlog);
/* paste_tcp_engine -- "epoll" or "io_uring": the engine of w's TCP port ("" if none) */
const char *paste_tcp_engine(paste_worker *w);
/* paste_raise_nofile -- lift the soft open-files limit to the hard limit; the new soft limit */
int64_t paste_raise_nofile(void);
/* paste_tcp_port -- the port actually bound */
int paste_tcp_port(paste_worker *w);
/* paste_tcp_poll -- wait up to timeout_ms, accept, send what is owed, recv into RX slots; slots filled */
int paste_tcp_poll(paste_worker *w, int timeout_ms);
/* paste_tcp_blocked -- 1 if the last poll stopped reading for want of slots or buffers (backpressure) */
int paste_tcp_blocked(paste_worker *w);
/* paste_tcp_take_closed -- connections closed since the last call (for on_close), up to cap */
int paste_tcp_take_closed(paste_worker *w, uint32_t *out, uint32_t cap);
/* paste_tcp_close_conn -- after on_close: release the connection's holds and close its socket */
int paste_tcp_close_conn(paste_worker *w, uint32_t id);
/*
 * paste_tcp_busy_poll -- set how long a poll spins before it sleeps, in
 * microseconds (0: never; budget_us < 0 leaves it), and read the spins begun
 * and the spins that found work (either pointer may be NULL). The spin is
 * adaptive: a poll spins only if the previous one found work within the
 * budget (busypoll.c). Returns the budget now. Default PASTE_BUSY_POLL_US.
 */
#define PASTE_BUSY_POLL_US     50u
#define PASTE_BUSY_POLL_MAX_US 100000u
int paste_tcp_busy_poll(paste_worker *w, int64_t budget_us, uint64_t *spins, uint64_t *hits);
/* paste_tcp_stats -- connections open now and accepted in all */
int paste_tcp_stats(paste_worker *w, uint64_t *open, uint64_t *accepted);
/* paste_tcp_quiesce -- 1: read only connections with a request half received (a deploy waits for none); returns those left */
int paste_tcp_quiesce(paste_worker *w, int on);
/* paste_tcp_stop_accepting -- close the listener for a clean shutdown; connections stay */
int paste_tcp_stop_accepting(paste_worker *w);

/*
 * Handler imports (module "paste"), all in imports.c: the handler ABI. They
 * act on the worker entered (paste_worker_enter), so koffi can hand them to
 * Wasm as they are, with no JS in between. Results are doubles so they cross
 * the JS boundary without BigInt: sequence numbers stay below 2^53.
 */
/* paste_h_log -- log len bytes at off in buffer buf_idx by reference; the seq, or a negative error */
double paste_h_log(uint32_t buf_idx, uint32_t off, uint32_t len);
/* paste_h_log_copy -- the copying baseline: copy the bytes into a free buffer, flush, log that */
double paste_h_log_copy(uint32_t buf_idx, uint32_t off, uint32_t len);
/* paste_h_log_copy_extents -- the copying baseline for several pieces: copy them, packed, into free buffers, log that */
double paste_h_log_copy_extents(uint32_t ptr, uint32_t n);
/* paste_h_log_extents -- log one record made of n struct paste_extent at Wasm address ptr */
double paste_h_log_extents(uint32_t ptr, uint32_t n);
/* paste_h_reply -- queue len bytes at Wasm address ptr for conn; sent after the batch commits */
int paste_h_reply(uint32_t conn, uint32_t ptr, uint32_t len);
/* paste_h_replies -- n copied replies at once: (conn, len) pairs at ptr, their bytes in turn at data */
int paste_h_replies(uint32_t ptr, uint32_t n, uint32_t data);
/* paste_h_reply_ref -- queue len bytes at off of a pool buffer for conn, sent from the pool without a copy */
int paste_h_reply_ref(uint32_t conn, uint32_t buf_idx, uint32_t off, uint32_t len);
/* paste_h_hold -- keep a received buffer for conn past its slot's release (a request still arriving) */
int paste_h_hold(uint32_t buf_idx, uint32_t conn);
/* paste_h_unhold -- give a held buffer back; it is freed once no record references it */
int paste_h_unhold(uint32_t buf_idx, uint32_t conn);
/* paste_h_close -- close conn once the replies queued so far are sent (mem port: nothing) */
int paste_h_close(uint32_t conn);
/* paste_h_trim -- release every record up to seq; records released, or negative */
double paste_h_trim(double upto_seq);
/* paste_h_committed -- the last durable seq */
double paste_h_committed(void);
/* paste_h_use_reserve -- on: the logs that follow in this host call may use the cleaner's reserve (records that free space) */
int paste_h_use_reserve(uint32_t on);
/* paste_h_pressure -- the pool's struct paste_pressure, written at Wasm address ptr; 0 or negative */
int paste_h_pressure(uint32_t ptr);
/* paste_h_log_pack -- the cleaner's copy: the bytes of n extents at Wasm address ptr, copied densely into shared
 * pool buffers and logged as one record; at out: u32 count, u32 0, then count struct paste_extent (at most out_cap)
 * where the copy lives. The seq, or negative */
double paste_h_log_pack(uint32_t ptr, uint32_t n, uint32_t out, uint32_t out_cap);
/* paste_h_error -- the last error message, copied to Wasm address ptr (cap bytes); its length */
int paste_h_error(uint32_t ptr, uint32_t cap);

/* ------------------------------------------------ persistence simulator */

/* A record the workload appended, as the simulator saw it. */
struct paste_sim_rec {
	uint64_t seq;
	uint32_t len;
	uint32_t crc;
};

struct paste_sim_report {
	uint64_t steps;           /* persist steps (flushes and fences) so far */
	uint64_t committed;       /* highest seq whose commit completed before the crash */
	uint64_t trimmed;         /* highest seq a trim had begun to release before the crash */
	uint64_t appended;        /* records appended (paste_sim_record 0..appended-1) */
	uint32_t crashed;
	uint32_t reserved;
};

/* What a persist step was part of (paste_sim_tags, paste_sim_point.tags). */
#define PASTE_SIM_TAG_CLEAN  0x01u  /* the handler's on_clean, or the commit of what it logged */
#define PASTE_SIM_TAG_TRIM   0x02u  /* a trim making its release durable (head_seq, head) */
#define PASTE_SIM_TAG_PACK   0x04u  /* the commit of records log_pack copied into shared buffers */
#define PASTE_SIM_TAG_RELOG  0x08u  /* the commit of records on_clean logged again by reference */
#define PASTE_SIM_TAG_COMMIT 0x10u  /* (internal) inside paste_log_commit */

/* A captured crash image (paste_sim_take): where it was cut and what the workload had been told. */
struct paste_sim_point {
	uint64_t step;            /* the persist step the power failed at (before it ran) */
	uint64_t seed;            /* the seed of its cache evictions */
	uint64_t committed;       /* highest seq whose commit completed before it */
	uint64_t trimmed;         /* highest seq a trim had begun to release before it */
	uint64_t appended;        /* records appended before it (paste_sim_record 0..appended-1) */
	uint64_t replies;         /* replies released (acknowledgements sent) before it */
	uint32_t tags;            /* PASTE_SIM_TAG_* of its step */
	uint32_t reserved;
};

/* paste_sim_enable -- right after a read-write open: simulate NVMM; at persist step
 * crash_at (0: never) write a crash image to `image` and fail every later fence */
int paste_sim_enable(paste_pool *p, uint64_t crash_at, uint64_t seed, const char *image);
/* paste_sim_capture -- after enable, before recovery: at each of the n steps (ascending; repeats
 * allowed) keep the image a power failure there would leave, with seeds[i]'s evictions, and go on */
int paste_sim_capture(paste_pool *p, const uint64_t *steps, const uint64_t *seeds, uint64_t n);
/* paste_sim_take -- the oldest captured image not yet taken, rebuilt into the file at path (kept mapped:
 * use one scratch file); 1, or 0 if none is waiting */
int paste_sim_take(paste_pool *p, const char *path, struct paste_sim_point *out);
/* paste_sim_track -- check is a pool just opened on that scratch file: it notes the pages it touches
 * (at its close), so the next paste_sim_take rewrites only those and what the images do not share */
int paste_sim_track(paste_pool *p, paste_pool *check);
/* paste_sim_write -- the image taken last, rebuilt again into a new file (to keep a failing one) */
int paste_sim_write(paste_pool *p, const char *path);
/* paste_sim_tags -- PASTE_SIM_TAG_* of steps 1.. into out (at most cap); the steps so far */
uint64_t paste_sim_tags(paste_pool *p, uint8_t *out, uint64_t cap);
/* paste_sim_report -- steps, commits and trims seen so far */
int paste_sim_report(paste_pool *p, struct paste_sim_report *out);
/* paste_sim_record -- appended record i */
int paste_sim_record(paste_pool *p, uint64_t i, struct paste_sim_rec *out);
/* paste_check_buffers -- after recovery: no buffer is both free and referenced or in a ring */
int paste_check_buffers(paste_pool *p);

/* ------------------------------------------------------- layout for mirrors */

/* paste_layout_count/name/value -- every size, offset and constant above, for the TS/AS mirror tests */
int paste_layout_count(void);
const char *paste_layout_name(int i);
int64_t paste_layout_value(int i);

#ifdef __cplusplus
}
#endif
#endif /* PASTE_H */
