// SPDX-License-Identifier: MIT
/*
 * A fake libhsa-runtime64.so.1 for GPU-less tests of the hip backend.
 * Agents: one CPU, then GPUD_FAKE_DEVICES GPUs (default 1), each with a
 * fine-grained and a coarse-grained global pool (we must pick the latter).
 *
 * Environment, read on every call:
 *   GPUD_FAKE_FAIL=hsa_name    that function fails with HSA_STATUS_ERROR
 *   GPUD_FAKE_DMABUF_ATTR=0    HSA_AMD_SYSTEM_INFO_DMABUF_SUPPORTED is false
 *   GPUD_FAKE_DMABUF_OFFSET=N  the export reports offset N
 * Built with -DFAKE_HSA_OLD it lacks the dma-buf entry points (ROCm < 5.6).
 * Counters: fake_hsa_live_allocs(), fake_hsa_init_refs(), fake_hsa_wrong_pool().
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef int hsa_status_t;
typedef struct { uint64_t handle; } handle_t;

#define ST_ERROR 0x1000
#define POOL_FINE 1
#define POOL_COARSE 2

static int live_allocs, init_refs, wrong_pool;

EXPORT int fake_hsa_live_allocs(void) { return live_allocs; }
EXPORT int fake_hsa_init_refs(void) { return init_refs; }
EXPORT int fake_hsa_wrong_pool(void) { return wrong_pool; }

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : dflt;
}

static bool fail(const char *fn)
{
	const char *v = getenv("GPUD_FAKE_FAIL");

	return v && !strcmp(v, fn);
}

#define FAIL_IF(fn)                        \
	do {                               \
		if (fail(fn))              \
			return ST_ERROR;   \
	} while (0)

EXPORT hsa_status_t hsa_init(void) { FAIL_IF("hsa_init"); init_refs++; return 0; }

EXPORT hsa_status_t hsa_shut_down(void)
{
	FAIL_IF("hsa_shut_down");
	if (init_refs <= 0)
		return 0x100B;
	init_refs--;
	return 0;
}

EXPORT hsa_status_t hsa_status_string(hsa_status_t s, const char **str)
{
	*str = "HSA_STATUS_ERROR: fake runtime failure as requested";
	return 0;
}

EXPORT hsa_status_t hsa_system_get_info(int attr, void *v)
{
	FAIL_IF("hsa_system_get_info");
	if (attr != 0x204)
		return 0x1001;
	*(bool *)v = env_int("GPUD_FAKE_DMABUF_ATTR", 1);
	return 0;
}

EXPORT hsa_status_t hsa_iterate_agents(hsa_status_t (*cb)(handle_t, void *), void *data)
{
	int n = env_int("GPUD_FAKE_DEVICES", 1);
	hsa_status_t s;

	FAIL_IF("hsa_iterate_agents");
	s = cb((handle_t){ 1 }, data);	/* the CPU */
	for (int i = 0; !s && i < n; i++)
		s = cb((handle_t){ 100 + (uint64_t)i }, data);
	return s;
}

EXPORT hsa_status_t hsa_agent_get_info(handle_t agent, int attr, void *v)
{
	FAIL_IF("hsa_agent_get_info");
	if (attr == 17)
		*(int *)v = agent.handle >= 100 ? 1 : 0;
	else if (attr == 0)
		strcpy(v, "gfx-fake");
	else
		return 0x1001;
	return 0;
}

EXPORT hsa_status_t hsa_amd_agent_iterate_memory_pools(handle_t agent,
							hsa_status_t (*cb)(handle_t, void *),
							void *data)
{
	hsa_status_t s;

	FAIL_IF("hsa_amd_agent_iterate_memory_pools");
	s = cb((handle_t){ POOL_FINE }, data);
	if (!s)
		s = cb((handle_t){ POOL_COARSE }, data);
	return s;
}

EXPORT hsa_status_t hsa_amd_memory_pool_get_info(handle_t pool, int attr, void *v)
{
	FAIL_IF("hsa_amd_memory_pool_get_info");
	switch (attr) {
	case 0: *(uint32_t *)v = 0; break;	/* GLOBAL */
	case 1: *(uint32_t *)v = pool.handle == POOL_COARSE ? 4 : 2; break;
	case 5: *(bool *)v = true; break;
	case 6: *(size_t *)v = 4096; break;
	default: return 0x1001;
	}
	return 0;
}

EXPORT hsa_status_t hsa_amd_memory_pool_allocate(handle_t pool, size_t size, uint32_t flags,
						 void **p)
{
	FAIL_IF("hsa_amd_memory_pool_allocate");
	if (pool.handle != POOL_COARSE)
		wrong_pool++;
	*p = aligned_alloc(4096, size);
	if (!*p)
		return 0x1008;
	live_allocs++;
	return 0;
}

EXPORT hsa_status_t hsa_amd_memory_pool_free(void *p)
{
	FAIL_IF("hsa_amd_memory_pool_free");
	free(p);
	live_allocs--;
	return 0;
}

#ifndef FAKE_HSA_OLD
EXPORT hsa_status_t hsa_amd_portable_export_dmabuf(const void *p, size_t size, int *fd,
						   uint64_t *off)
{
	int f;

	FAIL_IF("hsa_amd_portable_export_dmabuf");
	f = memfd_create("fake-hsa-dmabuf", MFD_CLOEXEC);
	if (f < 0)
		return ST_ERROR;
	if (ftruncate(f, (off_t)size)) {
		close(f);
		return ST_ERROR;
	}
	*fd = f;
	*off = (uint64_t)env_int("GPUD_FAKE_DMABUF_OFFSET", 0);
	return 0;
}

EXPORT hsa_status_t hsa_amd_portable_close_dmabuf(int fd)
{
	FAIL_IF("hsa_amd_portable_close_dmabuf");
	return close(fd) ? 0x1001 : 0;
}
#endif

EXPORT hsa_status_t hsa_memory_copy(void *dst, const void *src, size_t n)
{
	FAIL_IF("hsa_memory_copy");
	memcpy(dst, src, n);
	return 0;
}
