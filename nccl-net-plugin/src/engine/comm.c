// SPDX-License-Identifier: MIT
/*
 * Send and receive comms: posting, matching, completion, close.
 *
 * Protocol per comm: for each isend the sender writes a MSG frame (seq, size,
 * tag) on the control socket and the payload striped over the data sockets
 * (stripe.c). The receiver reads a frame only when a posted receive is
 * waiting for one, checks it against that receive (tag, size) and only then
 * queues reads on the data sockets, straight into the matched buffer. A
 * frame that does not fit fails the comm before a single payload byte is
 * read, so a receive buffer is never overrun. The receiver reports such
 * failures back with an ERR frame so both sides log the same reason.
 */
#include "engine/engine.h"
#include "placement/devmem.h"
#include "placement/devq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void sock_tune(int fd)
{
	int one = 1, ms = dm_cfg.timeout_ms, ka = ms / 3000 > 0 ? ms / 3000 : 1;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	/*
	 * Control frames are tiny and latency-bound. Data sockets too: every
	 * chunk ends in a short segment, and with Nagle that tail waits for the
	 * ACK of the previous one, which the peer may delay by up to 40 ms
	 * (the 256 KiB..1 MiB cliff in docs/results.md). We always write
	 * whole chunks, so there is nothing for Nagle to coalesce.
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* unacknowledged data for this long means the peer is gone: bounded failure */
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
	/*
	 * An idle connection sends nothing, so a peer host that vanished
	 * (power, link, partition) without a reset would leave a posted
	 * receive waiting forever. Keepalive probes an idle socket after a
	 * third of the timeout; with TCP_USER_TIMEOUT set the kernel gives up
	 * once the peer has been silent that long and a probe is out
	 * (tcp_keepalive_timer), so the comm fails with ETIMEDOUT within about
	 * NCCL_DEVMEM_TIMEOUT_MS. Probes only flow on idle sockets: nothing is
	 * added to the data path.
	 */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &ka, sizeof(ka));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &ka, sizeof(ka));
}

/*
 * "peer 198.18.0.2:41234", the control connection's other end, for messages:
 * taken at creation, since a connection that died has no peer to ask.
 */
static void peer_name(struct dm_comm *c)
{
	union dm_addr sa;
	socklen_t sl = sizeof(sa);
	char a[64];

	if (getpeername(c->ctrl_fd, &sa.sa, &sl) ||
	    (sa.sa.sa_family != AF_INET && sa.sa.sa_family != AF_INET6)) {
		snprintf(c->peer, sizeof(c->peer), "the peer");
		return;
	}
	dm_addr_str(&sa, a, sizeof(a));
	snprintf(c->peer, sizeof(c->peer), "peer %s", a);
}

int dm_comm_create(bool is_recv, int dev, int ctrl_fd, const int *data_fds, int nsocks,
		   uint32_t max_chunk, struct dm_comm **out)
{
	struct dm_comm *c;
	int err, i;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->task_mem = calloc((size_t)DM_MAX_REQS * DM_MAX_RECVS * nsocks, sizeof(struct dm_task));
	if (!c->task_mem) {
		err = -ENOMEM;
		goto err_free;
	}
	c->is_recv = is_recv;
	c->dev = dev;
	c->ctrl_fd = ctrl_fd;
	c->nsocks = nsocks;
	c->max_chunk = max_chunk;
	c->mode = DM_MODE_COPY;
	pthread_mutex_init(&c->api_lock, NULL);
	pthread_mutex_init(&c->err_lock, NULL);
	for (i = 0; i < DM_MAX_REQS; i++) {
		c->reqs[i].comm = c;
		c->reqs[i].tasks = c->task_mem + (size_t)i * DM_MAX_RECVS * nsocks;
	}
	sock_tune(ctrl_fd);
	peer_name(c);
	for (i = 0; i < nsocks; i++) {
		c->socks[i].fd = data_fds[i];
		c->socks[i].idx = i;
		c->socks[i].comm = c;
		pthread_mutex_init(&c->socks[i].lock, NULL);
		pthread_mutex_init(&c->socks[i].io, NULL);
		sock_tune(data_fds[i]);
	}
	if (is_recv) {
		err = dm_devmem_setup_comm(c);
		if (err)
			goto err_free_tasks;
	}
	err = dm_progress_get();
	if (err)
		goto err_devmem;
	for (i = 0; i < nsocks; i++)
		dm_progress_attach(&c->socks[i]);
	*out = c;
	return 0;

err_devmem:
	if (is_recv)
		dm_devmem_teardown_comm(c);
	for (i = 0; c->gpu && i < nsocks; i++)
		dm_lane_destroy(c->gpu, c->socks[i].lane);
	dm_gpu_destroy(c->gpu);
err_free_tasks:
	for (i = 0; i < nsocks; i++) {
		pthread_mutex_destroy(&c->socks[i].lock);
		pthread_mutex_destroy(&c->socks[i].io);
	}
	free(c->task_mem);
err_free:
	free(c);
	return err;
}

