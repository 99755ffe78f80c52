// SPDX-License-Identifier: MIT
/*
 * The cuda backend against a fake libcuda (tests/fakes/fake_cuda.c): every
 * driver step made to fail in turn must give -errno, a message naming the
 * step with the driver's own text, and leave no fd, device allocation,
 * context reference or pushed context behind.
 */
#include "mem_util.h"

#include <gpudirect/gpudirect.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>

static int (*live_allocs)(void), (*ctx_refs)(void), (*ctx_depth)(void);
static int (*flushes)(void), (*pcie_tries)(void);
static void (*reset_depth)(void);

static void use_fake(void)
{
	void *lib;

	setenv("GPUD_LIBCUDA", FAKE_CUDA_PATH, 1);
	setenv("GPUD_LIBNVML", FAKE_CUDA_PATH, 1);
	/* Our own reference keeps the counters alive across library dlclose. */
	lib = dlopen(FAKE_CUDA_PATH, RTLD_NOW);
	if (!lib)
		T_FAIL("dlopen %s: %s", FAKE_CUDA_PATH, dlerror());
	*(void **)&live_allocs = dlsym(lib, "fake_cuda_live_allocs");
	*(void **)&ctx_refs = dlsym(lib, "fake_cuda_ctx_refs");
	*(void **)&ctx_depth = dlsym(lib, "fake_cuda_ctx_depth");
	*(void **)&flushes = dlsym(lib, "fake_cuda_flushes");
	*(void **)&pcie_tries = dlsym(lib, "fake_cuda_pcie_tries");
	*(void **)&reset_depth = dlsym(lib, "fake_cuda_reset_depth");
	T_ASSERT(live_allocs && ctx_refs && ctx_depth && flushes && pcie_tries && reset_depth);
}

static void assert_clean(int fds_before)
{
	T_ASSERT_EQ(fds_before, t_count_fds());
	T_ASSERT_EQ(0, live_allocs());
	T_ASSERT_EQ(0, ctx_refs());
	T_ASSERT_EQ(0, ctx_depth());
}

static struct gpud_mem_opts opts(int device, uint32_t flags)
{
	return (struct gpud_mem_opts){ .sz = sizeof(struct gpud_mem_opts), .device = device,
				       .flags = flags };
}

static void missing_library(void)
{
	struct gpud_mem_opts o = opts(0, 0);
	struct gpud_mem *m = (void *)1;
	char why[512];
	int fds = t_count_fds();

	setenv("GPUD_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
	T_ASSERT_EQ(-ENOENT, gpud_mem_create(GPUD_MEM_CUDA, 4096, &o, &m));
	T_ASSERT_MSG("cannot load /nonexistent/libcuda.so.1");
	T_ASSERT_MSG("GPUD_LIBCUDA");
	T_ASSERT(m == (void *)1);	/* out untouched on failure */
	T_ASSERT_EQ(-ENOENT, gpud_mem_probe(GPUD_MEM_CUDA, 0, why, sizeof(why)));
	T_ASSERT(strstr(why, "install the NVIDIA driver"));
	T_ASSERT_EQ(fds, t_count_fds());
}

static void no_getprocaddress(void)
{
	struct gpud_mem_opts o = opts(0, 0);
	struct gpud_mem *m;

	/* A library without cuGetProcAddress_v2: the HSA fake will do. */
	setenv("GPUD_LIBCUDA", FAKE_HSA_PATH, 1);
	T_ASSERT_EQ(-ENOSYS, gpud_mem_create(GPUD_MEM_CUDA, 4096, &o, &m));
	T_ASSERT_MSG("cuGetProcAddress_v2");
}

static void missing_symbol(void)
{
	struct gpud_mem_opts o = opts(0, 0);
	struct gpud_mem *m;
	int fds;

	use_fake();
	fds = t_count_fds();
	setenv("GPUD_FAKE_MISSING", "cuMemGetHandleForAddressRange", 1);
	T_ASSERT_EQ(-ENOSYS, gpud_mem_create(GPUD_MEM_CUDA, 4096, &o, &m));
	T_ASSERT_MSG("lacks cuMemGetHandleForAddressRange");
	assert_clean(fds);
	/* Not cached: the driver "updated", the next try works. */
	unsetenv("GPUD_FAKE_MISSING");
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_CUDA, 4096, &o, &m));
	gpud_mem_free(m);
	assert_clean(fds);
}

