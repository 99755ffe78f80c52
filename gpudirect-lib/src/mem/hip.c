// SPDX-License-Identifier: MIT
/*
 * AMD GPU memory through the ROCm HSA runtime (ROCr), exported as a dma-buf
 * with hsa_amd_portable_export_dmabuf (ROCm 5.6+, KFD ioctl 1.12).
 *
 * libhsa-runtime64.so.1 is dlopen()ed; the few types and values below come
 * from ROCR-Runtime's hsa.h and hsa_ext_amd.h. We use HSA rather than HIP
 * because HIP sits on top of it and adds nothing we need.
 *
 * Each gpud_mem is its own allocation from the GPU's coarse-grained global
 * pool: the exported fd covers the whole buffer object, so a sub-allocation
 * would hand the NIC our neighbours' memory. We insist on offset 0.
 *
 * Hazard: devmem attaches the dma-buf without peer-to-peer, so amdgpu
 * migrates a VRAM buffer to GTT (system RAM) when it is bound. GPU reads still
 * see the data; only placement tells. hip_placement() reads amdgpu's
 * per-process memory counters for that.
 */
#include "dl.h"
#include "mem_internal.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the slice of hsa.h / hsa_ext_amd.h we use ---- */
typedef int hsa_status_t;
typedef struct { uint64_t handle; } hsa_agent_t;
typedef struct { uint64_t handle; } hsa_amd_memory_pool_t;

enum {
	HSA_STATUS_SUCCESS = 0x0,
	HSA_STATUS_INFO_BREAK = 0x1,
	HSA_STATUS_ERROR = 0x1000,
	HSA_STATUS_ERROR_INVALID_ARGUMENT = 0x1001,
	HSA_STATUS_ERROR_INVALID_ALLOCATION = 0x1003,
	HSA_STATUS_ERROR_INVALID_AGENT = 0x1004,
	HSA_STATUS_ERROR_OUT_OF_RESOURCES = 0x1008,
	HSA_STATUS_ERROR_NOT_INITIALIZED = 0x100B,
};
#define HSA_AGENT_INFO_NAME 0
#define HSA_AGENT_INFO_DEVICE 17
#define HSA_DEVICE_TYPE_GPU 1
#define HSA_AMD_SYSTEM_INFO_DMABUF_SUPPORTED 0x204
#define HSA_AMD_SEGMENT_GLOBAL 0
#define HSA_AMD_MEMORY_POOL_INFO_SEGMENT 0
#define HSA_AMD_MEMORY_POOL_INFO_GLOBAL_FLAGS 1
#define HSA_AMD_MEMORY_POOL_INFO_RUNTIME_ALLOC_ALLOWED 5
#define HSA_AMD_MEMORY_POOL_INFO_RUNTIME_ALLOC_GRANULE 6
#define HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_COARSE_GRAINED 4

typedef hsa_status_t (*hsa_agent_cb)(hsa_agent_t, void *);
typedef hsa_status_t (*hsa_pool_cb)(hsa_amd_memory_pool_t, void *);

struct hsa_api {
	void *lib;
	hsa_status_t (*init)(void);
	hsa_status_t (*shut_down)(void);
	hsa_status_t (*status_string)(hsa_status_t, const char **);
	hsa_status_t (*system_get_info)(int, void *);
	hsa_status_t (*iterate_agents)(hsa_agent_cb, void *);
	hsa_status_t (*agent_get_info)(hsa_agent_t, int, void *);
	hsa_status_t (*agent_iterate_memory_pools)(hsa_agent_t, hsa_pool_cb, void *);
	hsa_status_t (*pool_get_info)(hsa_amd_memory_pool_t, int, void *);
	hsa_status_t (*pool_allocate)(hsa_amd_memory_pool_t, size_t, uint32_t, void **);
	hsa_status_t (*pool_free)(void *);
	hsa_status_t (*export_dmabuf)(const void *, size_t, int *, uint64_t *);
	hsa_status_t (*close_dmabuf)(int);
	hsa_status_t (*memory_copy)(void *, const void *, size_t);
};

