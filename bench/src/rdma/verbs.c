// SPDX-License-Identifier: MIT
/*
 * Queue pairs for the RDMA baseline. libgpudirect registers memory; queue
 * pairs, completion queues and work requests are the caller's business (see
 * gpudirect.h), so they are here.
 *
 * The exported verbs come from the libibverbs copy libgpudirect loaded
 * (GPUD_LIBIBVERBS or libibverbs.so.1, found again with RTLD_NOLOAD): its
 * contexts and PDs are what gpud_rdma_dev_context()/_pd() hand us, and a
 * second copy would not know them. Posting and polling are static inlines
 * in <infiniband/verbs.h> that call through the context's ops, so they need
 * the header only. Nothing here links against libibverbs.
 */
#include "rdma_bench.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RXB_GID_WAIT_S	5.0	/* rxe fills its GID table after the address appears */
#define RXB_GID_SCAN	256

static const struct {
	const char *name;
	size_t off;
	bool optional;
} verbs_syms[] = {
#define SYM(n, f, opt) { n, offsetof(struct rxb_verbs, f), opt }
	SYM("ibv_create_comp_channel", create_comp_channel, false),
	SYM("ibv_destroy_comp_channel", destroy_comp_channel, false),
	SYM("ibv_create_cq", create_cq, false),
	SYM("ibv_destroy_cq", destroy_cq, false),
	SYM("ibv_create_qp", create_qp, false),
	SYM("ibv_destroy_qp", destroy_qp, false),
	SYM("ibv_modify_qp", modify_qp, false),
	SYM("ibv_query_port", query_port, false),
	SYM("ibv_query_gid", query_gid, false),
	SYM("ibv_get_cq_event", get_cq_event, false),
	SYM("ibv_ack_cq_events", ack_cq_events, false),
	SYM("ibv_wc_status_str", wc_status_str, false),
	SYM("_ibv_query_gid_ex", query_gid_ex, true),
#undef SYM
};

/* Written once, under pthread_once; read-only afterwards. */
static struct {
	pthread_once_t once;
	int err;
	char why[256];
	struct rxb_verbs v;
} verbs = { .once = PTHREAD_ONCE_INIT };

static void verbs_resolve(void)
{
	const char *path = getenv("GPUD_LIBIBVERBS");
	void *lib;

	if (!path || !*path)
		path = "libibverbs.so.1";
	lib = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	if (!lib) {
		verbs.err = -ENOENT;
		snprintf(verbs.why, sizeof(verbs.why),
			 "%s is not loaded in this process (libgpudirect loads it when it opens "
			 "an RDMA device)", path);
		return;
	}
	for (size_t i = 0; i < sizeof(verbs_syms) / sizeof(verbs_syms[0]); i++) {
		void *p = dlsym(lib, verbs_syms[i].name);

		if (!p && !verbs_syms[i].optional) {
			verbs.err = -ENOSYS;
			snprintf(verbs.why, sizeof(verbs.why), "%s lacks %s (rdma-core too old?)",
				 path, verbs_syms[i].name);
			return;
		}
		memcpy((char *)&verbs.v + verbs_syms[i].off, &p, sizeof(p));
	}
}

int rxb_verbs_get(const struct rxb_verbs **out, char *why, size_t len)
{
	pthread_once(&verbs.once, verbs_resolve);
	if (verbs.err) {
		snprintf(why, len, "%s", verbs.why);
		return verbs.err;
	}
	*out = &verbs.v;
	return 0;
}

/* What the header's ibv_query_port() does, with our table's compat call. */
static int port_query(const struct rxb_verbs *v, struct ibv_context *ctx,
		      struct ibv_port_attr *pa)
{
	struct verbs_context *vctx = verbs_get_ctx_op(ctx, query_port);
	int ret;

	memset(pa, 0, sizeof(*pa));
	if (vctx)
		ret = vctx->query_port(ctx, 1, pa, sizeof(*pa));
	else
		ret = v->query_port(ctx, 1, (struct _compat_ibv_port_attr *)pa);
	return ret > 0 ? -ret : ret;
}

unsigned int rxb_mtu_bytes(enum ibv_mtu m)
{
	return m >= IBV_MTU_256 && m <= IBV_MTU_4096 ? 128u << m : 0;
}

/* ::ffff:a.b.c.d, the form RoCE gives an IPv4 address's GID. */
static bool gid_ipv4(const union ibv_gid *g, struct in_addr *a)
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

	if (memcmp(g->raw, prefix, sizeof(prefix)))
		return false;
	memcpy(a, &g->raw[12], 4);
	return true;
}

static bool gid_is_v2(const struct rxb_verbs *v, struct ibv_context *ctx, int idx)
{
	struct ibv_gid_entry e;

	if (!v->query_gid_ex ||
	    v->query_gid_ex(ctx, 1, (uint32_t)idx, &e, 0, sizeof(e)))
		return false;
	return e.gid_type == IBV_GID_TYPE_ROCE_V2;
}