static void happy_path(void)
{
	struct gpud_mem_opts o = opts(0, 0);
	enum gpud_mem_placement where;
	uint8_t buf[8192], back[8192];
	struct gpud_mem *m = NULL;
	int fds;

	use_fake();
	fds = t_count_fds();
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_CUDA, 1, &o, &m));
	T_ASSERT_EQ(2u << 20, gpud_mem_size(m));	/* rounded to 2 MiB */
	T_ASSERT_EQ(GPUD_MEM_CUDA, gpud_mem_kind(m));
	T_ASSERT(gpud_mem_dmabuf_fd(m) >= 0);
	T_ASSERT_EQ(fds + 1, t_count_fds());
	T_ASSERT(gpud_mem_device_ptr(m) != 0);
	T_ASSERT_EQ(0, gpud_mem_device_ptr(m) % (2u << 20));
	T_ASSERT(gpud_mem_host_ptr(m) == NULL);
	T_ASSERT_EQ(1, pcie_tries());		/* PCIe type tried, then plain */
	T_ASSERT_EQ(0, ctx_depth());		/* context popped */
	T_ASSERT_OK(gpud_mem_placement(m, &where));
	T_ASSERT_EQ(GPUD_MEM_PLACE_DEVICE, where);

	t_pattern_fill(7, 0, buf, sizeof(buf));
	T_ASSERT_OK(gpud_mem_write(m, 12345, buf, sizeof(buf)));
	T_ASSERT_OK(gpud_mem_read(m, 12345, back, sizeof(back)));
	T_ASSERT_EQ(-1, t_pattern_check(7, 0, back, sizeof(back)));
	T_ASSERT(flushes() >= 1);	/* ordering attribute 0: reads flush */
	T_ASSERT_EQ(-ERANGE, gpud_mem_read(m, (2u << 20) - 10, back, 11));
	T_ASSERT_EQ(-ERANGE, gpud_mem_write(m, SIZE_MAX, buf, 2));
	T_ASSERT_OK(gpud_mem_read(m, 2u << 20, back, 0));
	T_ASSERT_EQ(0, ctx_depth());
	gpud_mem_free(m);
	assert_clean(fds);

	/* Copy mode: no export, no fd. */
	o.flags = GPUD_MEM_F_NO_DMABUF;
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_CUDA, (2u << 20) + 1, &o, &m));
	T_ASSERT_EQ(4u << 20, gpud_mem_size(m));
	T_ASSERT_EQ(-ENOENT, gpud_mem_dmabuf_fd(m));
	gpud_mem_free(m);
	assert_clean(fds);

	T_ASSERT_EQ(-EINVAL, gpud_mem_create(GPUD_MEM_CUDA, 0, &o, &m));
	T_ASSERT_EQ(-E2BIG, gpud_mem_create(GPUD_MEM_CUDA, SIZE_MAX - 5, &o, &m));
	assert_clean(fds);
}