static const struct gpud_dl_sym hsa_syms[] = {
#define SYM(n, f, note) { n, offsetof(struct hsa_api, f), false, note }
	SYM("hsa_init", init, ""),
	SYM("hsa_shut_down", shut_down, ""),
	SYM("hsa_status_string", status_string, ""),
	SYM("hsa_system_get_info", system_get_info, ""),
	SYM("hsa_iterate_agents", iterate_agents, ""),
	SYM("hsa_agent_get_info", agent_get_info, ""),
	SYM("hsa_amd_agent_iterate_memory_pools", agent_iterate_memory_pools, ""),
	SYM("hsa_amd_memory_pool_get_info", pool_get_info, ""),
	SYM("hsa_amd_memory_pool_allocate", pool_allocate, ""),
	SYM("hsa_amd_memory_pool_free", pool_free, ""),
	SYM("hsa_amd_portable_export_dmabuf", export_dmabuf, " (ROCm 5.6 or newer has it)"),
	SYM("hsa_amd_portable_close_dmabuf", close_dmabuf, " (ROCm 5.6 or newer has it)"),
	SYM("hsa_memory_copy", memory_copy, ""),
#undef SYM
};

static struct gpud_dl_lib hsa_lib =
	GPUD_DL_LIB("hip", "GPUD_LIBHSA", "libhsa-runtime64.so.1",
		    "install ROCm's HSA runtime (rocm-hip-runtime or hsa-rocr)",
		    hsa_syms, struct hsa_api, NULL);

struct hip_mem {
	const struct hsa_api *api;
	void *ptr;
	struct gpud_amdgpu_counters at_export;
};

static int hsa_load(const struct hsa_api **out, char *why, size_t len)
{
	return gpud_dl_load(&hsa_lib, (const void **)out, why, len);
}

static int hsa_errno(hsa_status_t s)
{
	switch (s) {
	case HSA_STATUS_ERROR_INVALID_ARGUMENT:
		return -EINVAL;
	case HSA_STATUS_ERROR_OUT_OF_RESOURCES:
	case HSA_STATUS_ERROR_INVALID_ALLOCATION:
		return -ENOMEM;
	case HSA_STATUS_ERROR_NOT_INITIALIZED:
	case HSA_STATUS_ERROR_INVALID_AGENT:
		return -ENODEV;
	default:
		return -EIO;
	}
}

static int hsa_why(const struct hsa_api *api, hsa_status_t s, int device, const char *call,
		   char *why, size_t len)
{
	const char *str = NULL;

	if (api->status_string(s, &str) != HSA_STATUS_SUCCESS || !str)
		str = "no description";
	return gpud_why(hsa_errno(s), why, len, "hip:%d: %s: 0x%x: %s", device, call,
			    (unsigned int)s, str);
}

static int hsa_fail(const struct hsa_api *api, hsa_status_t s, int device, const char *call)
{
	char why[GPUD_ERRMSG_MAX];
	int ret = hsa_why(api, s, device, call, why, sizeof(why));

	return gpud_err(ret, "%s", why);
}

/* ---- finding the GPU and its pool ---- */

struct agent_walk {
	const struct hsa_api *api;
	int want, seen;
	hsa_agent_t agent;
	hsa_status_t err;
};

static hsa_status_t agent_cb(hsa_agent_t agent, void *data)
{
	struct agent_walk *w = data;
	int type = -1;
	hsa_status_t s;

	s = w->api->agent_get_info(agent, HSA_AGENT_INFO_DEVICE, &type);
	if (s) {
		w->err = s;
		return s;
	}
	if (type != HSA_DEVICE_TYPE_GPU)
		return HSA_STATUS_SUCCESS;
	if (w->seen++ == w->want) {
		w->agent = agent;
		return HSA_STATUS_INFO_BREAK;
	}
	return HSA_STATUS_SUCCESS;
}

struct pool_walk {
	const struct hsa_api *api;
	bool found;
	hsa_amd_memory_pool_t pool;
	hsa_status_t err;
};

static hsa_status_t pool_cb(hsa_amd_memory_pool_t pool, void *data)
{
	struct pool_walk *w = data;
	uint32_t segment = ~0u, flags = 0;
	bool alloc_ok = false;
	hsa_status_t s;

	s = w->api->pool_get_info(pool, HSA_AMD_MEMORY_POOL_INFO_SEGMENT, &segment);
	if (!s && segment == HSA_AMD_SEGMENT_GLOBAL)
		s = w->api->pool_get_info(pool, HSA_AMD_MEMORY_POOL_INFO_GLOBAL_FLAGS, &flags);
	if (!s && (flags & HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_COARSE_GRAINED))
		s = w->api->pool_get_info(pool, HSA_AMD_MEMORY_POOL_INFO_RUNTIME_ALLOC_ALLOWED,
					  &alloc_ok);
	if (s) {
		w->err = s;
		return s;
	}
	if (segment == HSA_AMD_SEGMENT_GLOBAL &&
	    (flags & HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_COARSE_GRAINED) && alloc_ok) {
		w->pool = pool;
		w->found = true;
		return HSA_STATUS_INFO_BREAK;
	}
	return HSA_STATUS_SUCCESS;
}

