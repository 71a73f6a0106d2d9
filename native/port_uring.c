/*
 * port_uring.c -- the TCP port's io_uring engine, the mainline-Linux
 * counterpart of PASTE's stack port: the kernel receives straight into the
 * pool buffer it picks, and one io_uring_enter per poll both submits the
 * replies of the batch just committed and waits for the next requests.
 *
 *   - The free pool buffers are a provided-buffer ring (group 0). A receive
 *     takes the next one; the completion names it (its bid), so the request
 *     is in NVMM-backed pool memory the moment the completion arrives, with
 *     no copy of ours. A bid is a position in the ring, not a buffer index
 *     (bids are 16 bits, pools have more buffers): br_buf maps it back.
 *   - One multishot accept on the listener, one multishot receive per
 *     connection. Completions wait in a backlog and become RX slots (buffer,
 *     length, connection) in order, exactly as the epoll engine fills them,
 *     so handlers and the SDK see no difference. The backlog is what lets a
 *     deploy quiesce (only connections with a request half received are
 *     published) and lets a full RX ring push back without losing a byte.
 *   - Replies: deliver() queues segments (pool buffers by reference, pinned
 *     with a reference so that a trim cannot free them under the kernel;
 *     small replies copied into the connection's stage); the next poll turns
 *     each connection's queue into one sendmsg with MSG_DONTWAIT, so the send
 *     runs inline during that enter and never lingers: what the socket does
 *     not take comes back as a short count or EAGAIN, and a POLLOUT waits
 *     for room. At most one send per connection is in the kernel.
 *   - Buffers the handler releases and the log does not hold return to the
 *     free list (ring.c, bufs.c) and from there to the provided ring at the
 *     next poll. When the ring runs dry, a receive ends with ENOBUFS; the
 *     connection is re-armed once buffers are back: the socket keeps its
 *     data meanwhile, which is the backpressure.
 *
 * The ring is created SINGLE_ISSUER|DEFER_TASKRUN: completions run only when
 * this thread asks (in the poll), never interrupting the handler. A thread
 * that takes the worker over (the old one was terminated) cannot submit to
 * the old ring, so takeover reaps what the old ring completed, closes it and
 * builds a new one that re-arms every open connection.
 *
 * Connection ids are fds, as in the epoll engine. A completion carries the
 * operation, the connection and its generation: a connection's generation
 * changes when it closes, so a late completion for a closed fd (reused by a
 * new connection) is recognised and its buffer given back.
 */
#define _GNU_SOURCE
#include "internal.h"

#ifdef PASTE_NO_URING
/* Built where liburing was missing: the epoll engine serves alone. */
int paste_uring_listen(paste_worker *w, const char *host, uint32_t port, int backlog)
{
	(void)w, (void)host, (void)port, (void)backlog;
	return paste_set_error(PASTE_ERR_UNSUPPORTED,
		"io_uring: this build has no io_uring engine: liburing was missing when it was built "
		"(on Debian/Ubuntu: apt-get install -y liburing-dev, then npm run build)");
}
#else

#include "uring.h"

static const struct paste_tcp_engine uring_engine;

/* ------------------------------------------------------------ arming */

static void arm_accept(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	int lfd = paste_tcp_of(w)->lfd;
	if (u->accepting || lfd < 0)
		return;
	struct io_uring_sqe *e = sqe(u);
	io_uring_prep_multishot_accept(e, lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(e, udata(OP_ACCEPT, 0, 0));
	u->accepting = true;
}

static void cancel(struct paste_uring *u, uint64_t what)
{
	struct io_uring_sqe *e = sqe(u);
	io_uring_prep_cancel64(e, what, 0);
	io_uring_sqe_set_data64(e, udata(OP_CANCEL, 0, 0));
}

/* ------------------------------------------------------------ completions */

static void on_accept(struct paste_worker *w, struct io_uring_cqe *cqe)
{
	struct paste_uring *u = U(w);
	if (!(cqe->flags & IORING_CQE_F_MORE))
		u->accepting = false;   /* re-armed at the next poll while the listener is open */
	if (cqe->res < 0)
		return;   /* EMFILE and the like: the next connection may fare better */
	int fd = cqe->res;
	struct uconn *uc = uconn_of(u, (uint32_t)fd);
	if (!uc) {
		close(fd);
		return;
	}
	if (!paste_tcp_conn_open(w, fd))
		return;
	uc->recv = uc->rearm = uc->sending = uc->pollout = uc->queued = false;
	uring_drop_queue(w, uc);
	uring_arm_recv(w, (uint32_t)fd);
}

/* reap -- every completion in the queue, into the backlog and the connections' state */
static void reap(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&u->ring, head, cqe) {
		uint64_t d = cqe->user_data;
		uint32_t op = (uint32_t)(d >> 56), gen = (uint32_t)(d >> 32) & 0xffffff, id = (uint32_t)d;
		if (op == OP_ACCEPT)
			on_accept(w, cqe);
		else if (op == OP_RECV)
			uring_on_recv(w, cqe, id, gen);
		else if (op == OP_SEND)
			uring_on_send(w, cqe, id, gen);
		else if (op == OP_POLLOUT)
			uring_on_pollout(w, id, gen);
		n++;
	}
	io_uring_cq_advance(&u->ring, n);
}

