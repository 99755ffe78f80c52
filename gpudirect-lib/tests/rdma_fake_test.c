// SPDX-License-Identifier: MIT
/*
 * The rdma importer against a fake libibverbs (tests/fakes/fake_ibverbs.c):
 * dma-buf MRs where the provider imports them, the host-memory fallback on a
 * soft-RoCE-like device, the clear error for device memory there, a device
 * that vanishes, freeing in either order, every verbs step failing — with
 * fds, contexts, PDs and MRs counted back to zero. Device memory is the
 * hip backend on its fake runtime (no CPU mapping).
 */
#include "mem_util.h"
#include "rdma/rdma_internal.h"

#include <gpudirect/gpudirect.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

static int (*live_ctx)(void), (*live_pd)(void), (*live_mr)(void), (*dmabuf_mrs)(void),
	(*busy_dealloc)(void);
static char sysfs[64];

static void setup(void)
{
	char path[160];
	void *lib;
	FILE *f;

	setenv("GPUD_LIBIBVERBS", FAKE_IBVERBS_PATH, 1);
	setenv("GPUD_LIBHSA", FAKE_HSA_PATH, 1);
	lib = dlopen(FAKE_IBVERBS_PATH, RTLD_NOW);
	if (!lib)
		T_FAIL("dlopen %s: %s", FAKE_IBVERBS_PATH, dlerror());
	*(void **)&live_ctx = dlsym(lib, "fake_ib_live_ctx");
	*(void **)&live_pd = dlsym(lib, "fake_ib_live_pd");
	*(void **)&live_mr = dlsym(lib, "fake_ib_live_mr");
	*(void **)&dmabuf_mrs = dlsym(lib, "fake_ib_dmabuf_mrs");
	*(void **)&busy_dealloc = dlsym(lib, "fake_ib_busy_dealloc");
	T_ASSERT(live_ctx && live_pd && live_mr && dmabuf_mrs && busy_dealloc);
	/* A sysfs where rxe0 runs on veth0, as soft-RoCE shows itself. */
	snprintf(sysfs, sizeof(sysfs), "/tmp/gpud-ib-sysfs.XXXXXX");
	T_ASSERT(mkdtemp(sysfs));
	snprintf(path, sizeof(path), "%s/rxe0", sysfs);
	T_ASSERT_OK(mkdir(path, 0700));
	snprintf(path, sizeof(path), "%s/rxe0/parent", sysfs);
	f = fopen(path, "w");
	T_ASSERT(f);
	fputs("veth0\n", f);
	fclose(f);
	gpud_rdma_set_sysfs_dir(sysfs);
}

static void teardown(void)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/rxe0/parent", sysfs);
	unlink(path);
	snprintf(path, sizeof(path), "%s/rxe0", sysfs);
	rmdir(path);
	rmdir(sysfs);
}

static void assert_clean(int fds)
{
	T_ASSERT_EQ(fds, t_count_fds());
	T_ASSERT_EQ(0, live_ctx());
	T_ASSERT_EQ(0, live_pd());
	T_ASSERT_EQ(0, live_mr());
	T_ASSERT_EQ(0, busy_dealloc());
}

/* Host memory exported through a fake "dma-buf": the hip fake's memfd. */
static struct gpud_mem *device_mem(void)
{
	struct gpud_mem_opts o = { .sz = sizeof(o) };
	struct gpud_mem *m;

	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HIP, 65536, &o, &m));
	return m;
}

/* Host memory, not exported (no /dev/udmabuf needed): the fallback's case. */
static struct gpud_mem *host_mem(void)
{
	struct gpud_mem_opts o = { .sz = sizeof(o), .flags = GPUD_MEM_F_NO_DMABUF };
	struct gpud_mem *m;

	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, 65536, &o, &m));
	return m;
}

static void missing_library(void)
{
	struct gpud_rdma_dev *d;

	setenv("GPUD_LIBIBVERBS", "/nonexistent/libibverbs.so.1", 1);
	T_ASSERT_EQ(-ENOENT, gpud_rdma_dev_open(NULL, &d));
	T_ASSERT_MSG("libibverbs1");
	T_ASSERT_EQ(-ENOENT, gpud_rdma_devs_get(NULL, 0));
}

