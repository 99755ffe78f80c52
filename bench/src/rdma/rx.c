// SPDX-License-Identifier: MIT
/*
 * The RDMA baseline, receiving side: the peer RDMA-writes into the buffer
 * the gpud run received into (the devmem-bound gpud_mem), registered with
 * gpud_rdma_reg(): a dma-buf MR on a NIC that imports dma-bufs, the CPU
 * mapping on soft-RoCE. What this side's CPU does per byte is what it
 * costs to know the data is there: a completion, a credit, and with
 * --validate a read-back through gpud_mem_read() of every byte written.
 */
#include "rdma_bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define RXB_RDMA_MEM	(32u << 20)	/* without a binding: as a devmem run's */
#define RXB_POLL_BATCH	16

static int skip(struct rxb_rxsetup *rs, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int skip(struct rxb_rxsetup *rs, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rs->rdma_skip, sizeof(rs->rdma_skip), fmt, ap);
	va_end(ap);
	return err;
}

static bool soft_provider(const char *provider, const char *dev)
{
	return !strcmp(provider, "rxe") || !strcmp(provider, "siw") ||
	       !strncmp(dev, "rxe", 3) || !strncmp(dev, "siw", 3);
}

/*
 * Without a devmem binding there is no "same buffer": make one of the --mem
 * kind, exported like a devmem buffer so that an importing NIC gets the
 * dma-buf. Host memory without /dev/udmabuf still serves, unexported.
 */
static int own_buffer(struct rxb_rxsetup *rs, struct rxb_rdma_rx *r, const struct rxb_opts *o)
{
	size_t size = o->mem_size ? o->mem_size : RXB_RDMA_MEM;
	struct gpud_mem_opts mo = rs->mem_opts;
	char first[256];
	int ret;

	ret = gpud_mem_create(rs->mem_kind, size, &mo, &r->own_mem);
	if (!ret) {
		snprintf(r->info.buffer, sizeof(r->info.buffer), "a %zu MiB %s buffer of its own "
			 "(no devmem binding to share)", gpud_mem_size(r->own_mem) >> 20,
			 gpud_mem_kind_name(rs->mem_kind));
		return 0;
	}
	snprintf(first, sizeof(first), "%s", gpud_errmsg());
	if (rs->mem_kind != GPUD_MEM_HOST)
		return skip(rs, ret, "cannot allocate %zu bytes of %s memory for the RDMA run: %s",
			    size, o->mem_spec, first);
	mo.flags |= GPUD_MEM_F_NO_DMABUF;
	ret = gpud_mem_create(rs->mem_kind, size, &mo, &r->own_mem);
	if (ret)
		return skip(rs, ret, "cannot allocate %zu bytes of host memory for the RDMA run: %s",
			    size, gpud_errmsg());
	snprintf(r->info.buffer, sizeof(r->info.buffer), "a %zu MiB host buffer of its own, not "
		 "a dma-buf (%.80s)", gpud_mem_size(r->own_mem) >> 20, first);
	return 0;
}

/* Each flow gets a page-aligned slice; the peer writes a ring of slots in it. */
static int layout(struct rxb_rxsetup *rs, struct rxb_rdma_rx *r, const struct rxb_opts *o)
{
	size_t slice = (gpud_mem_size(r->mem) / o->flows) & ~(size_t)4095;
	size_t slot = o->chunk;

	if (slice / slot < 2)
		slot = (slice / 2) & ~(size_t)63;
	if (slot < 4096)
		return skip(rs, -ENOSPC, "the %zu-byte buffer is too small for %u RDMA flows: "
			    "raise --mem-size", gpud_mem_size(r->mem), o->flows);
	r->slice = slice;
	r->slot = (uint32_t)slot;
	r->nslots = (uint32_t)(slice / slot < RXB_RDMA_MAX_SLOTS ? slice / slot :
			       RXB_RDMA_MAX_SLOTS);
	return 0;
}