/*
 * uring_ready -- the kernel has work for this ring, seen without a system
 * call: with DEFER_TASKRUN a completion is first task work, which the kernel
 * marks with IORING_SQ_TASKRUN (IORING_SETUP_TASKRUN_FLAG) and the next enter
 * runs; a completion already posted counts too.
 */
static bool uring_ready(void *arg)
{
	struct paste_uring *u = arg;
	return (IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_TASKRUN) || io_uring_cq_ready(&u->ring);
}

/*
 * uring_wait -- submit what is queued, run the completions due and reap
 * them, waiting up to timeout_ms for the first. Armed to spin (busypoll.c),
 * it watches for work before it sleeps, and spins on past completions that
 * bring nothing to publish (a reply's send, an accept) while the budget lasts.
 */
static int uring_wait(struct paste_worker *w, int timeout_ms)
{
	struct paste_uring *u = U(w);
	struct paste_tcp *t = paste_tcp_of(w);
	bool spin = timeout_ms != 0 && t->busy.armed;
	for (;;) {
		bool ready = false;
		if (spin) {
			if (io_uring_sq_ready(&u->ring))
				io_uring_submit(&u->ring);   /* a reply the client waits for, a receive to re-arm */
			ready = paste_busy_spin(&t->busy, uring_ready, u);
		} else if (timeout_ms != 0 && t->busy.budget_us) {
			/* About to sleep: the replies go out first, in an enter of their
			 * own, so that the wait busypoll.c times is the wait alone. */
			if (io_uring_sq_ready(&u->ring))
				io_uring_submit(&u->ring);
			paste_busy_waiting(&t->busy);
		}
		struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000, .tv_nsec = (long long)(timeout_ms % 1000) * 1000000 };
		struct io_uring_cqe *cqe;
		int rc = ready || timeout_ms == 0
			? io_uring_submit_and_get_events(&u->ring)   /* runs the completions due, waits for none */
			: io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
		if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			return paste_set_errno(-rc, "io_uring_enter");
		reap(w);
		if (!ready || u->nbl || t->nclosed)
			return 0;   /* slept, or spun into something to publish or report */
	}
}

static int uring_poll(struct paste_worker *w, int timeout_ms)
{
	struct paste_uring *u = U(w);
	struct paste_tcp *t = paste_tcp_of(w);
	if (!u->ring_ok)
		return paste_set_error(u->reopen_err ? u->reopen_err : PASTE_ERR_STATE, "io_uring: no ring after the handler restart: %s", u->reopen_msg);
	t->blocked = false;
	uring_refill(w);
	uring_rearm(w);
	arm_accept(w);
	uring_submit_sends(w);
	/* Something already waiting to be published: do not sleep for more. */
	int rc = uring_wait(w, u->nbl && !t->blocked ? 0 : timeout_ms);
	if (rc)
		return rc;
	t->blocked = false;
	uint32_t filled = uring_publish(w);
	if (u->nrearm && !u->br_out && !u->nbl)
		t->blocked = true;
	return (int)filled;
}

/* ------------------------------------------------------- the engine's rest */

static bool uring_stop_reading(struct paste_worker *w, uint32_t id, bool dead)
{
	struct paste_uring *u = U(w);
	struct uconn *uc = uconn_of(u, id);
	if (!uc)
		return false;
	if (uc->recv)
		cancel(u, udata(OP_RECV, uc->gen, id));
	if (dead)
		uring_drop_queue(w, uc);
	return !dead && (owes(uc) || uc->sending);
}

static void uring_closing(struct paste_worker *w, uint32_t id)
{
	struct paste_uring *u = U(w);
	struct uconn *uc = uconn_of(u, id);
	if (!uc)
		return;
	if (uc->recv)
		cancel(u, udata(OP_RECV, uc->gen, id));
	if (uc->pollout)
		cancel(u, udata(OP_POLLOUT, uc->gen, id));
	uring_drop_queue(w, uc);
	uc->recv = uc->pollout = uc->sending = false;
	uc->gen = (uc->gen + 1) & 0xffffff;   /* completions still on their way are stale from now on */
}

