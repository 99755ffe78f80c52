// SPDX-License-Identifier: MIT
/*
 * The RDMA baseline, sending side: the flow's pattern stream, written slot
 * by slot into the receiver's ring with RDMA WRITE WITH IMMEDIATE, as many
 * in flight as the receiver has given credits for. The source is a
 * registered host gpud_mem holding the precomputed pattern, so a write costs
 * this CPU a work request, not a copy.
 */
#include "rdma_bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define RXB_POLL_BATCH	16

struct tx_flow {
	struct rxb_send_flow *f;
	const struct rxb_opts *o;
	struct gpud_rdma_dev *dev;
	struct gpud_rdma_qp *q;
	struct rxb_region region;
	struct gpud_mem *src;		/* pattern, then one slot of bounce */
	struct gpud_rdma_mr *mr;
	struct rxb_pattern pat;
	size_t bounce_off;
	uint32_t credits;
	uint32_t outstanding;		/* posted, not yet completed */
	uint32_t seq;			/* next write */
	uint64_t posted;		/* bytes */
	bool stopping;			/* the receiver said STOP, or is gone */
	bool peer_gone;
};

static int tx_err(struct tx_flow *t, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int tx_err(struct tx_flow *t, int err, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "gpud-rxbench: rdma sender flow %u: %s\n", t->f->idx, msg);
	if (!t->peer_gone)
		rxb_wire_error(t->f->fd, msg);
	return err;
}

static int expect(struct tx_flow *t, struct rxb_msg *m, enum rxb_wire_type type)
{
	int ret = rxb_wire_recv(t->f->fd, m, RXB_RDMA_HANDSHAKE_S);

	if (ret == -EPROTO)
		return tx_err(t, ret, "the receiver does not speak the RDMA side channel: is this "
			      "run an rdma run there (--compare rdma or --only rdma)?");
	if (ret) {
		t->peer_gone = ret == -ECONNRESET;
		return tx_err(t, ret, "side channel: %s", strerror(-ret));
	}
	if (m->type == RXB_MSG_ERROR) {
		t->peer_gone = true;	/* it gave up; nothing to tell it */
		return tx_err(t, -ECONNABORTED, "receiver: %s", m->u.error);
	}
	if (m->type != type)
		return tx_err(t, -EPROTO, "message %d where %d was due", (int)m->type, (int)type);
	return 0;
}

static int handshake(struct tx_flow *t)
{
	struct rxb_msg me = { .type = RXB_MSG_HELLO }, peer;
	struct gpud_rdma_qp_opts qo = {
		.depth = RXB_RDMA_WINDOW, .gid_index = t->o->rdma_gid, .sock = t->f->fd,
		.psn = 0x2000 + t->f->idx, .channel = true,
	};
	int ret;

	ret = gpud_rdma_dev_open(t->o->rdma_dev, &t->dev);
	if (ret)
		return tx_err(t, ret, "%s", gpud_errmsg());
	ret = gpud_rdma_qp_create(t->dev, &qo, &t->q);
	if (ret)
		return tx_err(t, ret, "%s%s", gpud_errmsg(), rxb_rdma_gid_hint(ret));
	gpud_rdma_qp_local(t->q, &me.u.hello);
	ret = rxb_wire_send(t->f->fd, &me);
	if (ret)
		return tx_err(t, ret, "side channel: %s", strerror(-ret));
	ret = expect(t, &peer, RXB_MSG_HELLO);
	if (ret)
		return ret;
	ret = gpud_rdma_qp_connect(t->q, &peer.u.hello);
	if (ret)
		return tx_err(t, ret, "%s", gpud_errmsg());
	ret = expect(t, &peer, RXB_MSG_REGION);
	if (ret)
		return ret;
	t->region = peer.u.region;
	if (!t->region.slot || !t->region.nslots || t->region.nslots > RXB_RDMA_MAX_SLOTS ||
	    t->region.slot > (64u << 20))
		return tx_err(t, -EPROTO, "a ring of %u slots of %u bytes is not one we write",
			      t->region.nslots, t->region.slot);
	t->credits = t->region.nslots;
	return 0;
}

