// SPDX-License-Identifier: MIT
/*
 * Reliable-connected queue pairs: creation, GID choice and the INIT -> RTR
 * -> RTS bring-up that the RDMA baseline of gpud-rxbench and the soft-RoCE
 * tests share.
 *
 * Built with <infiniband/verbs.h> (libibverbs-dev) for the attribute
 * structures; the calls themselves go through the libibverbs the library
 * dlopen()ed (rdma.c), so nothing links against it. Without the header the
 * build uses qp_none.c instead.
 */
#include "rdma_internal.h"

#include <infiniband/verbs.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QP_DEPTH_DEFAULT	16
#define QP_TIMEOUT_DEFAULT	17	/* 4.096 us * 2^17 = 0.54 s per try */
#define QP_GID_WAIT_S		5.0	/* rxe fills its GID table after the address appears */
#define QP_GID_SCAN		256

struct gpud_rdma_qp {
	struct gpud_rdma_dev *dev;	/* referenced */
	const struct gpud_verbs_api *v;
	struct ibv_context *ctx;
	struct ibv_comp_channel *ch;	/* NULL without opts.channel */
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_port_attr port;	/* port 1 */
	union ibv_gid gid;
	int gid_idx;
	bool grh;			/* RoCE, or IB with a chosen GID */
	uint32_t psn;
	unsigned int timeout;
	unsigned int path_mtu;		/* bytes, once connected */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Every QP entry point, or -ENOSYS naming the first one missing. */
static int qp_api_check(const struct gpud_verbs_api *v, const char *dev)
{
	static const struct {
		const char *name;
		size_t off;
	} need[] = {
#define NEED(n, f) { n, offsetof(struct gpud_verbs_api, f) }
		NEED("ibv_create_comp_channel", create_comp_channel),
		NEED("ibv_destroy_comp_channel", destroy_comp_channel),
		NEED("ibv_create_cq", create_cq),
		NEED("ibv_destroy_cq", destroy_cq),
		NEED("ibv_create_qp", create_qp),
		NEED("ibv_destroy_qp", destroy_qp),
		NEED("ibv_modify_qp", modify_qp),
		NEED("ibv_query_port", query_port),
		NEED("ibv_query_gid", query_gid),
		NEED("ibv_get_cq_event", get_cq_event),
		NEED("ibv_ack_cq_events", ack_cq_events),
		NEED("ibv_wc_status_str", wc_status_str),
#undef NEED
	};

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		void *p;

		memcpy(&p, (const char *)v + need[i].off, sizeof(p));
		if (!p)
			return gpud_err(-ENOSYS, "rdma: %s: the loaded libibverbs lacks %s, which queue pairs need (rdma-core too old, or a stand-in library)",
					dev, need[i].name);
	}
	return 0;
}

/* What verbs.h's ibv_query_port() does, with our table's compat entry. */
static int port_query(const struct gpud_verbs_api *v, struct ibv_context *ctx,
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

/* ::ffff:a.b.c.d, the form RoCE gives an IPv4 address's GID. */
static bool gid_ipv4(const union ibv_gid *g, struct in_addr *a)
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

	if (memcmp(g->raw, prefix, sizeof(prefix)))
		return false;
	memcpy(a, &g->raw[12], 4);
	return true;
}

static bool gid_is_v2(const struct gpud_verbs_api *v, struct ibv_context *ctx, int idx)
{
	struct ibv_gid_entry e;

	if (!v->query_gid_ex || v->query_gid_ex(ctx, 1, (uint32_t)idx, &e, 0, sizeof(e)))
		return false;
	return e.gid_type == IBV_GID_TYPE_ROCE_V2;
}

/*
 * The best IPv4 GID on port 1: the one of @local (the side channel's own
 * address, so RDMA traffic takes the same interface) over any other, RoCE
 * v2 over v1 (routable; rxe has only v2). -1 when there is none.
 */