/* ---- control socket, caller thread only ---- */

static void ctrl_flush(struct dm_comm *c)
{
	ssize_t n;

	while (c->ctx_len) {
		n = send(c->ctrl_fd, c->ctx, c->ctx_len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				dm_comm_fail(c, -errno, "control socket send failed: %s",
					     strerror(errno));
			return;
		}
		memmove(c->ctx, c->ctx + n, c->ctx_len - n);
		c->ctx_len -= n;
		c->ctx_sent += n;
	}
}

static bool ctrl_queue(struct dm_comm *c, const uint8_t *frame, size_t len)
{
	if (c->ctx_len + len > sizeof(c->ctx))
		return false;
	memcpy(c->ctx + c->ctx_len, frame, len);
	c->ctx_len += len;
	c->ctx_queued += len;
	return true;
}

/* Tells the peer why this comm failed, once, best effort. */
static void ctrl_send_err(struct dm_comm *c)
{
	uint8_t f[DM_FRAME_MAX_LEN];
	char msg[256];

	if (c->err_sent)
		return;
	c->err_sent = true;
	pthread_mutex_lock(&c->err_lock);
	snprintf(msg, sizeof(msg), "%s", c->errmsg);
	pthread_mutex_unlock(&c->err_lock);
	c->ctx_len = 0;	/* nothing queued matters any more */
	ctrl_queue(c, f, dm_frame_encode_err(f, (uint32_t)-atomic_load(&c->err), msg));
	ctrl_flush(c);
}

/* 1 = a frame in *f, 0 = none yet, <0 = comm failed */
static int ctrl_next(struct dm_comm *c, struct dm_frame *f)
{
	uint64_t now;
	ssize_t n;
	int r;

	for (;;) {
		r = dm_frame_parse(c->crx, c->crx_len, f);
		if (r < 0)
			return dm_comm_fail(c, -EBADMSG,
					    "malformed control frame from the peer (%zu bytes buffered, starting %02x %02x %02x %02x)",
					    c->crx_len, c->crx[0], c->crx[1], c->crx[2], c->crx[3]);
		if (r > 0) {
			memmove(c->crx, c->crx + r, c->crx_len - r);
			c->crx_len -= r;
			c->crx_partial_since = c->crx_len ? (double)dm_now_ms() : 0;
			return 1;
		}
		n = recv(c->ctrl_fd, c->crx + c->crx_len, sizeof(c->crx) - c->crx_len,
			 MSG_DONTWAIT);
		if (n > 0) {
			if (!c->crx_len)
				c->crx_partial_since = (double)dm_now_ms();
			c->crx_len += n;
			continue;
		}
		if (n == 0) {
			c->peer_closed = true;
			if (c->crx_len)
				return dm_comm_fail(c, -EBADMSG,
						    "truncated control frame: peer closed the connection after %zu bytes of a frame",
						    c->crx_len);
			return 0;
		}
		if (errno == EFAULT)
			return dm_comm_fail(c, -EFAULT, "control socket recv failed: %s: "
					    DM_EFAULT_WHY("the control connection"), strerror(EFAULT));
		if (errno == ETIMEDOUT)
			return dm_comm_fail(c, -ETIMEDOUT,
					    "%s stopped answering: no reply to keepalive or data for %d ms (NCCL_DEVMEM_TIMEOUT_MS; host down or unreachable)",
					    c->peer, dm_cfg.timeout_ms);
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return dm_comm_fail(c, -errno, "control socket recv failed: %s",
					    strerror(errno));
		now = dm_now_ms();
		if (c->crx_len && now - c->crx_partial_since > dm_cfg.timeout_ms)
			return dm_comm_fail(c, -ETIMEDOUT,
					    "incomplete control frame (%zu bytes) for %d ms",
					    c->crx_len, dm_cfg.timeout_ms);
		return 0;
	}
}

