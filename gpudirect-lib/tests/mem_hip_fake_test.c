// SPDX-License-Identifier: MIT
/*
 * The hip backend against a fake HSA runtime (tests/fakes/fake_hsa.c): the
 * right pool, export, copies, and every runtime step made to fail in turn
 * with no fd, allocation or hsa_init reference left behind.
 */
#include "mem_util.h"

#include <gpudirect/gpudirect.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>

static int (*live_allocs)(void), (*init_refs)(void), (*wrong_pool)(void);

static void use_fake(void)
{
	void *lib;

	setenv("GPUD_LIBHSA", FAKE_HSA_PATH, 1);
	lib = dlopen(FAKE_HSA_PATH, RTLD_NOW);
	if (!lib)
		T_FAIL("dlopen %s: %s", FAKE_HSA_PATH, dlerror());
	*(void **)&live_allocs = dlsym(lib, "fake_hsa_live_allocs");
	*(void **)&init_refs = dlsym(lib, "fake_hsa_init_refs");
	*(void **)&wrong_pool = dlsym(lib, "fake_hsa_wrong_pool");
	T_ASSERT(live_allocs && init_refs && wrong_pool);
}

static void assert_clean(int fds_before)
{
	T_ASSERT_EQ(fds_before, t_count_fds());
	T_ASSERT_EQ(0, live_allocs());
	T_ASSERT_EQ(0, init_refs());
}

static struct gpud_mem_opts opts(int device, uint32_t flags)
{
	return (struct gpud_mem_opts){ .sz = sizeof(struct gpud_mem_opts), .device = device,
				       .flags = flags };
}

static void missing_library(void)
{
	struct gpud_mem_opts o = opts(0, 0);
	struct gpud_mem *m;
	char why[512];

	setenv("GPUD_LIBHSA", "/nonexistent/libhsa-runtime64.so.1", 1);
	T_ASSERT_EQ(-ENOENT, gpud_mem_create(GPUD_MEM_HIP, 4096, &o, &m));
	T_ASSERT_MSG("cannot load /nonexistent/libhsa-runtime64.so.1");
	T_ASSERT_EQ(-ENOENT, gpud_mem_probe(GPUD_MEM_HIP, 0, why, sizeof(why)));
	T_ASSERT(strstr(why, "GPUD_LIBHSA"));
}

static void old_runtime(void)
{
	struct gpud_mem_opts o = opts(0, 0);
	struct gpud_mem *m;
	int fds = t_count_fds();

	setenv("GPUD_LIBHSA", FAKE_HSA_OLD_PATH, 1);
	T_ASSERT_EQ(-ENOSYS, gpud_mem_create(GPUD_MEM_HIP, 4096, &o, &m));
	T_ASSERT_MSG("lacks hsa_amd_portable_export_dmabuf");
	T_ASSERT_MSG("ROCm 5.6");
	T_ASSERT_EQ(fds, t_count_fds());
}

static void happy_path(void)
{
	struct gpud_mem_opts o = opts(1, 0);
	enum gpud_mem_placement where;
	uint8_t buf[5000], back[5000];
	struct gpud_mem *m = NULL;
	char why[512];
	int fds;

	use_fake();
	setenv("GPUD_FAKE_DEVICES", "2", 1);
	fds = t_count_fds();
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HIP, 4097, &o, &m));
	T_ASSERT_EQ(8192, gpud_mem_size(m));	/* the pool's 4 KiB granule */
	T_ASSERT_EQ(0, wrong_pool());		/* coarse-grained, not fine */
	T_ASSERT(gpud_mem_dmabuf_fd(m) >= 0);
	T_ASSERT_EQ(fds + 1, t_count_fds());
	T_ASSERT(gpud_mem_device_ptr(m) != 0);
	T_ASSERT(gpud_mem_host_ptr(m) == NULL);
	T_ASSERT_EQ(1, init_refs());
	/* No amdgpu render node here: placement cannot be told. */
	T_ASSERT_OK(gpud_mem_placement(m, &where));
	T_ASSERT_EQ(GPUD_MEM_PLACE_UNKNOWN, where);

	t_pattern_fill(3, 0, buf, sizeof(buf));
	T_ASSERT_OK(gpud_mem_write(m, 100, buf, sizeof(buf)));
	T_ASSERT_OK(gpud_mem_read(m, 100, back, sizeof(back)));
	T_ASSERT_EQ(-1, t_pattern_check(3, 0, back, sizeof(back)));
	T_ASSERT_EQ(-ERANGE, gpud_mem_write(m, 8000, buf, 193));
	gpud_mem_free(m);
	assert_clean(fds);

	T_ASSERT_OK(gpud_mem_probe(GPUD_MEM_HIP, 1, why, sizeof(why)));
	t_log("probe: %s", why);
	T_ASSERT(strstr(why, "GTT"));	/* the migration hazard is spelled out */
	T_ASSERT_EQ(0, init_refs());

	o.device = 2;
	T_ASSERT_EQ(-ENODEV, gpud_mem_create(GPUD_MEM_HIP, 4096, &o, &m));
	T_ASSERT_MSG("2 AMD GPU agent(s)");
	assert_clean(fds);
}