static void uring_stop_accepting(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	if (u->accepting) {
		cancel(u, udata(OP_ACCEPT, 0, 0));
		io_uring_submit(&u->ring);
		u->accepting = false;
	}
}

/* ring_close -- the ring, its provided buffers back to the free list (what completed must be reaped first) */
static void ring_close(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	struct paste_pool *p = w->pool;
	if (!u->ring_ok)
		return;
	io_uring_queue_exit(&u->ring);
	u->ring_ok = false;
	pthread_mutex_lock(&p->lock);
	for (uint32_t k = 0; k < u->br_out; k++)
		uring_give_back(p, u->br_buf[(u->br_tail - u->br_out + k) & u->br_mask]);
	pthread_mutex_unlock(&p->lock);
	u->br_out = 0;
	u->accepting = false;
	/* The kernel may tear the closed ring down later (its exit work runs
	 * asynchronously) and keeps the pages it registered pinned until then:
	 * the next ring gets memory of its own, never a buffer list a dying ring
	 * still reads. */
	munmap(u->br, u->br_bytes);
	u->br = NULL;
}

/* refused -- PASTE_ERR_UNSUPPORTED naming what refused io_uring, for the startup line */
static int refused(int err, const char *what)
{
	if (err == ENOSYS)
		return paste_set_error(PASTE_ERR_UNSUPPORTED, "io_uring: %s: this kernel has no io_uring (ENOSYS)", what);
	if (err == EPERM) {
		char v[8] = "";
		FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
		if (f) {
			if (!fgets(v, sizeof(v), f))
				v[0] = 0;
			fclose(f);
		}
		if (v[0] == '2' || v[0] == '1')
			return paste_set_error(PASTE_ERR_UNSUPPORTED, "io_uring: %s: refused by kernel.io_uring_disabled = %c", what, v[0]);
		return paste_set_error(PASTE_ERR_UNSUPPORTED,
			"io_uring: %s: refused (EPERM) by a seccomp profile or security module; Docker's default profile refuses io_uring", what);
	}
	if (err == EINVAL)
		return paste_set_error(PASTE_ERR_UNSUPPORTED,
			"io_uring: %s: this kernel lacks a feature the engine needs (SINGLE_ISSUER, DEFER_TASKRUN, provided-buffer rings: Linux 6.1 or later)", what);
	return paste_set_error(PASTE_ERR_UNSUPPORTED, "io_uring: %s: %s", what, strerror(err));
}

/* ring_open -- the ring and its provided-buffer ring, made by the thread that will poll */
static int ring_open(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	const char *env = getenv("PASTE_URING_REFUSE");
	if (env && *env && strcmp(env, "0") != 0)
		return paste_set_error(PASTE_ERR_UNSUPPORTED, "io_uring: refused on purpose (PASTE_URING_REFUSE is set)");
	struct io_uring_params prm = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE | IORING_SETUP_TASKRUN_FLAG,
		.cq_entries = CQ_ENTRIES,
	};
	if (!u->br) {
		void *m = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return paste_set_error(PASTE_ERR_IO, "io_uring: out of memory for the provided-buffer ring");
		u->br = m;
	}
	int rc = io_uring_queue_init_params(SQ_ENTRIES, &u->ring, &prm);
	if (rc < 0)
		return refused(-rc, "io_uring_setup");
	if (!(prm.features & IORING_FEAT_EXT_ARG)) {
		io_uring_queue_exit(&u->ring);
		return refused(EINVAL, "io_uring_setup");
	}
	io_uring_buf_ring_init(u->br);
	struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)u->br, .ring_entries = u->br_entries, .bgid = 0 };
	rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (rc < 0) {
		io_uring_queue_exit(&u->ring);
		return refused(-rc, "register the provided-buffer ring");
	}
	u->ring_ok = true;
	u->br_tail = u->br_out = 0;
	const char *nb = getenv("PASTE_URING_NO_BUNDLE");
	u->bundle = (prm.features & IORING_FEAT_RECVSEND_BUNDLE) && !(nb && *nb && strcmp(nb, "0") != 0);
	const char *ec = getenv("PASTE_URING_EAGER_CONNS");   /* for measuring: 0 always waits for the next enter */
	u->eager_conns = ec && *ec ? (uint32_t)strtoul(ec, NULL, 10) : EAGER_CONNS;
	return 0;
}

