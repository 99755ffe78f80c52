// SPDX-License-Identifier: MIT
/*
 * Unit tests of the devmem pool choice (src/base/pool.c, NCCL_DEVMEM_POOL_MEM)
 * over every combination of what a machine may have: auto takes GPU memory
 * only when CUDA works and the GPU exports dma-bufs, and says why not
 * otherwise; host is host; a demanded GPU pool that cannot be is an error
 * that names the cause and the fix, never a quiet host pool; specs it
 * cannot read are refused; which GPU a bare "cuda" means.
 */
#include "gpud_test.h"
#include "base/base.h"

#include <errno.h>

#include <gpudirect/gpudirect.h>

static const char *no_cuda = "libcuda.so.1 not loadable: no such file";
static const char *no_export = "the NVIDIA proprietary kernel module cannot export dma-bufs; install the open kernel modules";
static const char *exports = "NVIDIA H100, BAR1 free 60000 of 65536 MiB";

static struct dm_pool_facts facts(bool cuda_ok, int probe, int cur)
{
	return (struct dm_pool_facts){ .cuda_ok = cuda_ok, .cuda_why = cuda_ok ? "" : no_cuda,
				       .probe = probe,
				       .probe_why = probe ? no_export : exports,
				       .cur_device = cur };
}

static void has(const char *s, const char *needle)
{
	if (!strstr(s, needle))
		T_FAIL("\"%s\" does not say \"%s\"", s, needle);
}

static void choice_auto(void)
{
	struct dm_pool_choice c;
	struct dm_pool_facts f;

	/* CUDA works and the GPU exports: GPU memory of the current device */
	f = facts(true, 0, 3);
	T_ASSERT_OK(dm_pool_choose("auto", &f, &c));
	T_ASSERT_EQ(GPUD_MEM_CUDA, c.kind);
	T_ASSERT_EQ(3, c.device);
	has(c.why, "CUDA device 3");
	has(c.why, "BAR1");
	/* "" is auto too, and without a current context it is GPU 0 */
	f = facts(true, 0, -1);
	T_ASSERT_OK(dm_pool_choose("", &f, &c));
	T_ASSERT_EQ(GPUD_MEM_CUDA, c.kind);
	T_ASSERT_EQ(0, c.device);
	/* no CUDA: host, and the log says why */
	f = facts(false, -ENODEV, -1);
	T_ASSERT_OK(dm_pool_choose("auto", &f, &c));
	T_ASSERT_EQ(GPUD_MEM_HOST, c.kind);
	has(c.why, "host memory");
	has(c.why, "libcuda.so.1");
	/* CUDA but no dma-buf export: host, with the driver's reason */
	f = facts(true, -EOPNOTSUPP, 0);
	T_ASSERT_OK(dm_pool_choose("auto", &f, &c));
	T_ASSERT_EQ(GPUD_MEM_HOST, c.kind);
	has(c.why, "open kernel modules");
}

static void choice_host(void)
{
	struct dm_pool_choice c;
	struct dm_pool_facts f = facts(true, 0, 0);

	/* host even where a GPU pool would work */
	T_ASSERT_OK(dm_pool_choose("host", &f, &c));
	T_ASSERT_EQ(GPUD_MEM_HOST, c.kind);
	has(c.why, "NCCL_DEVMEM_POOL_MEM=host");
}

static void choice_cuda(void)
{
	struct dm_pool_choice c;
	struct dm_pool_facts f;

	f = facts(true, 0, 2);
	T_ASSERT_OK(dm_pool_choose("cuda", &f, &c));
	T_ASSERT_EQ(GPUD_MEM_CUDA, c.kind);
	T_ASSERT_EQ(2, c.device);
	T_ASSERT_OK(dm_pool_choose("cuda:5", &f, &c));
	T_ASSERT_EQ(GPUD_MEM_CUDA, c.kind);
	T_ASSERT_EQ(5, c.device);
	has(c.why, "CUDA device 5");
	/* demanded, no CUDA: an error with the cause and both fixes */
	f = facts(false, -ENODEV, -1);
	T_ASSERT_EQ(-ENODEV, dm_pool_choose("cuda", &f, &c));
	has(c.why, "NCCL_DEVMEM_POOL_MEM=cuda");
	has(c.why, "libcuda.so.1");
	has(c.why, "NCCL_DEVMEM_POOL_MEM=host");
	/* demanded, the GPU cannot export: the probe's error and text */
	f = facts(true, -EOPNOTSUPP, 0);
	T_ASSERT_EQ(-EOPNOTSUPP, dm_pool_choose("cuda:1", &f, &c));
	has(c.why, "CUDA device 1");
	has(c.why, "open kernel modules");
	has(c.why, "NCCL_DEVMEM_POOL_MEM=host");
}

static void bad_specs(void)
{
	static const char *bad[] = { "gpu", "cuda:", "cuda:x", "cuda:-1", "cuda0", "cuda:1:2",
				     "hip", "Host", "auto ", "cuda:99999" };
	struct dm_pool_facts f = facts(true, 0, 0);
	struct dm_pool_choice c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (dm_pool_choose(bad[i], &f, &c) != -EINVAL)
			T_FAIL("spec \"%s\" was accepted", bad[i]);
		has(c.why, "expected auto, host, cuda or cuda:N");
	}
}

static void device(void)
{
	T_ASSERT_EQ(4, dm_pool_device("cuda:4", 1));
	T_ASSERT_EQ(1, dm_pool_device("cuda", 1));
	T_ASSERT_EQ(0, dm_pool_device("cuda", -1));
	T_ASSERT_EQ(1, dm_pool_device("auto", 1));
	T_ASSERT_EQ(0, dm_pool_device("host", -1));
}

int main(void)
{
	choice_auto();
	choice_host();
	choice_cuda();
	bad_specs();
	device();
	t_log("PASS pool");
	return T_EXIT_PASS;
}