static void no_dmabuf_support(void)
{
	struct gpud_mem_opts o = opts(0, 0);
	struct gpud_mem *m;
	char why[512];
	int fds;

	use_fake();
	fds = t_count_fds();
	setenv("GPUD_FAKE_DMABUF_ATTR", "0", 1);
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_mem_create(GPUD_MEM_HIP, 4096, &o, &m));
	T_ASSERT_MSG("DMABUF_SUPPORTED = false");
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_mem_probe(GPUD_MEM_HIP, 0, why, sizeof(why)));
	o.flags = GPUD_MEM_F_NO_DMABUF;
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HIP, 4096, &o, &m));
	T_ASSERT_EQ(-ENOENT, gpud_mem_dmabuf_fd(m));
	gpud_mem_free(m);
	assert_clean(fds);
}

static void shared_buffer_object(void)
{
	struct gpud_mem_opts o = opts(0, 0);
	struct gpud_mem *m;
	int fds;

	use_fake();
	fds = t_count_fds();
	setenv("GPUD_FAKE_DMABUF_OFFSET", "4096", 1);
	T_ASSERT_EQ(-EINVAL, gpud_mem_create(GPUD_MEM_HIP, 4096, &o, &m));
	T_ASSERT_MSG("not ours");
	assert_clean(fds);
}

static const char *const create_steps[] = {
	"hsa_init", "hsa_system_get_info", "hsa_iterate_agents", "hsa_agent_get_info",
	"hsa_amd_agent_iterate_memory_pools", "hsa_amd_memory_pool_get_info",
	"hsa_amd_memory_pool_allocate", "hsa_amd_portable_export_dmabuf",
};

static void each_step_fails(void)
{
	struct gpud_mem_opts o = opts(0, 0);
	struct gpud_mem *m = NULL;
	char b[16] = { 0 };
	int fds;

	use_fake();
	fds = t_count_fds();
	for (size_t i = 0; i < sizeof(create_steps) / sizeof(create_steps[0]); i++) {
		setenv("GPUD_FAKE_FAIL", create_steps[i], 1);
		T_ASSERT_EQ(-EIO, gpud_mem_create(GPUD_MEM_HIP, 4096, &o, &m));
		T_ASSERT_MSG(create_steps[i]);
		T_ASSERT_MSG("fake runtime failure as requested");
		T_ASSERT(m == NULL);
		assert_clean(fds);
	}
	unsetenv("GPUD_FAKE_FAIL");
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HIP, 4096, &o, &m));
	setenv("GPUD_FAKE_FAIL", "hsa_memory_copy", 1);
	T_ASSERT_EQ(-EIO, gpud_mem_write(m, 0, b, sizeof(b)));
	T_ASSERT_MSG("hsa_memory_copy (to device)");
	T_ASSERT_EQ(-EIO, gpud_mem_read(m, 0, b, sizeof(b)));
	T_ASSERT_MSG("hsa_memory_copy (from device)");
	unsetenv("GPUD_FAKE_FAIL");
	gpud_mem_free(m);
	assert_clean(fds);
}

int main(void)
{
	t_scenario("missing runtime: -ENOENT", missing_library);
	t_scenario("runtime older than 5.6: -ENOSYS naming the symbol", old_runtime);
	t_scenario("coarse pool, export, copy, bounds, probe text", happy_path);
	t_scenario("no dma-buf support: -EOPNOTSUPP; copy mode works", no_dmabuf_support);
	t_scenario("export offset != 0 refused", shared_buffer_object);
	t_scenario("every runtime step failing, nothing leaked", each_step_fails);
	return T_EXIT_PASS;
}