static void fill_info(struct rxb_rdma_rx *r, bool same)
{
	struct rxb_rdma_info *ri = &r->info;
	struct gpud_rdma_dev_info di[16];
	int n = gpud_rdma_devs_get(di, 16);

	snprintf(ri->device, sizeof(ri->device), "%s", gpud_rdma_dev_name(r->dev));
	snprintf(ri->provider, sizeof(ri->provider), "%s", gpud_rdma_dev_provider(r->dev));
	for (int i = 0; i < n && i < 16; i++)
		if (!strcmp(di[i].name, ri->device))
			snprintf(ri->netdev, sizeof(ri->netdev), "%s", di[i].netdev);
	ri->registration = gpud_rdma_mr_how(r->mr) == GPUD_RDMA_MR_DMABUF ? "dmabuf" :
									  "cpu-mapping";
	ri->same_buffer = same;
	ri->soft = soft_provider(ri->provider, ri->device);
	ri->mem_bytes = gpud_rdma_mr_length(r->mr);
	ri->slot_bytes = r->slot;
	ri->slots = r->nslots;
	ri->gid_index = -1;
}

int rxb_rdma_rx_init(struct rxb_rxsetup *rs, const struct rxb_opts *o)
{
	struct rxb_rdma_rx *r;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return skip(rs, -ENOMEM, "out of memory");
	ret = gpud_rdma_dev_open(o->rdma_dev, &r->dev);
	if (ret) {
		skip(rs, ret, "%s", gpud_errmsg());
		goto err_free;
	}
	ret = gpud_rdma_port_check(r->dev);
	if (ret) {
		skip(rs, ret, "%s", gpud_errmsg());
		goto err_dev;
	}
	if (rs->bound_mem) {
		r->mem = rs->bound_mem;
		snprintf(r->info.buffer, sizeof(r->info.buffer), "the %zu MiB %s dma-buf the gpud "
			 "run received into (still bound)", gpud_mem_size(r->mem) >> 20,
			 gpud_mem_kind_name(rs->mem_kind));
	} else {
		ret = own_buffer(rs, r, o);
		if (ret)
			goto err_dev;
		r->mem = r->own_mem;
	}
	ret = gpud_rdma_reg(r->dev, r->mem, 0, 0, GPUD_RDMA_ACCESS_REMOTE_WRITE, &r->mr);
	if (ret) {
		skip(rs, ret, "%s", gpud_errmsg());
		goto err_mem;
	}
	ret = layout(rs, r, o);
	if (ret)
		goto err_mr;
	fill_info(r, r->mem == rs->bound_mem);
	rs->rdma = r;
	return 0;

err_mr:
	gpud_rdma_mr_free(r->mr);
err_mem:
	gpud_mem_free(r->own_mem);
err_dev:
	gpud_rdma_dev_free(r->dev);
err_free:
	free(r);
	return ret;
}

void rxb_rdma_rx_free(struct rxb_rxsetup *rs)
{
	struct rxb_rdma_rx *r = rs->rdma;

	if (!r)
		return;
	gpud_rdma_mr_free(r->mr);
	gpud_mem_free(r->own_mem);
	gpud_rdma_dev_free(r->dev);
	free(r);
	rs->rdma = NULL;
}

void rxb_rdma_rx_describe(const struct rxb_rxsetup *rs, struct rxb_rdma_info *info)
{
	if (rs->rdma)
		*info = rs->rdma->info;
}

/* ------------------------------------------------------------------ */
/* One flow                                                            */
/* ------------------------------------------------------------------ */

struct rx_flow {
	struct rxb_flow_ctx *f;
	struct rxb_rdma_rx *r;
	struct gpud_rdma_qp *q;
	size_t base;			/* the flow's slice in r->mem */
	struct rxb_pattern pat;
	uint8_t *scratch;
	uint32_t next_seq;
	uint32_t credits_due;
	bool done_seen;			/* the sender's DONE ... */
	uint64_t done_bytes;		/* ... and what it says it wrote */
	bool peer_gone;
};