static void dmabuf_mr(void)
{
	struct gpud_rdma_dev *d = NULL;
	struct gpud_rdma_mr *mr = NULL;
	struct gpud_mem *m;
	int fds;

	setup();
	fds = t_count_fds();
	m = device_mem();
	T_ASSERT_OK(gpud_rdma_dev_open("mlx5_0", &d));
	T_ASSERT_STREQ("mlx5_0", gpud_rdma_dev_name(d));
	T_ASSERT(gpud_rdma_dev_pd(d) && gpud_rdma_dev_context(d));
	T_ASSERT_OK(gpud_rdma_reg(d, m, 4096, 8192, GPUD_RDMA_ACCESS_REMOTE_WRITE, &mr));
	T_ASSERT_EQ(GPUD_RDMA_MR_DMABUF, gpud_rdma_mr_how(mr));
	T_ASSERT_EQ(1, dmabuf_mrs());
	T_ASSERT_EQ(4096, gpud_rdma_mr_addr(mr));
	T_ASSERT_EQ(8192, gpud_rdma_mr_length(mr));
	T_ASSERT(gpud_rdma_mr_lkey(mr) != gpud_rdma_mr_rkey(mr));
	T_ASSERT(gpud_rdma_mr_ibv(mr) != NULL);
	/* Out of range, bad flags */
	{
		struct gpud_rdma_mr *bad = NULL;

		T_ASSERT_EQ(-EINVAL, gpud_rdma_reg(d, m, 65536, 0, 0, &bad));
		T_ASSERT_EQ(-EINVAL, gpud_rdma_reg(d, m, 0, 65537, 0, &bad));
		T_ASSERT_EQ(-EINVAL, gpud_rdma_reg(d, m, 0, 0, 1u << 9, &bad));
		T_ASSERT(bad == NULL);
	}
	/* The mem may go first: the MR holds its own dup of the dma-buf. */
	gpud_mem_free(m);
	T_ASSERT_EQ(fds + 1, t_count_fds());
	/* ... and the device object too: the MR keeps the PD alive. */
	gpud_rdma_dev_free(d);
	T_ASSERT_EQ(1, live_pd());
	gpud_rdma_mr_free(mr);
	assert_clean(fds);
	teardown();
}

static void soft_roce(void)
{
	struct gpud_rdma_dev *d = NULL;
	struct gpud_rdma_mr *mr = NULL;
	struct gpud_mem *hm, *dm;
	int fds;

	setup();
	fds = t_count_fds();
	hm = host_mem();
	dm = device_mem();
	T_ASSERT_OK(gpud_rdma_dev_open("rxe0", &d));
	T_ASSERT_STREQ("rxe", gpud_rdma_dev_provider(d));
	/* host memory: the fallback registers the CPU mapping, same iova rule */
	T_ASSERT_OK(gpud_rdma_reg(d, hm, 0, 0, GPUD_RDMA_ACCESS_REMOTE_WRITE, &mr));
	T_ASSERT_EQ(GPUD_RDMA_MR_HOST_VA, gpud_rdma_mr_how(mr));
	T_ASSERT_EQ(0, gpud_rdma_mr_addr(mr));
	T_ASSERT_EQ(65536, gpud_rdma_mr_length(mr));
	gpud_rdma_mr_free(mr);
	mr = NULL;
	/* device memory: no way, and the message names device and provider */
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_rdma_reg(d, dm, 0, 0, 0, &mr));
	T_ASSERT_MSG("rxe0 (provider rxe) cannot register dma-bufs");
	T_ASSERT_MSG("no CPU mapping");
	T_ASSERT(mr == NULL);
	/* an unpinnable mapping */
	setenv("GPUD_FAKE_PIN_FAIL", "1", 1);
	T_ASSERT_EQ(-EFAULT, gpud_rdma_reg(d, hm, 0, 0, 0, &mr));
	T_ASSERT_MSG("cannot be pinned");
	unsetenv("GPUD_FAKE_PIN_FAIL");
	gpud_rdma_dev_free(d);
	gpud_mem_free(hm);
	gpud_mem_free(dm);
	assert_clean(fds);
	teardown();
}

static void vanishing_device(void)
{
	struct gpud_rdma_dev *d = NULL;
	struct gpud_rdma_mr *mr = NULL, *mr2 = NULL;
	struct gpud_mem *m;
	int fds;

	setup();
	fds = t_count_fds();
	m = device_mem();
	T_ASSERT_EQ(-ENODEV, gpud_rdma_dev_open("mlx5_9", &d));
	T_ASSERT_MSG("present: mlx5_0, rxe0");
	setenv("GPUD_FAKE_IB_DEVS", "", 1);
	T_ASSERT_EQ(-ENODEV, gpud_rdma_dev_open(NULL, &d));
	T_ASSERT_MSG("rdma link add");
	unsetenv("GPUD_FAKE_IB_DEVS");
	T_ASSERT_OK(gpud_rdma_dev_open(NULL, &d));
	T_ASSERT_OK(gpud_rdma_reg(d, m, 0, 0, 0, &mr));
	setenv("GPUD_FAKE_IB_GONE", "1", 1);
	T_ASSERT_EQ(-ENODEV, gpud_rdma_reg(d, m, 0, 0, 0, &mr2));
	T_ASSERT_MSG("the device is gone");
	T_ASSERT_EQ(-ENODEV, gpud_rdma_dev_open("mlx5_0", &d));
	/* freeing on a gone device: warned, freed anyway */
	gpud_rdma_mr_free(mr);
	gpud_rdma_dev_free(d);
	unsetenv("GPUD_FAKE_IB_GONE");
	gpud_mem_free(m);
	assert_clean(fds);
	teardown();
}