static int inflight(struct dm_comm *c, enum dm_req_kind kind)
{
	int n = 0;

	for (int i = 0; i < DM_MAX_REQS; i++)
		n += c->reqs[i].kind == kind;
	return n;
}

/* ---- striping a message into per-socket tasks ---- */

static void plan_tasks(struct dm_comm *c, struct dm_req *r, int sub)
{
	struct dm_sub *s = &r->sub[sub];
	uint64_t chunk = dm_stripe_chunk(s->size, c->nsocks, c->max_chunk);
	uint64_t nchunks = dm_stripe_nchunks(s->size, chunk);
	uint64_t ntasks = nchunks < (uint64_t)c->nsocks ? nchunks : (uint64_t)c->nsocks;
	unsigned start = c->stripe_start;

	atomic_fetch_add(&r->tasks_left, (int)ntasks);
	for (uint64_t k = 0; k < ntasks; k++) {
		struct dm_task *t = &r->tasks[sub * c->nsocks + k];

		*t = (struct dm_task){ .req = r, .base = s->data, .mr = s->mr, .size = s->size,
				       .chunk = chunk, .k = k, .step = c->nsocks };
		dm_sock_enqueue(&c->socks[(start + k) % c->nsocks], t);
	}
	c->stripe_start = (start + nchunks) % c->nsocks;
	for (uint64_t k = 0; k < ntasks; k++) {
		/*
		 * The worker is kicked for what the first try leaves: with
		 * several requests in flight it moves them while this thread
		 * is out of test() (without the kick, 1 MiB sendrecv and a
		 * 4-rank 1 MiB allreduce ran 0.6-0.7x as fast, docs/results.md).
		 */
		if (s->size <= DM_INLINE_MAX)
			dm_progress_inline(&c->socks[(start + k) % c->nsocks], true);
		else
			dm_progress_kick(&c->socks[(start + k) % c->nsocks]);
	}
}

/* test(): small messages whose bytes had not arrived (or fit) at post time */
static void inline_poll(struct dm_comm *c)
{
	for (int i = 0; i < c->nsocks; i++)
		dm_progress_inline(&c->socks[i], false);
}

static struct dm_req *req_get(struct dm_comm *c, enum dm_req_kind kind)
{
	for (int i = 0; i < DM_MAX_REQS; i++) {
		struct dm_req *r = &c->reqs[i];

		if (r->kind == DM_REQ_FREE) {
			r->kind = kind;
			r->n = 0;
			r->nmatched = 0;
			r->hdr_end = 0;
			atomic_store(&r->tasks_left, 0);
			r->unpack_seq = -1;
			r->post_seq = c->post_seq++;
			return r;
		}
	}
	return NULL;
}

/* ---- send side ---- */

