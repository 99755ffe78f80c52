// SPDX-License-Identifier: MIT
/*
 * An RDMA write over soft-RoCE into memory registered with gpud_rdma_reg().
 *
 * In the VM (GPUD_IN_VM=1) the test makes its own device: a veth pair,
 * 10.77.0.1/24 on one end, `rdma link add gpud_rxe0 type rxe netdev
 * gpudrxe0`, and removes both at the end. Elsewhere it uses an existing rxe
 * device named by GPUD_RXE_DEV, or skips. A loopback RC queue pair on that
 * one device (connected to itself over its own RoCEv2 GID) writes a pattern
 * from an ordinary MR into:
 *   - host memory exported through udmabuf: rxe cannot import the dma-buf
 *     (EOPNOTSUPP), so gpud_rdma_reg must fall back to the CPU mapping;
 *   - a vgem buffer where the VM has one: that fallback meets a driver
 *     mapping (VM_PFNMAP), which the kernel cannot pin; either it works
 *     (then byte-exact) or it fails with -EFAULT and says why.
 * Every byte is checked through gpud_mem_read(). A two-namespace version
 * (two rxe devices) is left for later; loopback exercises the same MR path.
 */
#include "mem_util.h"

#include <gpudirect/gpudirect.h>
#include <infiniband/verbs.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>

#define LEN (256u << 10)
#define OFF 8192u

static bool made_link;

static int sh(const char *cmd)
{
	int rc = system(cmd);

	t_log("$ %s -> %d", cmd, rc);
	return rc;
}

static void cleanup(void)
{
	if (!made_link)
		return;
	sh("rdma link delete gpud_rxe0 2>&1");
	sh("ip link del gpudrxe0 2>&1");
}

static const char *setup_dev(void)
{
	const char *dev = getenv("GPUD_RXE_DEV");

	if (dev && *dev)
		return dev;
	if (!getenv("GPUD_IN_VM"))
		t_skip("not in the test VM and GPUD_RXE_DEV not set (name an existing rxe device)");
	if (sh("command -v rdma >/dev/null"))
		t_skip("no rdma tool (iproute2)");
	if (sh("ip link add gpudrxe0 type veth peer name gpudrxe1") ||
	    sh("ip addr add 10.77.0.1/24 dev gpudrxe0") ||
	    sh("ip link set gpudrxe0 up") || sh("ip link set gpudrxe1 up"))
		T_FAIL("veth setup");
	made_link = true;
	if (sh("rdma link add gpud_rxe0 type rxe netdev gpudrxe0 2>&1")) {
		cleanup();
		t_skip("rdma link add failed: kernel without CONFIG_RDMA_RXE?");
	}
	return "gpud_rxe0";
}

/* The IPv4-mapped RoCEv2 GID of our address. */
static int find_gid(struct ibv_context *ctx, union ibv_gid *gid)
{
	for (int i = 0; i < 16; i++) {
		if (ibv_query_gid(ctx, 1, i, gid))
			continue;
		if (!gid->global.subnet_prefix && gid->raw[10] == 0xff && gid->raw[11] == 0xff &&
		    gid->raw[12] == 10 && gid->raw[13] == 77)
			return i;
	}
	return -1;
}

struct loop {
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *src_mr;
	uint8_t *src;
};

static void loop_setup(struct loop *l, struct gpud_rdma_dev *d)
{
	struct ibv_context *ctx = gpud_rdma_dev_context(d);
	struct ibv_pd *pd = gpud_rdma_dev_pd(d);
	struct ibv_qp_init_attr qia = { 0 };
	struct ibv_qp_attr a = { 0 };
	union ibv_gid gid;
	int gi = -1;

	for (int tries = 0; tries < 50 && gi < 0; tries++) {
		gi = find_gid(ctx, &gid);
		if (gi < 0)
			usleep(100000);
	}
	T_ASSERT(gi >= 0);
	l->cq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	T_ASSERT(l->cq);
	qia.send_cq = l->cq;
	qia.recv_cq = l->cq;
	qia.qp_type = IBV_QPT_RC;
	qia.cap.max_send_wr = 4;
	qia.cap.max_recv_wr = 4;
	qia.cap.max_send_sge = 1;
	qia.cap.max_recv_sge = 1;
	l->qp = ibv_create_qp(pd, &qia);
	T_ASSERT(l->qp);
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_LOCAL_WRITE;
	T_ASSERT_OK(-ibv_modify_qp(l->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				  IBV_QP_ACCESS_FLAGS));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = l->qp->qp_num;	/* ourselves */
	a.rq_psn = 1;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = gid;
	a.ah_attr.grh.sgid_index = (uint8_t)gi;
	a.ah_attr.grh.hop_limit = 1;
	a.ah_attr.port_num = 1;
	T_ASSERT_OK(-ibv_modify_qp(l->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
				  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
				  IBV_QP_MIN_RNR_TIMER));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = 1;
	a.max_rd_atomic = 1;
	T_ASSERT_OK(-ibv_modify_qp(l->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				  IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC));
	l->src = aligned_alloc(4096, LEN);
	T_ASSERT(l->src);
	l->src_mr = ibv_reg_mr(pd, l->src, LEN, IBV_ACCESS_LOCAL_WRITE);
	T_ASSERT(l->src_mr);
}