static const char *const steps[] = {
	"ibv_get_device_list", "ibv_open_device", "ibv_alloc_pd",
};

static void each_step_fails(void)
{
	struct gpud_rdma_dev *d = NULL;
	struct gpud_rdma_mr *mr = NULL;
	struct gpud_mem *m;
	int fds;

	setup();
	fds = t_count_fds();
	m = device_mem();
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		setenv("GPUD_FAKE_FAIL", steps[i], 1);
		T_ASSERT_EQ(-EIO, gpud_rdma_dev_open("mlx5_0", &d));
		T_ASSERT_MSG(steps[i]);
		T_ASSERT(d == NULL);
	}
	unsetenv("GPUD_FAKE_FAIL");
	T_ASSERT_OK(gpud_rdma_dev_open("mlx5_0", &d));
	setenv("GPUD_FAKE_FAIL", "ibv_reg_dmabuf_mr", 1);
	T_ASSERT_EQ(-ENODEV, gpud_rdma_reg(d, m, 0, 0, 0, &mr));	/* EIO: device gone */
	T_ASSERT_MSG("ibv_reg_dmabuf_mr");
	T_ASSERT(mr == NULL);
	unsetenv("GPUD_FAKE_FAIL");
	gpud_rdma_dev_free(d);
	gpud_mem_free(m);
	assert_clean(fds);
	teardown();
}

static void listing(void)
{
	struct gpud_rdma_dev_info di[4];
	int fds;

	setup();
	fds = t_count_fds();
	T_ASSERT_EQ(2, gpud_rdma_devs_get(di, 4));
	T_ASSERT_STREQ("mlx5_0", di[0].name);
	T_ASSERT_EQ(1, di[0].dmabuf);
	T_ASSERT_STREQ("rxe0", di[1].name);
	T_ASSERT_EQ(0, di[1].dmabuf);
	T_ASSERT_STREQ("veth0", di[1].netdev);
	T_ASSERT(strstr(di[1].why, "no dma-buf import"));
	t_log("%s: %s / %s: %s", di[0].name, di[0].why, di[1].name, di[1].why);
	T_ASSERT_EQ(2, gpud_rdma_devs_get(NULL, 0));
	assert_clean(fds);
	teardown();
}

/*
 * The fake stands in for registration only. Queue pairs need more of
 * libibverbs: asking for one must say which call is missing (or, in a
 * build without verbs.h, what to install), never crash on a NULL entry,
 * and must not keep a device reference.
 */
static void qp_without_verbs(void)
{
	struct gpud_rdma_qp_opts o = { .gid_index = -1, .sock = -1 };
	struct gpud_rdma_qp *q = NULL;
	struct gpud_rdma_dev *d = NULL;
	int fds;

	setup();
	fds = t_count_fds();
	T_ASSERT_OK(gpud_rdma_dev_open("mlx5_0", &d));
	T_ASSERT_EQ(-ENOSYS, gpud_rdma_qp_create(d, &o, &q));
	T_ASSERT(q == NULL);
	if (!strstr(gpud_errmsg(), "libibverbs-dev"))
		T_ASSERT_MSG("lacks ibv_create_comp_channel");
	T_ASSERT_EQ(-ENOSYS, gpud_rdma_port_check(d));
	T_ASSERT_EQ(-EINVAL, gpud_rdma_qp_create(d, NULL, &q));
	/* the device closes with its last reference: none leaked by the failures */
	gpud_rdma_dev_free(d);
	gpud_rdma_qp_free(NULL);
	assert_clean(fds);
	teardown();
}

int main(void)
{
	t_scenario("no libibverbs: -ENOENT naming the package", missing_library);
	t_scenario("dma-buf MR; mem and dev freed before the MR", dmabuf_mr);
	t_scenario("soft-RoCE: host fallback, device memory refused, unpinnable", soft_roce);
	t_scenario("missing and vanishing devices", vanishing_device);
	t_scenario("every verbs step failing, nothing leaked", each_step_fails);
	t_scenario("device listing with dma-buf probe", listing);
	t_scenario("queue pairs on a libibverbs without them: -ENOSYS naming the call",
		   qp_without_verbs);
	return T_EXIT_PASS;
}