/*
 * The best IPv4 GID on port 1: the one of @local (the side channel's own
 * address, so the RDMA traffic takes the same interface) over any other,
 * RoCE v2 over v1 (routable; rxe has only v2). -1 when there is none.
 */
static int best_ipv4_gid(const struct rxb_verbs *v, struct ibv_context *ctx, int tbl_len,
			 const struct in_addr *local, union ibv_gid *out)
{
	int best = -1, best_score = 0;

	for (int i = 0; i < tbl_len && i < RXB_GID_SCAN; i++) {
		union ibv_gid g;
		struct in_addr a;
		int score;

		if (v->query_gid(ctx, 1, i, &g) || !gid_ipv4(&g, &a))
			continue;
		score = 1 + (gid_is_v2(v, ctx, i) ? 2 : 0) +
			(local && a.s_addr == local->s_addr ? 4 : 0);
		if (score > best_score) {
			best = i;
			best_score = score;
			*out = g;
		}
	}
	return best;
}

static bool sock_ipv4(int sk, struct in_addr *a)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (sk < 0 || getsockname(sk, (struct sockaddr *)&sa, &len) || sa.sin_family != AF_INET)
		return false;
	*a = sa.sin_addr;
	return true;
}

/* Which GID this side sends from, and whether packets carry a GRH. */
static int pick_gid(struct rxb_qp *q, int sk, int want, const char *dev, char *why, size_t len)
{
	double give_up = rxb_now() + RXB_GID_WAIT_S;
	struct in_addr local;
	bool have_local = sock_ipv4(sk, &local);

	if (want >= 0) {
		if (q->v->query_gid(q->ctx, 1, want, &q->gid)) {
			snprintf(why, len, "%s: --rdma-gid %d: no such GID on port 1", dev, want);
			return -EINVAL;
		}
		q->gid_idx = want;
		q->grh = true;
		return 0;
	}
	if (q->port.link_layer == IBV_LINK_LAYER_INFINIBAND) {
		/* One subnet: LIDs route; GID 0 is still exchanged, unused. */
		q->gid_idx = 0;
		q->grh = false;
		return q->v->query_gid(q->ctx, 1, 0, &q->gid) ? -EIO : 0;
	}
	for (;;) {
		q->gid_idx = best_ipv4_gid(q->v, q->ctx, q->port.gid_tbl_len,
					   have_local ? &local : NULL, &q->gid);
		if (q->gid_idx >= 0)
			break;
		if (rxb_now() > give_up || rxb_interrupted) {
			snprintf(why, len, "%s has no RoCE GID with an IPv4 address on port 1: give "
				 "its netdev an IPv4 address (or pass --rdma-gid N)", dev);
			return -EADDRNOTAVAIL;
		}
		usleep(50000);
	}
	q->grh = true;
	return 0;
}

int rxb_port_check(const struct rxb_verbs *v, struct gpud_rdma_dev *dev, char *why, size_t len)
{
	struct rxb_qp q = { .v = v, .ctx = gpud_rdma_dev_context(dev) };
	const char *name = gpud_rdma_dev_name(dev);
	int ret;

	ret = port_query(v, q.ctx, &q.port);
	if (ret) {
		snprintf(why, len, "%s: ibv_query_port: %s", name, strerror(-ret));
		return ret;
	}
	if (q.port.state != IBV_PORT_ACTIVE) {
		snprintf(why, len, "%s port 1 is not active (state %d): bring its link up "
			 "(ip link set IF up; rdma link show)", name, (int)q.port.state);
		return -ENETDOWN;
	}
	return pick_gid(&q, -1, -1, name, why, len);
}

static int qp_to_init(struct rxb_qp *q, struct ibv_pd *pd, char *why, size_t len)
{
	struct ibv_qp_init_attr qia = { 0 };
	struct ibv_qp_attr a = { 0 };
	int ret;

	qia.send_cq = q->cq;
	qia.recv_cq = q->cq;
	qia.qp_type = IBV_QPT_RC;
	qia.cap.max_send_wr = q->depth;
	qia.cap.max_recv_wr = q->depth;
	qia.cap.max_send_sge = 1;
	qia.cap.max_recv_sge = 1;
	errno = 0;
	q->qp = q->v->create_qp(pd, &qia);
	if (!q->qp) {
		snprintf(why, len, "ibv_create_qp (depth %u): %s", q->depth,
			 strerror(errno ? errno : ENOMEM));
		return errno ? -errno : -ENOMEM;
	}
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_LOCAL_WRITE;
	ret = q->v->modify_qp(q->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			      IBV_QP_ACCESS_FLAGS);
	if (ret) {
		snprintf(why, len, "ibv_modify_qp to INIT: %s", strerror(ret));
		return -ret;
	}
	return 0;
}