static void loop_teardown(struct loop *l)
{
	T_ASSERT_OK(-ibv_destroy_qp(l->qp));
	T_ASSERT_OK(-ibv_destroy_cq(l->cq));
	T_ASSERT_OK(-ibv_dereg_mr(l->src_mr));
	free(l->src);
}

/* RDMA-writes LEN bytes of pattern @seed to @mr at OFF and checks @m. */
static void write_and_check(struct loop *l, struct gpud_mem *m, struct gpud_rdma_mr *mr,
			    uint64_t seed)
{
	struct ibv_sge sge = { .addr = (uintptr_t)l->src, .length = LEN,
			       .lkey = l->src_mr->lkey };
	struct ibv_send_wr wr = { 0 }, *bad = NULL;
	static uint8_t back[LEN];
	struct ibv_wc wc;
	double t0 = t_now();
	int n;

	t_pattern_fill(seed, OFF, l->src, LEN);
	wr.wr_id = seed;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	/* the MR's iova is the offset in the gpud_mem */
	wr.wr.rdma.remote_addr = gpud_rdma_mr_addr(mr) + OFF;
	wr.wr.rdma.rkey = gpud_rdma_mr_rkey(mr);
	T_ASSERT_OK(-ibv_post_send(l->qp, &wr, &bad));
	while ((n = ibv_poll_cq(l->cq, 1, &wc)) == 0) {
		if (t_now() - t0 > 30)
			T_FAIL("no completion in 30 s");
		usleep(1000);
	}
	T_ASSERT_EQ(1, n);
	if (wc.status != IBV_WC_SUCCESS)
		T_FAIL("RDMA write completed with %s", ibv_wc_status_str(wc.status));
	T_ASSERT_OK(gpud_mem_read(m, OFF, back, LEN));
	T_ASSERT_EQ(-1, t_pattern_check(seed, OFF, back, LEN));
	t_log("RDMA write of %u bytes at offset %u: byte-exact", LEN, OFF);
}

int main(void)
{
	struct gpud_mem_opts o = { .sz = sizeof(o) };
	struct gpud_rdma_mr *mr = NULL;
	struct gpud_rdma_dev *d = NULL;
	struct gpud_mem *m = NULL;
	const char *name;
	struct loop l;
	int ret, fds;

	name = setup_dev();
	atexit(cleanup);
	fds = t_count_fds();
	T_ASSERT_OK(gpud_rdma_dev_open(name, &d));
	t_log("%s: provider %s", gpud_rdma_dev_name(d), gpud_rdma_dev_provider(d));
	loop_setup(&l, d);

	if (gpud_mem_create(GPUD_MEM_HOST, 1 << 20, &o, &m))
		t_skip("host memory with a dma-buf: %s", gpud_errmsg());
	T_ASSERT_OK(gpud_rdma_reg(d, m, 0, 0, GPUD_RDMA_ACCESS_REMOTE_WRITE, &mr));
	/* soft-RoCE cannot import a dma-buf: the fallback must have run */
	T_ASSERT_EQ(GPUD_RDMA_MR_HOST_VA, gpud_rdma_mr_how(mr));
	write_and_check(&l, m, mr, 77);
	gpud_rdma_mr_free(mr);
	gpud_mem_free(m);

	/* vgem, where there is one */
	o.path = "/dev/dri/card0";
	if (!gpud_mem_create(GPUD_MEM_DRM, 1 << 20, &o, &m)) {
		ret = gpud_rdma_reg(d, m, 0, 0, GPUD_RDMA_ACCESS_REMOTE_WRITE, &mr);
		t_log("vgem on %s: %s", name, ret ? gpud_errmsg() : "registered");
		if (!ret) {
			write_and_check(&l, m, mr, 78);
			gpud_rdma_mr_free(mr);
		} else {
			T_ASSERT_EQ(-EFAULT, ret);
			T_ASSERT_MSG("cannot be pinned");
		}
		gpud_mem_free(m);
	} else {
		t_log("no vgem buffer: %s", gpud_errmsg());
	}

	loop_teardown(&l);
	gpud_rdma_dev_free(d);
	T_ASSERT_EQ(fds, t_count_fds());
	t_log("rdma_rxe_test: pass");
	return T_EXIT_PASS;
}