/* gpud_mem_slice of GPU memory: a dma-buf of that range, copies shifted, the context popped. */
static void slice(void)
{
	struct gpud_mem_opts o = opts(0, 0);
	struct gpud_mem *m = NULL, *s = NULL;
	uint8_t buf[4096], back[4096];
	int fds;

	use_fake();
	fds = t_count_fds();
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_CUDA, 4u << 20, &o, &m));
	T_ASSERT_OK(gpud_mem_slice(m, 2u << 20, 2u << 20, &s));
	T_ASSERT_EQ(fds + 2, t_count_fds());
	T_ASSERT(gpud_mem_dmabuf_fd(s) >= 0 && gpud_mem_dmabuf_fd(s) != gpud_mem_dmabuf_fd(m));
	T_ASSERT_EQ(2u << 20, (size_t)lseek(gpud_mem_dmabuf_fd(s), 0, SEEK_END));
	T_ASSERT_EQ(gpud_mem_device_ptr(m) + (2u << 20), gpud_mem_device_ptr(s));
	T_ASSERT_EQ(GPUD_MEM_CUDA, gpud_mem_kind(s));
	T_ASSERT_EQ(0, ctx_depth());
	t_pattern_fill(9, 0, buf, sizeof(buf));
	T_ASSERT_OK(gpud_mem_write(s, 4096, buf, sizeof(buf)));
	T_ASSERT_OK(gpud_mem_read(m, (2u << 20) + 4096, back, sizeof(back)));
	T_ASSERT_EQ(-1, t_pattern_check(9, 0, back, sizeof(back)));
	T_ASSERT_EQ(-ERANGE, gpud_mem_read(s, 2u << 20, back, 1));
	T_ASSERT_EQ(-EINVAL, gpud_mem_slice(m, 4096, 4u << 20, &s));
	gpud_mem_free(s);
	gpud_mem_free(m);
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
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_mem_create(GPUD_MEM_CUDA, 4096, &o, &m));
	T_ASSERT_MSG("open kernel modules (R515+; default since R560)");
	assert_clean(fds);
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_mem_probe(GPUD_MEM_CUDA, 0, why, sizeof(why)));
	T_ASSERT(strstr(why, "CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED = 0"));
	/* Copy mode still works on such a driver. */
	o.flags = GPUD_MEM_F_NO_DMABUF;
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_CUDA, 4096, &o, &m));
	gpud_mem_free(m);
	assert_clean(fds);
}

static void device_range(void)
{
	struct gpud_mem_opts o = opts(3, 0);
	struct gpud_mem *m;
	char why[512];
	int fds;

	use_fake();
	fds = t_count_fds();
	setenv("GPUD_FAKE_DEVICES", "2", 1);
	T_ASSERT_EQ(-ENODEV, gpud_mem_create(GPUD_MEM_CUDA, 4096, &o, &m));
	T_ASSERT_MSG("2 CUDA device(s) visible");
	o.device = -1;
	T_ASSERT_EQ(-ENODEV, gpud_mem_create(GPUD_MEM_CUDA, 4096, &o, &m));
	T_ASSERT_EQ(-ENODEV, gpud_mem_probe(GPUD_MEM_CUDA, 2, why, sizeof(why)));
	T_ASSERT(strstr(why, "cuda:2: no such device"));
	assert_clean(fds);
}

static void probe_and_cache(void)
{
	char why[512];

	use_fake();
	T_ASSERT_OK(gpud_mem_probe(GPUD_MEM_CUDA, 0, why, sizeof(why)));
	t_log("probe: %s", why);
	T_ASSERT(strstr(why, "Fake GPU"));
	T_ASSERT(strstr(why, "BAR1 free 224 of 256 MiB"));
	/* Cached: a changed driver is not seen until the process restarts. */
	setenv("GPUD_FAKE_DMABUF_ATTR", "0", 1);
	T_ASSERT_OK(gpud_mem_probe(GPUD_MEM_CUDA, 0, NULL, 0));
	/* Short buffers are truncated, not overrun. */
	T_ASSERT_OK(gpud_mem_probe(GPUD_MEM_CUDA, 0, why, 8));
	T_ASSERT_EQ(7, strlen(why));
}

static void probe_no_nvml(void)
{
	char why[512];

	use_fake();
	setenv("GPUD_LIBNVML", "/nonexistent/libnvidia-ml.so.1", 1);
	T_ASSERT_OK(gpud_mem_probe(GPUD_MEM_CUDA, 0, why, sizeof(why)));
	T_ASSERT(strstr(why, "BAR1 headroom unknown"));
}

/* Every driver call create makes, in order. */
static const char *const create_steps[] = {
	"cuInit", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetAttribute",
	"cuDevicePrimaryCtxRetain", "cuCtxPushCurrent", "cuMemAlloc", "cuStreamCreate",
	"cuPointerSetAttribute", "cuMemGetHandleForAddressRange", "cuCtxPopCurrent",
};