/* Reads what the receiver may send us: ERR, BYE, or EOF. */
static void send_poll(struct dm_comm *c)
{
	struct dm_frame f;
	int r;

	ctrl_flush(c);
	while (!c->peer_closed && (r = ctrl_next(c, &f)) > 0) {
		if (f.type == DM_FRAME_ERR) {
			dm_comm_fail(c, -DM_EREMOTE, "receiver reported: %s", f.err.text);
			c->err_sent = true;	/* it knows */
			return;
		}
		if (f.type == DM_FRAME_BYE) {
			c->peer_closed = true;
			break;
		}
		dm_comm_fail(c, -EBADMSG, "unexpected control frame type %u from the receiver",
			     f.type);
		return;
	}
	if (c->peer_closed && inflight(c, DM_REQ_SEND))
		dm_comm_fail(c, -DM_EREMOTE,
			     "receiver closed the connection with %d send(s) in flight",
			     inflight(c, DM_REQ_SEND));
}

int dm_comm_isend(struct dm_comm *c, void *data, uint64_t size, int tag, struct dm_mr *mr,
		  struct dm_req **out)
{
	uint8_t f[DM_FRAME_MAX_LEN];
	struct dm_req *r = NULL;
	int err;

	pthread_mutex_lock(&c->api_lock);
	send_poll(c);
	err = atomic_load(&c->err);
	if (err)
		goto out;
	if (c->peer_closed) {
		err = dm_comm_fail(c, -DM_EREMOTE, "isend after the receiver closed the connection");
		goto out;
	}
	/* no slot or no room for the header: NCCL retries (request NULL) */
	if (c->ctx_len + DM_FRAME_HDR_LEN + DM_MSG_PAYLOAD_LEN > sizeof(c->ctx))
		goto out;
	r = req_get(c, DM_REQ_SEND);
	if (!r)
		goto out;
	r->n = 1;
	r->sub[0] = (struct dm_sub){ .data = data, .max = size, .size = size, .tag = tag,
				     .matched = true, .mr = mr };
	ctrl_queue(c, f, dm_frame_encode_msg(f, c->msg_seq++, size, tag));
	r->hdr_end = c->ctx_queued;
	/* header first: the receiver cannot place a byte of the payload before it */
	ctrl_flush(c);
	plan_tasks(c, r, 0);
out:
	pthread_mutex_unlock(&c->api_lock);
	*out = r;
	return err;
}

/* ---- receive side ---- */

static struct dm_req *oldest_unmatched(struct dm_comm *c)
{
	struct dm_req *best = NULL;

	for (int i = 0; i < DM_MAX_REQS; i++) {
		struct dm_req *r = &c->reqs[i];

		if (r->kind == DM_REQ_RECV && r->nmatched < r->n &&
		    (!best || r->post_seq < best->post_seq))
			best = r;
	}
	return best;
}

static int match_msg(struct dm_comm *c, struct dm_req *r, const struct dm_frame *f)
{
	char tags[96] = "";
	size_t tl = 0;
	int i;

	if (f->msg.seq != c->msg_seq)
		return dm_comm_fail(c, -EBADMSG, "control frame out of sequence: got %llu, expected %llu",
				    (unsigned long long)f->msg.seq, (unsigned long long)c->msg_seq);
	for (i = 0; i < r->n; i++)
		if (!r->sub[i].matched && r->sub[i].tag == f->msg.tag)
			break;
	if (i == r->n) {
		for (int j = 0; j < r->n && tl < sizeof(tags) - 12; j++)
			if (!r->sub[j].matched)
				tl += snprintf(tags + tl, sizeof(tags) - tl, "%s%d", tl ? "," : "",
					       r->sub[j].tag);
		return dm_comm_fail(c, -DM_EREMOTE,
				    "tag mismatch: message %llu has tag %d, the posted receive waits for tag(s) %s",
				    (unsigned long long)f->msg.seq, f->msg.tag, tags);
	}
	if (f->msg.size > r->sub[i].max)
		return dm_comm_fail(c, -DM_EREMOTE,
				    "message %llu (tag %d) is %llu bytes, larger than the posted receive of %llu bytes: refusing it",
				    (unsigned long long)f->msg.seq, f->msg.tag,
				    (unsigned long long)f->msg.size,
				    (unsigned long long)r->sub[i].max);
	r->sub[i].size = f->msg.size;
	r->sub[i].matched = true;
	r->nmatched++;
	c->msg_seq++;
	plan_tasks(c, r, i);
	return 0;
}