static int flow_err(struct rx_flow *rf, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int flow_err(struct rx_flow *rf, int err, const char *fmt, ...)
{
	struct rxb_flow_ctx *f = rf->f;
	char msg[200];
	va_list ap;

	if (f->res.err)
		return err;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f->res.err = err;
	snprintf(f->res.errmsg, sizeof(f->res.errmsg), "flow %u: rdma: %s", f->idx, msg);
	return err;
}

static int post_recvs(struct rx_flow *rf, uint32_t n, uint64_t wr_id)
{
	struct ibv_recv_wr wr[RXB_RDMA_MAX_SLOTS], *bad = NULL;

	/* WRITE_WITH_IMM consumes a receive but places no data through it. */
	for (uint32_t i = 0; i < n; i++)
		wr[i] = (struct ibv_recv_wr){ .wr_id = wr_id + i, .next = i + 1 < n ? &wr[i + 1] : NULL };
	return -ibv_post_recv(gpud_rdma_qp_ibv(rf->q), wr, &bad);
}

static int peer_msg_err(struct rx_flow *rf, int ret, const struct rxb_msg *m)
{
	struct rxb_flow_ctx *f = rf->f;

	if (ret == -EPROTO)
		return flow_err(rf, ret, "the peer on this run's port does not speak the RDMA "
				"side channel: is the sender running with --rdma?");
	if (ret == -ECONNRESET)
		return flow_err(rf, ret, "the sender closed the side channel");
	if (ret)
		return flow_err(rf, ret, "side channel: %s", strerror(-ret));
	if (m->type == RXB_MSG_ERROR)
		return flow_err(rf, -ECONNABORTED, "sender: %s", m->u.error);
	(void)f;
	return 0;
}

/* Queue pair, HELLO both ways, connect, receives posted, REGION out. */
static int handshake(struct rx_flow *rf)
{
	struct rxb_flow_ctx *f = rf->f;
	struct rxb_rdma_rx *r = rf->r;
	struct rxb_msg me = { .type = RXB_MSG_HELLO }, peer;
	struct gpud_rdma_qp_opts qo = {
		.depth = r->nslots, .gid_index = f->o->rdma_gid, .sock = f->fd,
		.psn = 0x1000 + f->idx, .channel = true,
	};
	int ret;

	ret = gpud_rdma_qp_create(r->dev, &qo, &rf->q);
	if (ret)
		return flow_err(rf, ret, "%s%s", gpud_errmsg(), rxb_rdma_gid_hint(ret));
	gpud_rdma_qp_local(rf->q, &me.u.hello);
	ret = rxb_wire_send(f->fd, &me);
	if (ret)
		return flow_err(rf, ret, "side channel: %s", strerror(-ret));
	ret = rxb_wire_recv(f->fd, &peer, RXB_RDMA_HANDSHAKE_S);
	if (ret || peer.type != RXB_MSG_HELLO)
		return peer_msg_err(rf, ret, &peer) ?: flow_err(rf, -EPROTO, "no HELLO from the sender");
	ret = gpud_rdma_qp_connect(rf->q, &peer.u.hello);
	if (ret)
		return flow_err(rf, ret, "%s", gpud_errmsg());
	f->rdma.gid_index = gpud_rdma_qp_gid_index(rf->q);
	f->rdma.path_mtu = gpud_rdma_qp_path_mtu(rf->q);
	ret = post_recvs(rf, r->nslots, 0);
	if (ret)
		return flow_err(rf, ret, "ibv_post_recv: %s", strerror(-ret));
	me = (struct rxb_msg){ .type = RXB_MSG_REGION };
	me.u.region.addr = gpud_rdma_mr_addr(r->mr) + rf->base;
	me.u.region.rkey = gpud_rdma_mr_rkey(r->mr);
	me.u.region.slot = r->slot;
	me.u.region.nslots = r->nslots;
	ret = rxb_wire_send(f->fd, &me);
	return ret ? flow_err(rf, ret, "side channel: %s", strerror(-ret)) : 0;
}

/* One write landed: check it where it landed, count it, give the slot back. */
static int consume(struct rx_flow *rf, const struct ibv_wc *wc)
{
	struct rxb_flow_ctx *f = rf->f;
	struct rxb_rdma_rx *r = rf->r;
	uint32_t seq = ntohl(wc->imm_data);
	size_t off;
	int ret;

	if (wc->status != IBV_WC_SUCCESS)
		return flow_err(rf, -EIO, "receive completion: %s (vendor error 0x%x)",
				gpud_rdma_wc_status_str(rf->q, (int)wc->status), wc->vendor_err);
	if (wc->opcode != IBV_WC_RECV_RDMA_WITH_IMM)
		return flow_err(rf, -EPROTO, "unexpected completion opcode %d", (int)wc->opcode);
	/* RC delivers in order: a gap or a repeat is a lost or stray write. */
	if (seq != rf->next_seq)
		return flow_err(rf, -EPROTO, "write %u arrived where %u was due", seq, rf->next_seq);
	if (wc->byte_len > r->slot)
		return flow_err(rf, -EPROTO, "a %u-byte write into %u-byte slots", wc->byte_len,
				r->slot);
	off = rf->base + (size_t)(seq % r->nslots) * r->slot;
	if (f->o->validate) {
		/* From the registered buffer itself (device memory included). */
		ret = gpud_mem_read(r->mem, off, rf->scratch, wc->byte_len);
		if (ret)
			return flow_err(rf, ret, "gpud_mem_read: %s", gpud_errmsg());
		if (!rxb_flow_check(f, &rf->pat, f->bytes, rf->scratch, wc->byte_len))
			return 0;
	}
	rxb_hist_add(&f->hist, wc->byte_len);
	__atomic_store_n(&f->bytes, f->bytes + wc->byte_len, __ATOMIC_RELAXED);
	f->rdma.writes++;
	rf->next_seq++;
	rf->credits_due++;
	ret = post_recvs(rf, 1, seq);
	return ret ? flow_err(rf, ret, "ibv_post_recv: %s", strerror(-ret)) : 0;
}

static int give_credits(struct rx_flow *rf, bool all)
{
	struct rxb_msg m = { .type = RXB_MSG_CREDIT };
	int ret;

	/* A quarter of the ring at a time, or whatever is due when we go idle. */
	if (!rf->credits_due || (!all && rf->credits_due < rf->r->nslots / 4))
		return 0;
	m.u.credits = rf->credits_due;
	ret = rxb_wire_send(rf->f->fd, &m);
	if (ret)
		return flow_err(rf, ret, "side channel: %s", strerror(-ret));
	rf->credits_due = 0;
	rf->f->rdma.credit_msgs++;
	return 0;
}

static int poll_batch(struct rx_flow *rf)
{
	struct ibv_wc wc[RXB_POLL_BATCH];
	int n = ibv_poll_cq(gpud_rdma_qp_cq(rf->q), RXB_POLL_BATCH, wc);

	if (n < 0)
		return flow_err(rf, -EIO, "ibv_poll_cq failed");
	for (int i = 0; i < n; i++) {
		int ret = consume(rf, &wc[i]);

		if (ret || rf->f->bad)
			return ret ? ret : -EILSEQ;
	}
	if (n)
		return give_credits(rf, n < RXB_POLL_BATCH) ?: n;
	return 0;
}

/* Side-channel messages while receiving: DONE, ERROR, or nothing. */
static int check_peer(struct rx_flow *rf)
{
	struct rxb_msg m;
	int ret = rxb_wire_recv(rf->f->fd, &m, 0);

	if (ret == -EAGAIN || ret == -EINTR)
		return 0;
	if (!ret && m.type == RXB_MSG_DONE) {
		rf->done_seen = true;
		rf->done_bytes = m.u.done.bytes;
		return 0;
	}
	if (ret == -ECONNRESET)
		rf->peer_gone = true;
	return peer_msg_err(rf, ret, &m) ?: flow_err(rf, -EPROTO, "unexpected message %d",
						       (int)m.type);
}

static bool all_in(const struct rx_flow *rf)
{
	return rf->done_seen && rf->f->bytes >= rf->done_bytes;
}

static int receive(struct rx_flow *rf)
{
	struct rxb_flow_ctx *f = rf->f;
	int n;

	while (!rxb_flow_done(f) && !all_in(rf)) {
		n = poll_batch(rf);
		if (n < 0)
			return n;
		if (n)
			continue;
		n = check_peer(rf);
		if (n)
			return n;
		if (all_in(rf))
			break;
		/* Arm, then look once more: a completion between the two is not lost. */
		if (ibv_req_notify_cq(gpud_rdma_qp_cq(rf->q), 0))
			return flow_err(rf, -EIO, "ibv_req_notify_cq failed");
		n = poll_batch(rf);
		if (n < 0)
			return n;
		if (n)
			continue;
		n = gpud_rdma_qp_wait(rf->q, f->fd, 200);
		if (n < 0)
			return flow_err(rf, n, "waiting for completions: %s", strerror(-n));
		f->rdma.cq_events += (uint64_t)n;
	}
	return 0;
}

/*
 * The window is over (or the sender is done): STOP, then wait for its DONE,
 * so that no write is in flight when the queue pair goes. What lands now is
 * outside the window and not counted.
 */
static void finish(struct rx_flow *rf)
{
	struct rxb_msg m = { .type = RXB_MSG_STOP };
	double give_up = rxb_now() + RXB_RDMA_END_S;
	struct ibv_wc wc[RXB_POLL_BATCH];
	int ret;

	if (rf->done_seen || rf->peer_gone)
		return;
	if (rxb_wire_send(rf->f->fd, &m))
		return;
	while (!rxb_interrupted) {
		while (ibv_poll_cq(gpud_rdma_qp_cq(rf->q), RXB_POLL_BATCH, wc) > 0)
			;
		ret = rxb_wire_recv(rf->f->fd, &m, 0.1);
		if (ret == -EAGAIN && rxb_now() < give_up)
			continue;
		if (ret == -EAGAIN)
			flow_err(rf, -ETIMEDOUT, "the sender did not confirm the end of the run "
				 "in %.0f s", RXB_RDMA_END_S);
		/* DONE, EOF, or the sender's error: either way it stopped. */
		return;
	}
}

static void describe_flow(struct rx_flow *rf)
{
	const struct rxb_rdma_info *ri = &rf->r->info;

	snprintf(rf->f->reason, sizeof(rf->f->reason), "rdma: RDMA WRITE with immediate by the "
		 "peer into %s, registered as %s, over %s (%s)", ri->buffer, ri->registration,
		 ri->device, ri->provider);
}

void *rxb_rdma_flow(void *arg)
{
	struct rx_flow rf = { .f = arg };
	struct rxb_flow_ctx *f = rf.f;
	double u0, s0, u1, s1, t0;
	int err = 0;

	rf.r = f->rs->rdma;
	f->mode = GPUD_RX_AUTO;
	f->rdma.gid_index = -1;
	if (!rf.r) {
		err = flow_err(&rf, -ENODEV, "no RDMA device set up");
		goto gate;
	}
	describe_flow(&rf);
	rf.base = (size_t)f->idx * rf.r->slice;
	if (f->o->validate) {
		rf.scratch = malloc(rf.r->slot);
		err = rf.scratch ? rxb_pattern_init(&rf.pat, f->seed, rf.r->slot) : -ENOMEM;
		if (err)
			flow_err(&rf, err, "validation buffers: %s", strerror(-err));
	}
	if (!err)
		err = handshake(&rf);
	if (err)
		rxb_wire_error(f->fd, f->res.errmsg);
gate:
	/* Everyone starts the clock together, failed flows included. */
	rxb_gate_wait(f->go);
	if (err) {
		*f->stop = 1;
		goto out;
	}
	rxb_thread_cpu(&u0, &s0);
	t0 = rxb_now();
	err = receive(&rf);
	f->res.seconds = rxb_now() - t0;
	rxb_thread_cpu(&u1, &s1);
	f->res.user_s = u1 - u0;
	f->res.sys_s = s1 - s0;
	if (err && err != -EILSEQ)
		rxb_wire_error(f->fd, f->res.errmsg);
	else
		finish(&rf);
out:
	f->res.bytes = f->bytes;
	gpud_rdma_qp_free(rf.q);
	rxb_pattern_free(&rf.pat);
	free(rf.scratch);
	return NULL;
}