/*
 * After hsa_init: checks dma-buf support (unless !@need_dmabuf), finds GPU
 * agent @device and its coarse-grained VRAM pool.
 */
static int hip_find_pool(const struct hsa_api *api, int device, bool need_dmabuf,
			 hsa_amd_memory_pool_t *out, char *name, size_t name_len,
			 char *why, size_t len)
{
	struct agent_walk aw = { .api = api, .want = device };
	struct pool_walk pw = { .api = api };
	char agent_name[64] = "";
	bool dmabuf = false;
	hsa_status_t s;

	s = api->system_get_info(HSA_AMD_SYSTEM_INFO_DMABUF_SUPPORTED, &dmabuf);
	if (s)
		return hsa_why(api, s, device, "hsa_system_get_info(DMABUF_SUPPORTED)", why, len);
	if (!dmabuf && need_dmabuf)
		return gpud_why(-EOPNOTSUPP, why, len,
				    "hip:%d: the ROCm runtime and amdgpu driver cannot export dma-bufs (HSA_AMD_SYSTEM_INFO_DMABUF_SUPPORTED = false): needs ROCm 5.6+ and KFD ioctl 1.12 (Linux 6.2+ or ROCm's amdgpu-dkms)",
				    device);
	s = api->iterate_agents(agent_cb, &aw);
	if (aw.err)
		return hsa_why(api, aw.err, device, "hsa_agent_get_info(DEVICE)", why, len);
	if (s && s != HSA_STATUS_INFO_BREAK)
		return hsa_why(api, s, device, "hsa_iterate_agents", why, len);
	if (aw.seen <= device)
		return gpud_why(-ENODEV, why, len,
				    "hip:%d: no such device: %d AMD GPU agent(s) visible (check rocminfo, /dev/kfd permissions, ROCR_VISIBLE_DEVICES)",
				    device, aw.seen);
	if (api->agent_get_info(aw.agent, HSA_AGENT_INFO_NAME, agent_name) != HSA_STATUS_SUCCESS)
		strcpy(agent_name, "?");
	agent_name[sizeof(agent_name) - 1] = '\0';
	s = api->agent_iterate_memory_pools(aw.agent, pool_cb, &pw);
	if (pw.err)
		return hsa_why(api, pw.err, device, "hsa_amd_memory_pool_get_info", why, len);
	if (s && s != HSA_STATUS_INFO_BREAK)
		return hsa_why(api, s, device, "hsa_amd_agent_iterate_memory_pools", why, len);
	if (!pw.found)
		return gpud_why(-ENODEV, why, len,
				    "hip:%d (%s): no coarse-grained global memory pool to allocate from",
				    device, agent_name);
	*out = pw.pool;
	snprintf(name, name_len, "%s", agent_name);
	return 0;
}

static int hip_probe(int device, char *why, size_t len)
{
	const struct hsa_api *api;
	hsa_amd_memory_pool_t pool;
	char name[64];
	hsa_status_t s;
	int ret;

	ret = hsa_load(&api, why, len);
	if (ret)
		return ret;
	s = api->init();
	if (s)
		return hsa_why(api, s, device, "hsa_init (is /dev/kfd there and accessible?)", why,
			       len);
	ret = hip_find_pool(api, device, true, &pool, name, sizeof(name), why, len);
	if (!ret)
		gpud_why(0, why, len,
			     "hip:%d (%s): usable; caution: devmem attaches without peer-to-peer and amdgpu may migrate the buffer to system RAM (GTT) when it is bound: check gpud_mem_placement() after binding",
			     device, name);
	api->shut_down();
	return ret;
}

/* ---- placement: amdgpu fdinfo counters of this process's render nodes ---- */

static int hip_placement(const struct gpud_mem *mem, enum gpud_mem_placement *where,
			 char *why, size_t len)
{
	const struct hip_mem *hm = mem->priv;
	struct gpud_amdgpu_counters now;

	/* ROCr's render-node fd is not ours to name: sum every amdgpu one. */
	gpud_amdgpu_counters_read(&now, -1);
	*where = gpud_amdgpu_placement(&hm->at_export, &now, mem->size, why, len);
	return 0;
}

/* ---- create, copies, destroy ---- */