int rxb_qp_create(struct rxb_qp *q, struct gpud_rdma_dev *dev, unsigned int depth, int sk,
		  int gid_want, char *why, size_t len)
{
	const struct rxb_verbs *v;
	int ret;

	memset(q, 0, sizeof(*q));
	ret = rxb_verbs_get(&v, why, len);
	if (ret)
		return ret;
	q->v = v;
	q->ctx = gpud_rdma_dev_context(dev);
	q->depth = depth;
	ret = port_query(v, q->ctx, &q->port);
	if (ret) {
		snprintf(why, len, "ibv_query_port: %s", strerror(-ret));
		return ret;
	}
	errno = 0;
	q->ch = v->create_comp_channel(q->ctx);
	if (!q->ch) {
		snprintf(why, len, "ibv_create_comp_channel: %s", strerror(errno ? errno : ENOMEM));
		return errno ? -errno : -ENOMEM;
	}
	/* Waits go through poll(); a read that finds nothing must not block. */
	fcntl(q->ch->fd, F_SETFL, fcntl(q->ch->fd, F_GETFL) | O_NONBLOCK);
	errno = 0;
	q->cq = v->create_cq(q->ctx, (int)(2 * depth + 1), NULL, q->ch, 0);
	if (!q->cq) {
		snprintf(why, len, "ibv_create_cq (%u entries): %s", 2 * depth + 1,
			 strerror(errno ? errno : ENOMEM));
		return errno ? -errno : -ENOMEM;
	}
	ret = qp_to_init(q, gpud_rdma_dev_pd(dev), why, len);
	if (ret)
		return ret;
	return pick_gid(q, sk, gid_want, gpud_rdma_dev_name(dev), why, len);
}

int rxb_qp_connect(struct rxb_qp *q, const struct rxb_hello *peer, uint32_t my_psn, char *why,
		   size_t len)
{
	struct ibv_qp_attr a = { 0 };
	int ret;

	a.qp_state = IBV_QPS_RTR;
	/* Both ends' active MTU bound the path's. */
	a.path_mtu = peer->mtu < q->port.active_mtu ? (enum ibv_mtu)peer->mtu :
						      q->port.active_mtu;
	a.dest_qp_num = peer->qpn;
	a.rq_psn = peer->psn;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.port_num = 1;
	a.ah_attr.dlid = (uint16_t)peer->lid;
	if (q->grh || peer->grh) {
		a.ah_attr.is_global = 1;
		memcpy(a.ah_attr.grh.dgid.raw, peer->gid, 16);
		a.ah_attr.grh.sgid_index = (uint8_t)q->gid_idx;
		/* RoCEv2 may cross routers between hosts */
		a.ah_attr.grh.hop_limit = 64;
	}
	ret = q->v->modify_qp(q->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			      IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
			      IBV_QP_MIN_RNR_TIMER);
	if (ret) {
		snprintf(why, len, "ibv_modify_qp to RTR (peer QP %u): %s", peer->qpn,
			 strerror(ret));
		return -ret;
	}
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	/*
	 * 4.096 us * 2^17 = 0.54 s per try: soft-RoCE in an emulated VM can
	 * take longer than the usual 67 ms (14) to ack a window, and an early
	 * retry resends all of it. A dead peer still fails in ~4 s.
	 */
	a.timeout = 17;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = my_psn;
	a.max_rd_atomic = 1;
	ret = q->v->modify_qp(q->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			      IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
	if (ret) {
		snprintf(why, len, "ibv_modify_qp to RTS: %s", strerror(ret));
		return -ret;
	}
	return 0;
}

int rxb_qp_wait(struct rxb_qp *q, int sk, int ms)
{
	struct pollfd pfd[2] = {
		{ .fd = q->ch->fd, .events = POLLIN },
		{ .fd = sk, .events = POLLIN },
	};
	struct ibv_cq *cq;
	void *cq_ctx;
	int r;

	r = poll(pfd, 2, ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (!(pfd[0].revents & POLLIN))
		return 0;
	if (q->v->get_cq_event(q->ch, &cq, &cq_ctx))
		return errno == EAGAIN ? 0 : -errno;
	q->v->ack_cq_events(cq, 1);
	return 1;
}

void rxb_qp_destroy(struct rxb_qp *q)
{
	/* QP before CQ before channel: each is in use by the one before. */
	if (q->qp)
		q->v->destroy_qp(q->qp);
	if (q->cq)
		q->v->destroy_cq(q->cq);
	if (q->ch)
		q->v->destroy_comp_channel(q->ch);
	q->qp = NULL;
	q->cq = NULL;
	q->ch = NULL;
}