/*
 * uring_takeover -- a new thread runs the worker. The old thread's ring
 * refuses this one (SINGLE_ISSUER), and its requests were cancelled when the
 * thread exited. Reap what it completed (data received stays in the
 * backlog, in order), close it, and build a ring of this thread's that
 * re-arms the listener, every open connection and every queued reply.
 */
static void uring_takeover(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	if (u->ring_ok)
		reap(w);
	ring_close(w);
	for (uint32_t i = 0; i < u->nuc; i++) {
		u->uc[i].recv = u->uc[i].sending = u->uc[i].pollout = u->uc[i].queued = u->uc[i].rearm = false;
		if (u->uc[i].s)
			u->uc[i].s->inflight = 0;
	}
	u->nsendl = u->nrearm = 0;
	if ((u->reopen_err = ring_open(w)) != 0) {
		snprintf(u->reopen_msg, sizeof(u->reopen_msg), "%s", paste_last_error());
		return;   /* the next poll fails with the reason */
	}
	for (uint32_t i = 0; i < w->nconns && i < u->nuc; i++) {
		if (w->conns[i].fd < 0)
			continue;
		if (!w->conns[i].eof && !list_push(&u->rearm, &u->nrearm, &u->cap_rearm, i))
			u->uc[i].rearm = true;
		if (owes(&u->uc[i]))
			uring_want_send(u, i);
	}
}

static void uring_free(struct paste_uring *u)
{
	for (uint32_t i = 0; i < u->nuc; i++)
		if (u->uc[i].s) {
			free(u->uc[i].s->q);
			free(u->uc[i].s->stage.data);
			free(u->uc[i].s);
		}
	free(u->uc);
	free(u->rearm);
	free(u->sendl);
	free(u->bl);
	free(u->br_buf);
	if (u->br)
		munmap(u->br, u->br_bytes);
	free(u);
}

static void uring_detach(struct paste_worker *w)
{
	struct paste_uring *u = U(w);
	struct paste_pool *p = w->pool;
	ring_close(w);
	pthread_mutex_lock(&p->lock);
	for (uint32_t i = 0; i < u->nbl; i++)
		uring_give_back(p, u->bl[i].buf);
	pthread_mutex_unlock(&p->lock);
	for (uint32_t i = 0; i < u->nuc; i++)
		uring_drop_queue(w, &u->uc[i]);
	uring_free(u);
}

int paste_uring_listen(paste_worker *w, const char *host, uint32_t port, int backlog)
{
	if (!w)
		return paste_set_error(PASTE_ERR_STATE, "listen: no worker");
	if (paste_tcp_of(w))
		return paste_set_error(PASTE_ERR_STATE, "listen: worker %u already listens", w->id);
	struct paste_uring *u = calloc(1, sizeof(*u));
	if (!u)
		return paste_set_error(PASTE_ERR_IO, "io_uring: out of memory");
	uint32_t n = 1;
	while (n * 2 <= w->pool->sb.ring_slots && n * 2 <= BR_MAX)
		n *= 2;
	u->br_entries = n;
	u->br_mask = n - 1;
	u->br_bytes = ((size_t)n * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;   /* mapped by ring_open */
	u->br_buf = calloc(n, sizeof(*u->br_buf));
	if (!u->br_buf) {
		uring_free(u);
		return paste_set_error(PASTE_ERR_IO, "io_uring: out of memory for the provided-buffer ring");
	}
	int fd = paste_tcp_bind(host, port, backlog);
	if (fd < 0) {
		uring_free(u);
		return fd;
	}
	int rc = paste_tcp_attach(w, fd, &uring_engine, u);
	if (rc) {
		close(fd);
		uring_free(u);
		return rc;
	}
	if ((rc = ring_open(w)) != 0) {
		paste_port_attach(w, NULL, NULL);   /* detaches: the listener is closed, u freed */
		return rc;
	}
	/* The kernel picks RX buffers now: the ones parked in free slots go back to the free list. */
	pthread_mutex_lock(&w->pool->lock);
	paste_rx_unpark(w);
	pthread_mutex_unlock(&w->pool->lock);
	return 0;
}

static const struct paste_tcp_engine uring_engine = {
	.name = "io_uring", .poll = uring_poll, .deliver = uring_deliver, .delivered = uring_delivered, .stop_reading = uring_stop_reading,
	.closing = uring_closing, .stop_accepting = uring_stop_accepting, .takeover = uring_takeover, .detach = uring_detach,
};

#endif /* PASTE_NO_URING */