static int best_ipv4_gid(struct gpud_rdma_qp *q, const struct in_addr *local)
{
	int best = -1, best_score = 0;

	for (int i = 0; i < q->port.gid_tbl_len && i < QP_GID_SCAN; i++) {
		union ibv_gid g;
		struct in_addr a;
		int score;

		if (q->v->query_gid(q->ctx, 1, i, &g) || !gid_ipv4(&g, &a))
			continue;
		score = 1 + (gid_is_v2(q->v, q->ctx, i) ? 2 : 0) +
			(local && a.s_addr == local->s_addr ? 4 : 0);
		if (score > best_score) {
			best = i;
			best_score = score;
			q->gid = g;
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

/* Which GID this side sends from, and whether its packets carry a GRH. */
static int pick_gid(struct gpud_rdma_qp *q, int sk, int want, const char *dev)
{
	double give_up = now_s() + QP_GID_WAIT_S;
	struct in_addr local;
	bool have_local = sock_ipv4(sk, &local);

	if (want >= 0) {
		if (want >= q->port.gid_tbl_len || q->v->query_gid(q->ctx, 1, want, &q->gid))
			return gpud_err(-EINVAL, "rdma: %s: GID index %d does not exist on port 1 (its table has %d entries; rdma link show / ibv_devinfo -v)",
					dev, want, q->port.gid_tbl_len);
		q->gid_idx = want;
		q->grh = true;
		return 0;
	}
	if (q->port.link_layer == IBV_LINK_LAYER_INFINIBAND) {
		/* One subnet: LIDs route; GID 0 is still exchanged, unused. */
		q->gid_idx = 0;
		q->grh = false;
		if (q->v->query_gid(q->ctx, 1, 0, &q->gid))
			return gpud_err(-EIO, "rdma: %s: ibv_query_gid(port 1, 0) failed", dev);
		return 0;
	}
	for (;;) {
		q->gid_idx = best_ipv4_gid(q, have_local ? &local : NULL);
		if (q->gid_idx >= 0)
			break;
		if (now_s() > give_up)
			return gpud_err(-EADDRNOTAVAIL, "rdma: %s has no RoCE GID with an IPv4 address on port 1 after %.0f s: give its netdev an IPv4 address (or choose a GID index)",
					dev, QP_GID_WAIT_S);
		usleep(50000);
	}
	q->grh = true;
	return 0;
}

static int port_active(struct gpud_rdma_qp *q, const char *dev)
{
	int ret = port_query(q->v, q->ctx, &q->port);

	if (ret)
		return gpud_err(ret, "rdma: %s: ibv_query_port: %s", dev, strerror(-ret));
	if (q->port.state != IBV_PORT_ACTIVE)
		return gpud_err(-ENETDOWN, "rdma: %s port 1 is not active (state %d): bring its link up (ip link set IF up; rdma link show)",
				dev, (int)q->port.state);
	return 0;
}

int gpud_rdma_port_check(struct gpud_rdma_dev *dev)
{
	struct gpud_rdma_qp q = { 0 };
	const char *name;
	int ret;

	if (!dev)
		return gpud_err(-EINVAL, "gpud_rdma_port_check: dev is NULL");
	name = gpud_rdma_dev_name(dev);
	q.v = gpud_rdma_dev_api(dev);
	q.ctx = gpud_rdma_dev_context(dev);
	ret = qp_api_check(q.v, name);
	if (!ret)
		ret = port_active(&q, name);
	if (!ret)
		ret = pick_gid(&q, -1, -1, name);
	return ret;
}

static int qp_to_init(struct gpud_rdma_qp *q, unsigned int depth, const char *dev)
{
	struct ibv_qp_init_attr qia = { 0 };
	struct ibv_qp_attr a = { 0 };
	int ret;

	qia.send_cq = q->cq;
	qia.recv_cq = q->cq;
	qia.qp_type = IBV_QPT_RC;
	qia.cap.max_send_wr = depth;
	qia.cap.max_recv_wr = depth;
	qia.cap.max_send_sge = 1;
	qia.cap.max_recv_sge = 1;
	errno = 0;
	q->qp = q->v->create_qp(gpud_rdma_dev_pd(q->dev), &qia);
	if (!q->qp) {
		ret = errno ? errno : ENOMEM;
		return gpud_err(-ret, "rdma: %s: ibv_create_qp (depth %u): %s", dev, depth,
				strerror(ret));
	}
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_LOCAL_WRITE;
	ret = q->v->modify_qp(q->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			      IBV_QP_ACCESS_FLAGS);
	if (ret)
		return gpud_err(-ret, "rdma: %s: ibv_modify_qp to INIT: %s", dev, strerror(ret));
	return 0;
}

static int cq_create(struct gpud_rdma_qp *q, unsigned int depth, bool channel, const char *dev)
{
	int ret;

	if (channel) {
		errno = 0;
		q->ch = q->v->create_comp_channel(q->ctx);
		if (!q->ch) {
			ret = errno ? errno : ENOMEM;
			return gpud_err(-ret, "rdma: %s: ibv_create_comp_channel: %s", dev,
					strerror(ret));
		}
		/* Waits go through poll(); a read that finds nothing must not block. */
		if (fcntl(q->ch->fd, F_SETFL, fcntl(q->ch->fd, F_GETFL) | O_NONBLOCK))
			return gpud_err(-errno, "rdma: %s: completion channel O_NONBLOCK: %s", dev,
					strerror(errno));
	}
	errno = 0;
	q->cq = q->v->create_cq(q->ctx, (int)(2 * depth + 1), NULL, q->ch, 0);
	if (!q->cq) {
		ret = errno ? errno : ENOMEM;
		return gpud_err(-ret, "rdma: %s: ibv_create_cq (%u entries): %s", dev,
				2 * depth + 1, strerror(ret));
	}
	return 0;
}

int gpud_rdma_qp_create(struct gpud_rdma_dev *dev, const struct gpud_rdma_qp_opts *o,
			struct gpud_rdma_qp **out)
{
	struct gpud_rdma_qp *q;
	unsigned int depth;
	const char *name;
	int ret;

	if (!dev || !o || !out)
		return gpud_err(-EINVAL, "gpud_rdma_qp_create: NULL argument");
	if (o->timeout > 31)
		return gpud_err(-EINVAL, "gpud_rdma_qp_create: timeout exponent %u is over 31",
				o->timeout);
	name = gpud_rdma_dev_name(dev);
	ret = qp_api_check(gpud_rdma_dev_api(dev), name);
	if (ret)
		return ret;
	q = calloc(1, sizeof(*q));
	if (!q)
		return gpud_err(-ENOMEM, "rdma: out of memory");
	gpud_rdma_dev_ref(dev);
	q->dev = dev;
	q->v = gpud_rdma_dev_api(dev);
	q->ctx = gpud_rdma_dev_context(dev);
	q->psn = o->psn & 0xffffff;
	q->timeout = o->timeout ? o->timeout : QP_TIMEOUT_DEFAULT;
	depth = o->depth ? o->depth : QP_DEPTH_DEFAULT;
	ret = port_active(q, name);
	if (ret)
		goto err_free;
	ret = cq_create(q, depth, o->channel, name);
	if (ret)
		goto err_free;
	ret = qp_to_init(q, depth, name);
	if (ret)
		goto err_free;
	ret = pick_gid(q, o->sock, o->gid_index, name);
	if (ret)
		goto err_free;
	*out = q;
	return 0;

err_free:
	gpud_rdma_qp_free(q);
	return ret;
}

void gpud_rdma_qp_local(const struct gpud_rdma_qp *q, struct gpud_rdma_ep *out)
{
	memset(out, 0, sizeof(*out));
	out->qpn = q->qp->qp_num;
	out->psn = q->psn;
	out->lid = q->port.lid;
	out->mtu = (uint32_t)q->port.active_mtu;
	out->grh = q->grh;
	memcpy(out->gid, q->gid.raw, sizeof(out->gid));
}

static unsigned int mtu_bytes(enum ibv_mtu m)
{
	return m >= IBV_MTU_256 && m <= IBV_MTU_4096 ? 128u << m : 0;
}

int gpud_rdma_qp_connect(struct gpud_rdma_qp *q, const struct gpud_rdma_ep *peer)
{
	const char *name = gpud_rdma_dev_name(q->dev);
	struct ibv_qp_attr a = { 0 };
	enum ibv_mtu mtu;
	int ret;

	if (!mtu_bytes((enum ibv_mtu)peer->mtu))
		return gpud_err(-EINVAL, "rdma: %s: the peer's MTU code %u is not an IB MTU (1..5)",
				name, peer->mtu);
	/* Both ends' active MTUs bound the path's. */
	mtu = peer->mtu < (uint32_t)q->port.active_mtu ? (enum ibv_mtu)peer->mtu :
							 q->port.active_mtu;
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = mtu;
	a.dest_qp_num = peer->qpn;
	a.rq_psn = peer->psn & 0xffffff;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.port_num = 1;
	a.ah_attr.dlid = (uint16_t)peer->lid;
	if (q->grh || peer->grh) {
		a.ah_attr.is_global = 1;
		memcpy(a.ah_attr.grh.dgid.raw, peer->gid, 16);
		a.ah_attr.grh.sgid_index = (uint8_t)q->gid_idx;
		/* RoCE v2 may cross routers between hosts */
		a.ah_attr.grh.hop_limit = 64;
	}
	ret = q->v->modify_qp(q->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			      IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
			      IBV_QP_MIN_RNR_TIMER);
	if (ret)
		return gpud_err(-ret, "rdma: %s: ibv_modify_qp to RTR (peer QP %u): %s", name,
				peer->qpn, strerror(ret));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = (uint8_t)q->timeout;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = q->psn;
	a.max_rd_atomic = 1;
	ret = q->v->modify_qp(q->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			      IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
	if (ret)
		return gpud_err(-ret, "rdma: %s: ibv_modify_qp to RTS: %s", name, strerror(ret));
	q->path_mtu = mtu_bytes(mtu);
	return 0;
}

void *gpud_rdma_qp_ibv(const struct gpud_rdma_qp *q)
{
	return q->qp;
}

void *gpud_rdma_qp_cq(const struct gpud_rdma_qp *q)
{
	return q->cq;
}

int gpud_rdma_qp_gid_index(const struct gpud_rdma_qp *q)
{
	return q->gid_idx;
}

unsigned int gpud_rdma_qp_path_mtu(const struct gpud_rdma_qp *q)
{
	return q->path_mtu;
}

int gpud_rdma_qp_wait(struct gpud_rdma_qp *q, int fd, int ms)
{
	struct pollfd pfd[2] = {
		{ .fd = -1, .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};
	struct ibv_cq *cq;
	void *cq_ctx;
	int r;

	if (!q->ch)
		return gpud_err(-EINVAL, "gpud_rdma_qp_wait: this QP was created without a completion channel");
	pfd[0].fd = q->ch->fd;
	r = poll(pfd, 2, ms);
	if (r < 0)
		return errno == EINTR ? 0 : gpud_err(-errno, "rdma: poll: %s", strerror(errno));
	if (!(pfd[0].revents & POLLIN))
		return 0;
	if (q->v->get_cq_event(q->ch, &cq, &cq_ctx))
		return errno == EAGAIN ? 0 : gpud_err(-errno, "rdma: ibv_get_cq_event: %s",
						      strerror(errno));
	q->v->ack_cq_events(cq, 1);
	return 1;
}

const char *gpud_rdma_wc_status_str(const struct gpud_rdma_qp *q, int status)
{
	return q->v->wc_status_str(status);
}

void gpud_rdma_qp_free(struct gpud_rdma_qp *q)
{
	int ret;

	if (!q)
		return;
	/* QP before CQ before channel: each is in use by the one before. */
	if (q->qp) {
		ret = q->v->destroy_qp(q->qp);
		if (ret)
			gpud_log(GPUD_LOG_WARN, "rdma: ibv_destroy_qp: %s", strerror(ret));
	}
	if (q->cq) {
		ret = q->v->destroy_cq(q->cq);
		if (ret)
			gpud_log(GPUD_LOG_WARN, "rdma: ibv_destroy_cq: %s", strerror(ret));
	}
	if (q->ch)
		q->v->destroy_comp_channel(q->ch);
	gpud_rdma_dev_unref(q->dev);
	free(q);
}