/* The pattern, registered: write k is sent straight from its offset. */
static int source(struct tx_flow *t)
{
	struct gpud_mem_opts mo = { .sz = sizeof(mo), .flags = GPUD_MEM_F_NO_DMABUF };
	uint32_t slot = t->region.slot;
	int ret;

	ret = rxb_pattern_init(&t->pat, t->o->seed + t->f->idx, slot);
	if (ret)
		return tx_err(t, ret, "pattern: %s", strerror(-ret));
	t->bounce_off = t->pat.period + slot;
	ret = gpud_mem_create(GPUD_MEM_HOST, t->bounce_off + slot, &mo, &t->src);
	if (!ret)
		ret = gpud_mem_write(t->src, 0, t->pat.buf, t->pat.period + slot);
	if (!ret)
		ret = gpud_rdma_reg(t->dev, t->src, 0, 0, GPUD_RDMA_ACCESS_LOCAL_WRITE, &t->mr);
	return ret ? tx_err(t, ret, "source buffer: %s", gpud_errmsg()) : 0;
}

/* --inject-error: the one write that covers the offset goes out of a bounce copy. */
static int source_offset(struct tx_flow *t, uint32_t len, size_t *off)
{
	const struct rxb_opts *o = t->o;
	uint64_t at = o->inject_at;
	uint8_t *b;
	int ret;

	*off = t->posted % t->pat.period;
	if (!o->inject || t->f->idx || at < t->posted || at >= t->posted + len)
		return 0;
	b = malloc(len);
	if (!b)
		return -ENOMEM;
	memcpy(b, rxb_pattern_at(&t->pat, t->posted), len);
	b[at - t->posted] ^= 0x10;
	ret = gpud_mem_write(t->src, t->bounce_off, b, len);
	free(b);
	*off = t->bounce_off;
	return ret;
}

static int post_write(struct tx_flow *t, uint32_t len)
{
	struct ibv_send_wr wr = { 0 }, *bad = NULL;
	struct ibv_sge sge;
	size_t off;
	int ret;

	ret = source_offset(t, len, &off);
	if (ret)
		return tx_err(t, ret, "--inject-error: %s", strerror(-ret));
	sge = (struct ibv_sge){ .addr = gpud_rdma_mr_addr(t->mr) + off, .length = len,
				.lkey = gpud_rdma_mr_lkey(t->mr) };
	wr.wr_id = (uint64_t)t->seq << 32 | len;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.imm_data = htonl(t->seq);
	wr.wr.rdma.remote_addr = t->region.addr + (uint64_t)(t->seq % t->region.nslots) *
						   t->region.slot;
	wr.wr.rdma.rkey = t->region.rkey;
	ret = ibv_post_send(gpud_rdma_qp_ibv(t->q), &wr, &bad);
	if (ret)
		return tx_err(t, -ret, "ibv_post_send: %s", strerror(ret));
	t->credits--;
	t->outstanding++;
	t->seq++;
	t->posted += len;
	return 0;
}

static int reap(struct tx_flow *t)
{
	struct ibv_wc wc[RXB_POLL_BATCH];
	int n = ibv_poll_cq(gpud_rdma_qp_cq(t->q), RXB_POLL_BATCH, wc);

	if (n < 0)
		return tx_err(t, -EIO, "ibv_poll_cq failed");
	for (int i = 0; i < n; i++) {
		if (wc[i].status != IBV_WC_SUCCESS)
			return tx_err(t, -EIO, "RDMA WRITE %u completed with %s (vendor error 0x%x)",
				      (uint32_t)(wc[i].wr_id >> 32),
				      gpud_rdma_wc_status_str(t->q, (int)wc[i].status), wc[i].vendor_err);
		t->outstanding--;
		t->f->sent += wc[i].wr_id & 0xffffffffu;
	}
	return n;
}