static void recv_poll(struct dm_comm *c)
{
	struct dm_frame f;
	struct dm_req *r;

	while (!atomic_load(&c->err) && (r = oldest_unmatched(c))) {
		int got = c->peer_closed ? 0 : ctrl_next(c, &f);

		if (got < 0)
			return;
		if (got == 0) {
			if (c->peer_closed)
				dm_comm_fail(c, -ECONNRESET,
					     "sender closed the connection while a receive was posted");
			return;
		}
		switch (f.type) {
		case DM_FRAME_MSG:
			if (match_msg(c, r, &f))
				return;
			break;
		case DM_FRAME_ERR:
			dm_comm_fail(c, -DM_EREMOTE, "sender reported: %s", f.err.text);
			c->err_sent = true;
			return;
		case DM_FRAME_BYE:
			c->peer_closed = true;
			break;
		}
	}
}

int dm_comm_irecv(struct dm_comm *c, int n, void **data, const uint64_t *sizes,
		  const int *tags, struct dm_mr **mrs, bool optional, struct dm_req **out)
{
	struct dm_req *r = NULL;
	int err;

	if (n < 1 || n > (c->devq ? 1 : DM_MAX_RECVS)) {
		DM_WARN("irecv: %d buffers requested, supported 1..%d%s", n, c->devq ? 1 : DM_MAX_RECVS,
			c->devq ? " (NCCL's device unpack takes one buffer per receive)" : "");
		*out = NULL;
		return -EINVAL;
	}
	pthread_mutex_lock(&c->api_lock);
	err = atomic_load(&c->err);
	if (err)
		goto out;
	r = req_get(c, DM_REQ_RECV);
	if (!r)
		goto out;
	/*
	 * NCCL's kernel reads the k-th receive it unpacks from slot k % 16;
	 * LL/LL128 receives are not unpacked there and take no slot. Before
	 * recv_poll(): matching may start moving bytes at once.
	 */
	if (c->devq && !optional) {
		r->unpack_seq = dm_devq_take(c->devq);
		if (r->unpack_seq < 0) {
			/* 16 receives not yet consumed: NCCL retries a NULL request */
			DM_TRACE("irecv: all %d device-unpack slots await irecvConsumed", DM_DEVQ_DEPTH);
			r->kind = DM_REQ_FREE;
			r = NULL;
			goto out;
		}
	}
	r->n = n;
	for (int i = 0; i < n; i++)
		r->sub[i] = (struct dm_sub){ .data = data[i], .max = sizes[i], .tag = tags[i],
					     .mr = mrs ? mrs[i] : NULL };
	recv_poll(c);
out:
	pthread_mutex_unlock(&c->api_lock);
	*out = r;
	return err;
}

int dm_comm_iflush(struct dm_comm *c, struct dm_req **out)
{
	struct dm_req *r;

	pthread_mutex_lock(&c->api_lock);
	r = req_get(c, DM_REQ_FLUSH);
	pthread_mutex_unlock(&c->api_lock);
	*out = r;
	return 0;
}

/* ---- completion ---- */

static bool req_complete(struct dm_comm *c, struct dm_req *r)
{
	switch (r->kind) {
	case DM_REQ_SEND:
		return c->ctx_sent >= r->hdr_end &&
		       atomic_load_explicit(&r->tasks_left, memory_order_acquire) == 0;
	case DM_REQ_RECV:
		return r->nmatched == r->n &&
		       atomic_load_explicit(&r->tasks_left, memory_order_acquire) == 0;
	case DM_REQ_FLUSH:
		/* Ordering: a flush completes after every receive posted before it. */
		for (int i = 0; i < DM_MAX_REQS; i++) {
			struct dm_req *o = &c->reqs[i];

			if (o->kind == DM_REQ_RECV && o->post_seq < r->post_seq &&
			    !req_complete(c, o))
				return false;
		}
		return true;
	case DM_REQ_CONSUME:	/* done; only NCCL's kernel still reads its data */
		return true;
	case DM_REQ_FREE:
		break;
	}
	return false;
}