static int hip_create(struct gpud_mem *mem, size_t req)
{
	bool export = !(mem->opts.flags & GPUD_MEM_F_NO_DMABUF);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int device = mem->opts.device;
	const struct hsa_api *api;
	hsa_amd_memory_pool_t pool;
	char why[GPUD_ERRMSG_MAX];
	size_t granule = 0, size;
	struct hip_mem *hm;
	uint64_t dmabuf_off = 0;
	char name[64];
	int fd = -1, ret;
	hsa_status_t s;

	ret = hsa_load(&api, why, sizeof(why));
	if (ret)
		return gpud_err(ret, "%s", why);
	hm = calloc(1, sizeof(*hm));
	if (!hm)
		return gpud_err(-ENOMEM, "hip: out of memory");
	hm->api = api;
	s = api->init();
	if (s) {
		ret = hsa_fail(api, s, device, "hsa_init (is /dev/kfd there and accessible?)");
		goto err_free_hm;
	}
	ret = hip_find_pool(api, device, export, &pool, name, sizeof(name), why, sizeof(why));
	if (ret) {
		gpud_err(ret, "%s", why);
		goto err_shut_down;
	}
	s = api->pool_get_info(pool, HSA_AMD_MEMORY_POOL_INFO_RUNTIME_ALLOC_GRANULE, &granule);
	if (s) {
		ret = hsa_fail(api, s, device, "hsa_amd_memory_pool_get_info(ALLOC_GRANULE)");
		goto err_shut_down;
	}
	/* dma-buf offsets and sizes are in pages; the pool may want more. */
	if (granule < page || (granule & (granule - 1)))
		granule = page;
	size = gpud_mem_round_up(req, granule);
	if (!size) {
		ret = gpud_err(-E2BIG, "hip:%d: %zu bytes is too large", device, req);
		goto err_shut_down;
	}
	s = api->pool_allocate(pool, size, 0, &hm->ptr);
	if (s) {
		ret = hsa_fail(api, s, device, "hsa_amd_memory_pool_allocate");
		goto err_shut_down;
	}
	if (export) {
		s = api->export_dmabuf(hm->ptr, size, &fd, &dmabuf_off);
		if (s) {
			ret = hsa_fail(api, s, device, "hsa_amd_portable_export_dmabuf");
			goto err_pool_free;
		}
		/* Offset N of the fd must be offset N of ours, and nobody else's. */
		if (dmabuf_off) {
			ret = gpud_err(-EINVAL, "hip:%d: the dma-buf starts %llu bytes before our buffer (a shared buffer object); refusing to hand the NIC memory that is not ours",
				       device, (unsigned long long)dmabuf_off);
			goto err_close_dmabuf;
		}
		gpud_amdgpu_counters_read(&hm->at_export, -1);
	}

	mem->size = size;
	mem->dev_ptr = (uint64_t)(uintptr_t)hm->ptr;
	mem->dmabuf_fd = fd;
	mem->priv = hm;
	return 0;

err_close_dmabuf:
	api->close_dmabuf(fd);
err_pool_free:
	api->pool_free(hm->ptr);
err_shut_down:
	api->shut_down();
err_free_hm:
	free(hm);
	return ret;
}

static void hip_destroy(struct gpud_mem *mem)
{
	struct hip_mem *hm = mem->priv;
	const struct hsa_api *api = hm->api;
	hsa_status_t s;

	if (mem->dmabuf_fd >= 0) {
		s = api->close_dmabuf(mem->dmabuf_fd);
		if (s)
			gpud_log(GPUD_LOG_WARN, "hip:%d: hsa_amd_portable_close_dmabuf: 0x%x",
				 mem->opts.device, (unsigned int)s);
	}
	s = api->pool_free(hm->ptr);
	if (s)
		gpud_log(GPUD_LOG_WARN, "hip:%d: hsa_amd_memory_pool_free: 0x%x",
			 mem->opts.device, (unsigned int)s);
	api->shut_down();
	free(hm);
}

static int hip_write(struct gpud_mem *mem, size_t off, const void *src, size_t len)
{
	struct hip_mem *hm = mem->priv;
	hsa_status_t s = hm->api->memory_copy((char *)hm->ptr + off, src, len);

	return s ? hsa_fail(hm->api, s, mem->opts.device, "hsa_memory_copy (to device)") : 0;
}

static int hip_read(struct gpud_mem *mem, size_t off, void *dst, size_t len)
{
	struct hip_mem *hm = mem->priv;
	hsa_status_t s = hm->api->memory_copy(dst, (char *)hm->ptr + off, len);

	return s ? hsa_fail(hm->api, s, mem->opts.device, "hsa_memory_copy (from device)") : 0;
}

const struct gpud_mem_ops gpud_mem_hip_ops = {
	.name = "hip",
	.probe = hip_probe,
	.create = hip_create,
	.destroy = hip_destroy,
	.write = hip_write,
	.read = hip_read,
	.placement = hip_placement,
};