/* Credits and STOP; nothing else is expected now. */
static int read_peer(struct tx_flow *t)
{
	struct rxb_msg m;
	int ret;

	while ((ret = rxb_wire_recv(t->f->fd, &m, 0)) == 0) {
		if (m.type == RXB_MSG_CREDIT)
			t->credits += m.u.credits;
		else if (m.type == RXB_MSG_STOP)
			t->stopping = true;
		else if (m.type == RXB_MSG_ERROR)
			break;
		else
			return tx_err(t, -EPROTO, "unexpected message %d", (int)m.type);
	}
	if (!ret) {
		t->peer_gone = true;	/* it gave up; nothing to tell it */
		return tx_err(t, -ECONNABORTED, "receiver: %s", m.u.error);
	}
	if (ret == -ECONNRESET) {
		/* A timed run whose receiver is gone: stop writing, quietly. */
		t->peer_gone = t->stopping = true;
		return 0;
	}
	return ret == -EAGAIN || ret == -EINTR ? 0 : tx_err(t, ret, "side channel: %s",
							   strerror(-ret));
}

static bool posting_over(struct tx_flow *t, double deadline)
{
	if (t->stopping || t->f->s->stop || rxb_interrupted)
		return true;
	if (t->f->limit && t->posted >= t->f->limit)
		return true;
	return deadline > 0 && rxb_now() >= deadline;
}

static int write_loop(struct tx_flow *t)
{
	double deadline = t->f->s->duration > 0 ? rxb_now() + t->f->s->duration : 0;
	double drain_end = 0;
	int n;

	t->f->t_start = rxb_now();
	for (;;) {
		n = reap(t);
		if (n < 0)
			return n;
		n = read_peer(t);
		if (n)
			return n;
		if (posting_over(t, deadline)) {
			if (!t->outstanding || t->peer_gone)
				break;
			if (!drain_end)
				drain_end = rxb_now() + RXB_RDMA_END_S;
			else if (rxb_now() > drain_end)
				return tx_err(t, -ETIMEDOUT, "%u writes still not completed after "
					      "%.0f s", t->outstanding, RXB_RDMA_END_S);
		} else if (t->credits && t->outstanding < RXB_RDMA_WINDOW) {
			uint64_t left = t->f->limit ? t->f->limit - t->posted : UINT64_MAX;

			n = post_write(t, left < t->region.slot ? (uint32_t)left : t->region.slot);
			if (n)
				return n;
			continue;
		}
		/* Nothing to do until a completion or a message: sleep on both. */
		if (ibv_req_notify_cq(gpud_rdma_qp_cq(t->q), 0))
			return tx_err(t, -EIO, "ibv_req_notify_cq failed");
		n = reap(t);
		if (n < 0)
			return n;
		if (!n && gpud_rdma_qp_wait(t->q, t->f->fd, 200) < 0)
			return tx_err(t, -EIO, "waiting for completions failed");
	}
	t->f->t_end = rxb_now();
	return 0;
}

int rxb_rdma_send_flow(struct rxb_send_flow *f)
{
	struct tx_flow t = { .f = f, .o = f->s->o };
	struct rxb_msg done = { .type = RXB_MSG_DONE };
	int ret;

	ret = handshake(&t);
	if (!ret)
		ret = source(&t);
	if (!ret)
		ret = write_loop(&t);
	if (!ret && !t.peer_gone) {
		done.u.done.bytes = f->sent;
		done.u.done.writes = t.seq;
		ret = rxb_wire_send(f->fd, &done);
		if (ret == -EPIPE || ret == -ECONNRESET)
			ret = 0;	/* it had all it wanted */
	}
	gpud_rdma_qp_free(t.q);
	gpud_rdma_mr_free(t.mr);
	gpud_mem_free(t.src);
	rxb_pattern_free(&t.pat);
	gpud_rdma_dev_free(t.dev);
	return ret;
}