/*
 * A receive NCCL's kernel unpacks is complete: its metadata count goes out
 * before test() says done (NCCL's proxy then hands the step to the GPU), and
 * the request lives on until irecvConsumed.
 */
static enum dm_req_kind recv_publish(struct dm_comm *c, struct dm_req *r)
{
	uint32_t over = 0, n;

	if (r->unpack_seq < 0)
		return DM_REQ_CONSUME;
	n = dm_devq_publish(c->devq, r->unpack_seq, &over);
	if (over && !c->overflow_logged) {
		c->overflow_logged = true;
		DM_INFO("recv comm %p: a %llu-byte receive came in %u pieces; NCCL's unpack takes %d per receive, the plugin copied the other %u itself (logged once per comm)",
			(void *)c, (unsigned long long)r->sub[0].size, n + over, DM_DEVQ_MAX_ENTRIES,
			over);
	}
	DM_TRACE("recv comm %p: receive %lld published %u entries (%u copied by the plugin)",
		 (void *)c, (long long)r->unpack_seq, n, over);
	return DM_REQ_CONSUME;
}

int dm_comm_irecv_consumed(struct dm_comm *c, int n, struct dm_req *r)
{
	int err = 0;

	/* without device unpack test() already freed the request: nothing to do */
	if (!c || !c->devq)
		return 0;
	pthread_mutex_lock(&c->api_lock);
	if (!r || r->comm != c || r->kind != DM_REQ_CONSUME) {
		DM_WARN("recv comm %p: irecvConsumed on a request %p that is not a completed receive",
			(void *)c, (void *)r);
		err = -EINVAL;
		goto out;
	}
	if (r->unpack_seq >= 0)
		dm_devmem_consumed(c, r->unpack_seq);
	dm_emu_consumed(c, r);
	r->unpack_seq = -1;
	r->kind = DM_REQ_FREE;
out:
	pthread_mutex_unlock(&c->api_lock);
	return err;
}

int dm_req_test(struct dm_req *r, int *done, int *sizes)
{
	struct dm_comm *c = r->comm;
	int err;

	*done = 0;
	pthread_mutex_lock(&c->api_lock);
	if (r->kind == DM_REQ_FREE || r->kind == DM_REQ_CONSUME) {
		pthread_mutex_unlock(&c->api_lock);
		DM_WARN("test() on a request that is not in flight");
		return -EINVAL;
	}
	if (c->is_recv)
		recv_poll(c);
	else
		send_poll(c);
	if (!req_complete(c, r) && !atomic_load(&c->err))
		inline_poll(c);
	if (req_complete(c, r)) {
		*done = 1;
		for (int i = 0; sizes && i < r->n; i++)
			sizes[i] = r->sub[i].size > 0x7fffffff ? 0x7fffffff : (int)r->sub[i].size;
		if (r->kind == DM_REQ_FLUSH && sizes)
			sizes[0] = 0;
		r->kind = r->kind == DM_REQ_RECV && c->devq ? recv_publish(c, r) : DM_REQ_FREE;
		err = 0;
	} else {
		err = atomic_load(&c->err);
		if (err)
			ctrl_send_err(c);
	}
	pthread_mutex_unlock(&c->api_lock);
	return err;
}

/* ---- deregistration ---- */

/*
 * NCCL deregisters only memory that no request in flight uses, except when it
 * tears down after a failure: then sends and receives may still be queued on
 * the data sockets, and a progress thread that began its pass before the
 * failure may be inside dm_copy_step() reading the mr and the buffer. So: a
 * request in flight that uses @mr fails a healthy comm (no more I/O into
 * memory its owner is taking back), and every socket's current pass is then
 * waited out; later passes see the error and leave the tasks alone.
 */
