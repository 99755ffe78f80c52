/* SPDX-License-Identifier: MIT */
/*
 * Test-side verbs for the soft-RoCE tests: the library's RC queue pair
 * (gpud_rdma_qp, which gpud-rxbench's RDMA baseline uses too), a GID lookup
 * to check its choice against, and one signalled RDMA write, which is the
 * caller's business (posting and polling stay out of the library's API).
 *
 * Linked against libibverbs (libibverbs-dev), not dlopen()ed: ibv_post_send()
 * and ibv_poll_cq() are static inlines in <infiniband/verbs.h> that call
 * through ctx->ops, so they need the real header anyway, and the library's
 * dlopen("libibverbs.so.1") then finds this same copy in the process.
 */
#ifndef GPUD_RDMA_VERBS_UTIL_H
#define GPUD_RDMA_VERBS_UTIL_H

#include "gpud_test.h"

#include <gpudirect/gpudirect.h>

#include <infiniband/verbs.h>

#include <arpa/inet.h>
#include <errno.h>
#include <unistd.h>

/* A queue pair brought up by the library, with the verbs objects to post on. */
struct t_rc {
	struct gpud_rdma_qp *q;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
};

/*
 * Index of @ctx's RoCEv2 GID for IPv4 address @ip (the IPv4-mapped
 * ::ffff:a.b.c.d), or -1. The GID table fills asynchronously after the
 * address or the rxe link appears, hence the wait.
 */
static inline int t_rdma_gid_index(struct ibv_context *ctx, const char *ip, union ibv_gid *gid,
				   double wait_s)
{
	double t0 = t_now();
	struct in_addr a;

	if (inet_pton(AF_INET, ip, &a) != 1)
		T_FAIL("bad IPv4 address %s", ip);
	do {
		for (int i = 0; i < 16; i++) {
			if (ibv_query_gid(ctx, 1, i, gid))
				continue;
			if (!gid->global.subnet_prefix && gid->raw[10] == 0xff &&
			    gid->raw[11] == 0xff && !memcmp(&gid->raw[12], &a, 4))
				return i;
		}
		usleep(50000);
	} while (t_now() - t0 < wait_s);
	return -1;
}

/*
 * The library's RC QP in INIT on @dev, sending from GID @gid_index (-1: the
 * library's choice, matched to @sock's local address when @sock >= 0),
 * first PSN @psn. A lost path fails in ~0.5 s (4.096 us * 2^14 per try,
 * 7 tries) instead of the library's TCG-safe default.
 */
static inline void t_rc_create(struct t_rc *rc, struct gpud_rdma_dev *dev, int gid_index,
			       int sock, uint32_t psn)
{
	struct gpud_rdma_qp_opts o = {
		.depth = 4, .gid_index = gid_index, .sock = sock, .psn = psn, .timeout = 14,
	};

	T_ASSERT_OK(gpud_rdma_qp_create(dev, &o, &rc->q));
	rc->cq = gpud_rdma_qp_cq(rc->q);
	rc->qp = gpud_rdma_qp_ibv(rc->q);
}

/* INIT -> RTR -> RTS towards @peer (what its gpud_rdma_qp_local() said). */
static inline void t_rc_connect(struct t_rc *rc, const struct gpud_rdma_ep *peer)
{
	T_ASSERT_OK(gpud_rdma_qp_connect(rc->q, peer));
	T_ASSERT(gpud_rdma_qp_path_mtu(rc->q) >= 256);
}

/*
 * One signalled RDMA WRITE of @len bytes from (@laddr, @lkey) to
 * (@raddr, @rkey); waits up to 30 s for its completion and fails on any
 * status but success.
 */
static inline void t_rc_write(struct t_rc *rc, uint64_t laddr, uint32_t lkey, uint64_t raddr,
			      uint32_t rkey, uint32_t len, uint64_t wr_id)
{
	struct ibv_sge sge = { .addr = laddr, .length = len, .lkey = lkey };
	struct ibv_send_wr wr = { 0 }, *bad = NULL;
	double t0 = t_now();
	struct ibv_wc wc;
	int n;

	wr.wr_id = wr_id;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	T_ASSERT_OK(-ibv_post_send(rc->qp, &wr, &bad));
	while ((n = ibv_poll_cq(rc->cq, 1, &wc)) == 0) {
		if (t_now() - t0 > 30)
			T_FAIL("no completion for an RDMA write of %u bytes in 30 s", len);
		usleep(1000);
	}
	T_ASSERT_EQ(1, n);
	T_ASSERT_EQ(wr_id, wc.wr_id);
	if (wc.status != IBV_WC_SUCCESS)
		T_FAIL("RDMA write of %u bytes completed with %s (vendor error 0x%x)", len,
		       ibv_wc_status_str(wc.status), wc.vendor_err);
}

static inline void t_rc_destroy(struct t_rc *rc)
{
	gpud_rdma_qp_free(rc->q);
	memset(rc, 0, sizeof(*rc));
}

#endif /* GPUD_RDMA_VERBS_UTIL_H */
