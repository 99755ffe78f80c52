// SPDX-License-Identifier: MIT
/*
 * An RDMA write over soft-RoCE into memory registered with gpud_rdma_reg().
 *
 * In the VM (GPUD_IN_VM=1) the test makes its own device: a veth pair,
 * 198.18.77.1/24 on one end, `rdma link add gpud_rxe0 type rxe netdev
 * gpudrxe0`, and removes both at the end. Elsewhere it uses an existing rxe
 * device named by GPUD_RXE_DEV, or skips. A loopback RC queue pair on that
 * one device (connected to itself over its own RoCEv2 GID) writes a pattern
 * from an ordinary MR into:
 *   - host memory exported through udmabuf: rxe cannot import the dma-buf
 *     (EOPNOTSUPP), so gpud_rdma_reg must fall back to the CPU mapping;
 *   - a vgem buffer where the VM has one: that fallback meets a driver
 *     mapping (VM_PFNMAP), which the kernel cannot pin; either it works
 *     (then byte-exact) or it fails with -EFAULT and says why.
 * Every byte is checked through gpud_mem_read(). The two-process,
 * two-namespace version is rdma_rxe_netns_test.c.
 */
#include "mem_util.h"

#include "rdma_verbs_util.h"

#include <gpudirect/gpudirect.h>

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
	    sh("ip addr add 198.18.77.1/24 dev gpudrxe0") ||
	    sh("ip link set gpudrxe0 up") || sh("ip link set gpudrxe1 up"))
		T_FAIL("veth setup");
	made_link = true;
	if (sh("rdma link add gpud_rxe0 type rxe netdev gpudrxe0 2>&1")) {
		cleanup();
		t_skip("rdma link add failed: kernel without CONFIG_RDMA_RXE?");
	}
	return "gpud_rxe0";
}

struct loop {
	struct t_rc rc;
	struct ibv_mr *src_mr;
	uint8_t *src;
};

/* One RC QP connected to itself over the device's own RoCEv2 GID. */
static void loop_setup(struct loop *l, struct gpud_rdma_dev *d)
{
	struct ibv_context *ctx = gpud_rdma_dev_context(d);
	struct ibv_pd *pd = gpud_rdma_dev_pd(d);
	struct gpud_rdma_ep me;
	union ibv_gid gid;
	int gi;

	gi = t_rdma_gid_index(ctx, "198.18.77.1", &gid, 5);
	T_ASSERT(gi >= 0);
	/* the library's own choice: the only IPv4 GID there is */
	t_rc_create(&l->rc, d, -1, -1, 1);
	T_ASSERT_EQ(gi, gpud_rdma_qp_gid_index(l->rc.q));
	gpud_rdma_qp_local(l->rc.q, &me);
	T_ASSERT_EQ(0, memcmp(me.gid, gid.raw, 16));
	t_rc_connect(&l->rc, &me);
	l->src = aligned_alloc(4096, LEN);
	T_ASSERT(l->src);
	l->src_mr = ibv_reg_mr(pd, l->src, LEN, IBV_ACCESS_LOCAL_WRITE);
	T_ASSERT(l->src_mr);
}

static void loop_teardown(struct loop *l)
{
	t_rc_destroy(&l->rc);
	T_ASSERT_OK(-ibv_dereg_mr(l->src_mr));
	free(l->src);
}

/* RDMA-writes LEN bytes of pattern @seed to @mr at OFF and checks @m. */
static void write_and_check(struct loop *l, struct gpud_mem *m, struct gpud_rdma_mr *mr,
			    uint64_t seed)
{
	static uint8_t back[LEN];

	t_pattern_fill(seed, OFF, l->src, LEN);
	/* the MR's iova is the offset in the gpud_mem */
	t_rc_write(&l->rc, (uintptr_t)l->src, l->src_mr->lkey, gpud_rdma_mr_addr(mr) + OFF,
		   gpud_rdma_mr_rkey(mr), LEN, seed);
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