void dm_comm_quiesce_mr(struct dm_comm *c, struct dm_mr *mr)
{
	bool used = false;

	pthread_mutex_lock(&c->api_lock);
	for (int i = 0; i < DM_MAX_REQS && !used; i++) {
		struct dm_req *r = &c->reqs[i];

		if (r->kind != DM_REQ_SEND && r->kind != DM_REQ_RECV)
			continue;
		for (int j = 0; j < r->n; j++)
			used |= r->sub[j].mr == mr;
	}
	if (used)
		dm_comm_fail(c, -EBUSY, "deregMr of a buffer that a request in flight still uses");
	pthread_mutex_unlock(&c->api_lock);
	if (!used && !atomic_load(&c->err))
		return;
	for (int i = 0; i < c->nsocks; i++)
		dm_progress_barrier(&c->socks[i]);
}

/* ---- traffic class ---- */

void dm_comm_set_tclass(struct dm_comm *c, int tclass)
{
	union dm_addr sa = { 0 };
	socklen_t sl = sizeof(sa);
	int tos = tclass & 0xff, level = IPPROTO_IP, opt = IP_TOS;

	if (tclass == NCCL_NET_TRAFFIC_CLASS_UNDEF)
		return;
	/* an IPv6 socket's class is its own option: IP_TOS would set nothing on the wire */
	getsockname(c->ctrl_fd, &sa.sa, &sl);
	if (sa.sa.sa_family == AF_INET6) {
		level = IPPROTO_IPV6;
		opt = IPV6_TCLASS;
	}
	/* control and data alike: NCCL's class is for the whole connection */
	if (setsockopt(c->ctrl_fd, level, opt, &tos, sizeof(tos)))
		DM_WARN("traffic class %d: setsockopt(%s) failed: %s", tclass,
			opt == IP_TOS ? "IP_TOS" : "IPV6_TCLASS", strerror(errno));
	for (int i = 0; i < c->nsocks; i++)
		setsockopt(c->socks[i].fd, level, opt, &tos, sizeof(tos));
	DM_INFO("%s comm %p: traffic class %d (%s 0x%02x) on its %d sockets",
		c->is_recv ? "recv" : "send", (void *)c, tclass,
		opt == IP_TOS ? "IP_TOS" : "IPV6_TCLASS", tos, c->nsocks + 1);
}

/* ---- GPU engine ---- */

/* ---- close ---- */

void dm_comm_destroy(struct dm_comm *c)
{
	uint8_t f[DM_FRAME_MAX_LEN];
	int busy;

	if (!c)
		return;
	pthread_mutex_lock(&c->api_lock);
	busy = inflight(c, DM_REQ_SEND) + inflight(c, DM_REQ_RECV);
	if (busy)
		DM_INFO("closing %s comm %p with %d request(s) in flight",
			c->is_recv ? "recv" : "send", (void *)c, busy);
	if (!atomic_load(&c->err) && ctrl_queue(c, f, dm_frame_encode_bye(f)))
		ctrl_flush(c);
	pthread_mutex_unlock(&c->api_lock);
	/* After detach no progress thread can touch this comm's tasks or buffers. */
	for (int i = 0; i < c->nsocks; i++)
		dm_progress_detach(&c->socks[i]);
	dm_progress_put();
	/* GPU copies may still read fragments or write NCCL's buffer: let them end */
	dm_gpu_drain(c->gpu);
	for (int i = 0; i < c->nsocks; i++)
		if (c->socks[i].dmrx)
			c->socks[i].dmrx->lane = NULL;
	if (c->is_recv)
		dm_devmem_teardown_comm(c);
	dm_emu_detach(c);
	/* NCCL closes a recv comm once its kernels are done with it */
	dm_devmem_unpack_detach(c);
	for (int i = 0; i < c->nsocks; i++) {
		close(c->socks[i].fd);
		if (c->gpu)
			dm_lane_destroy(c->gpu, c->socks[i].lane);
		pthread_mutex_destroy(&c->socks[i].lock);
		pthread_mutex_destroy(&c->socks[i].io);
	}
	dm_gpu_destroy(c->gpu);
	close(c->ctrl_fd);
	pthread_mutex_destroy(&c->api_lock);
	pthread_mutex_destroy(&c->err_lock);
	free(c->task_mem);
	free(c);
}
