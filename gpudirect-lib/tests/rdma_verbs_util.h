/* SPDX-License-Identifier: MIT */
/*
 * Test-side verbs for the soft-RoCE tests: an RC queue pair, its connection
 * and one signalled RDMA write. The library only registers memory; queue
 * pairs are the caller's business, so these stay out of its API.
 *
 * Linked against libibverbs (libibverbs-dev), not dlopen()ed: ibv_post_send()
 * and ibv_poll_cq() are static inlines in <infiniband/verbs.h> that call
 * through ctx->ops, so they need the real header anyway, and the library's
 * dlopen("libibverbs.so.1") then finds this same copy in the process.
 */
#ifndef GPUD_RDMA_VERBS_UTIL_H
#define GPUD_RDMA_VERBS_UTIL_H

#include "gpud_test.h"

#include <infiniband/verbs.h>

#include <arpa/inet.h>
#include <errno.h>
#include <unistd.h>

struct t_rc {
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

/* A CQ and an RC QP in INIT that accepts remote writes. */
static inline void t_rc_create(struct t_rc *rc, struct ibv_context *ctx, struct ibv_pd *pd)
{
	struct ibv_qp_init_attr qia = { 0 };
	struct ibv_qp_attr a = { 0 };

	rc->cq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	if (!rc->cq)
		T_FAIL("ibv_create_cq: %s", strerror(errno));
	qia.send_cq = rc->cq;
	qia.recv_cq = rc->cq;
	qia.qp_type = IBV_QPT_RC;
	qia.cap.max_send_wr = 4;
	qia.cap.max_recv_wr = 4;
	qia.cap.max_send_sge = 1;
	qia.cap.max_recv_sge = 1;
	rc->qp = ibv_create_qp(pd, &qia);
	if (!rc->qp)
		T_FAIL("ibv_create_qp: %s", strerror(errno));
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_LOCAL_WRITE;
	T_ASSERT_OK(-ibv_modify_qp(rc->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				   IBV_QP_ACCESS_FLAGS));
}

/*
 * INIT -> RTR -> RTS towards QP @dqpn at @dgid, sending from our GID
 * @sgid_idx. PSNs are the ones each side announced: ours starts our send
 * queue, the peer's is what our receive side expects first.
 */
static inline void t_rc_connect(struct t_rc *rc, uint32_t dqpn, const union ibv_gid *dgid,
				int sgid_idx, uint32_t my_psn, uint32_t peer_psn)
{
	struct ibv_qp_attr a = { 0 };

	a.qp_state = IBV_QPS_RTR;
	/* below any veth MTU once the RoCEv2/UDP/IP headers are added */
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = dqpn;
	a.rq_psn = peer_psn;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = *dgid;
	a.ah_attr.grh.sgid_index = (uint8_t)sgid_idx;
	a.ah_attr.grh.hop_limit = 1;
	a.ah_attr.port_num = 1;
	T_ASSERT_OK(-ibv_modify_qp(rc->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
				   IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				   IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	/* 4.096 us * 2^14 = 67 ms per try, 7 tries: a lost path fails in ~0.5 s */
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = my_psn;
	a.max_rd_atomic = 1;
	T_ASSERT_OK(-ibv_modify_qp(rc->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				   IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC));
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

/* QP before CQ: a CQ still used by a QP cannot be destroyed (EBUSY). */
static inline void t_rc_destroy(struct t_rc *rc)
{
	if (rc->qp)
		T_ASSERT_OK(-ibv_destroy_qp(rc->qp));
	if (rc->cq)
		T_ASSERT_OK(-ibv_destroy_cq(rc->cq));
	rc->qp = NULL;
	rc->cq = NULL;
}

#endif /* GPUD_RDMA_VERBS_UTIL_H */