static void each_step_fails(void)
{
	struct gpud_mem_opts o = opts(0, 0);
	struct gpud_mem *m = NULL;
	int fds;

	use_fake();
	fds = t_count_fds();
	for (size_t i = 0; i < sizeof(create_steps) / sizeof(create_steps[0]); i++) {
		setenv("GPUD_FAKE_FAIL", create_steps[i], 1);
		T_ASSERT_EQ(-EIO, gpud_mem_create(GPUD_MEM_CUDA, 3u << 20, &o, &m));
		T_ASSERT_MSG(create_steps[i]);
		T_ASSERT_MSG("CUDA_ERROR_UNKNOWN");
		T_ASSERT_MSG("fake driver failure as requested");
		T_ASSERT(m == NULL);
		/* A failed pop leaves the context pushed, as a driver would. */
		if (!strcmp(create_steps[i], "cuCtxPopCurrent"))
			reset_depth();
		assert_clean(fds);
	}
	/* The errno follows the driver's code. */
	setenv("GPUD_FAKE_FAIL", "cuMemAlloc", 1);
	setenv("GPUD_FAKE_FAIL_CODE", "2", 1);
	T_ASSERT_EQ(-ENOMEM, gpud_mem_create(GPUD_MEM_CUDA, 4096, &o, &m));
	T_ASSERT_MSG("CUDA_ERROR_OUT_OF_MEMORY");
	setenv("GPUD_FAKE_FAIL", "cuInit", 1);
	setenv("GPUD_FAKE_FAIL_CODE", "100", 1);
	T_ASSERT_EQ(-ENODEV, gpud_mem_create(GPUD_MEM_CUDA, 4096, &o, &m));
	T_ASSERT_MSG("no NVIDIA GPU visible");
	assert_clean(fds);

	/*
	 * Copies: on the buffer's own non-blocking stream, waited for on it
	 * alone (never the legacy stream); the failing call is named, the
	 * context is popped.
	 */
	unsetenv("GPUD_FAKE_FAIL");
	unsetenv("GPUD_FAKE_FAIL_CODE");
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_CUDA, 4096, &o, &m));
	{
		static const char *const copy_steps[] = { "cuMemcpyHtoDAsync", "cuMemcpyDtoHAsync",
							  "cuStreamSynchronize",
							  "cuFlushGPUDirectRDMAWrites",
							  "cuCtxPushCurrent", "cuCtxPopCurrent" };
		char b[64] = { 0 };

		for (size_t i = 0; i < sizeof(copy_steps) / sizeof(copy_steps[0]); i++) {
			int w, r;

			setenv("GPUD_FAKE_FAIL", copy_steps[i], 1);
			w = gpud_mem_write(m, 0, b, sizeof(b));
			r = gpud_mem_read(m, 0, b, sizeof(b));
			T_ASSERT(w == -EIO || r == -EIO);
			T_ASSERT_MSG(copy_steps[i]);
			/* A failed pop leaves the context pushed, as a driver would. */
			if (!strcmp(copy_steps[i], "cuCtxPopCurrent"))
				reset_depth();
			T_ASSERT_EQ(0, ctx_depth());
		}
	}
	unsetenv("GPUD_FAKE_FAIL");
	gpud_mem_free(m);
	assert_clean(fds);
}

int main(void)
{
	t_scenario("missing library: -ENOENT", missing_library);
	t_scenario("library without cuGetProcAddress_v2: -ENOSYS", no_getprocaddress);
	t_scenario("library lacking a symbol: -ENOSYS naming it", missing_symbol);
	t_scenario("export, copy, bounds, rounding, free", happy_path);
	t_scenario("a slice with a dma-buf of its own", slice);
	t_scenario("driver without dma-buf support: -EOPNOTSUPP", no_dmabuf_support);
	t_scenario("device out of range: -ENODEV with the count", device_range);
	t_scenario("probe text with BAR1, cached", probe_and_cache);
	t_scenario("probe without NVML", probe_no_nvml);
	t_scenario("every driver step failing, nothing leaked", each_step_fails);
	return T_EXIT_PASS;
}
