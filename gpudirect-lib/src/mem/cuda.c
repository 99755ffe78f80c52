// SPDX-License-Identifier: MIT
/*
 * NVIDIA GPU memory exported as a dma-buf (cuMemGetHandleForAddressRange).
 *
 * The driver comes from the project's one loader (cuda/cudrv.h: libcuda.so.1
 * at run time, entry points at explicit ABI versions).
 *
 * Copies (gpud_mem_read/write) run on a non-blocking stream of the buffer's
 * own and wait for that stream alone: a synchronous cuMemcpy would run on the
 * legacy default stream, which waits for every blocking stream of the
 * context, and a caller's NCCL kernel on such a stream may be spinning until
 * this very copy's receive completes.
 *
 * Allocation: cuMemAlloc, rounded up to 2 MiB, rather than the VMM calls
 * (cuMemCreate/cuMemMap). Why: cuMemAlloc memory qualifies for dma-buf export
 * and GPUDirect RDMA on every device that can export at all, with no
 * gpuDirectRDMACapable/attribute-110 special case; allocations of 2 MiB and
 * more get their own 2 MiB-aligned VA range, so the export (which covers
 * exactly [dptr, dptr + size)) never touches a neighbour; it is one call to
 * undo instead of four; and CU_POINTER_ATTRIBUTE_SYNC_MEMOPS, which we need so
 * a copy never overtakes the NIC's writes, is defined for it.
 */
#include "cuda/cudrv.h"
#include "mem_internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* NVML (nvml.h): just BAR1. */
typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
struct nvml_bar1 {
	unsigned long long total, free, used;
};

#define CUDA_ALIGN (2u << 20)

struct cuda_mem {
	const struct gpud_cudrv *api;
	CUdevice dev;
	CUcontext ctx;
	CUstream stream;	/* ours, non-blocking: copies never queue behind NCCL's kernel */
	bool flush_before_read;
};

static int cuda_load(const struct gpud_cudrv **out, char *why, size_t len)
{
	return gpud_cudrv_get(out, why, len);
}

/* "cuda:0: cuMemAlloc(2097152): CUDA_ERROR_OUT_OF_MEMORY: out of memory" into @why. */
static int cu_why(const struct gpud_cudrv *api, CUresult r, int device, const char *call,
		  char *why, size_t len)
{
	const char *name = NULL, *str = NULL;

	if (api->GetErrorName(r, &name) != CUDA_SUCCESS || !name)
		name = "unknown CUresult";
	if (api->GetErrorString(r, &str) != CUDA_SUCCESS || !str)
		str = "no description";
	return gpud_why(gpud_cudrv_errno(r), why, len, "cuda:%d: %s: %s (%d): %s", device,
			    call, name, r, str);
}

static int cu_fail(const struct gpud_cudrv *api, CUresult r, int device, const char *call)
{
	char why[GPUD_ERRMSG_MAX];
	int ret = cu_why(api, r, device, call, why, sizeof(why));

	return gpud_err(ret, "%s", why);
}

/*
 * cuInit, range check, cuDeviceGet and the dma-buf attribute: shared by
 * probe and create. @need_dmabuf false skips only the attribute verdict.
 */
static int cuda_open_device(const struct gpud_cudrv *api, int device, bool need_dmabuf,
			    CUdevice *out, char *why, size_t len)
{
	char name[128] = "";
	int count = 0, attr = 0;
	CUdevice dev;
	CUresult r;

	r = api->Init(0);
	if (r == CUDA_ERROR_NO_DEVICE)
		return gpud_why(-ENODEV, why, len,
				    "cuda:%d: no NVIDIA GPU visible to this process (cuInit: CUDA_ERROR_NO_DEVICE); check nvidia-smi and CUDA_VISIBLE_DEVICES",
				    device);
	if (r)
		return cu_why(api, r, device, "cuInit", why, len);
	r = api->DeviceGetCount(&count);
	if (r)
		return cu_why(api, r, device, "cuDeviceGetCount", why, len);
	if (device >= count)
		return gpud_why(-ENODEV, why, len,
				    "cuda:%d: no such device: %d CUDA device(s) visible (0..%d)", device,
				    count, count - 1);
	r = api->DeviceGet(&dev, device);
	if (r)
		return cu_why(api, r, device, "cuDeviceGet", why, len);
	if (api->DeviceGetName(name, sizeof(name) - 1, dev) != CUDA_SUCCESS)
		strcpy(name, "?");
	r = api->DeviceGetAttribute(&attr, CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED, dev);
	if (r)
		return cu_why(api, r, device, "cuDeviceGetAttribute(DMA_BUF_SUPPORTED)", why, len);
	if (!attr && need_dmabuf)
		return gpud_why(-EOPNOTSUPP, why, len,
				    "cuda:%d (%s): the driver cannot export dma-bufs (CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED = 0): needs NVIDIA's open kernel modules (R515+; default since R560) on a Turing or newer GPU; the proprietary module reports 0",
				    device, name);
	*out = dev;
	return gpud_why(0, why, len, "cuda:%d (%s): usable", device, name);
}

/* ---- BAR1 headroom through NVML, best effort, probe only ---- */

static void nvml_bar1_text(const struct gpud_cudrv *api, CUdevice dev, char *buf, size_t len)
{
	nvmlReturn_t (*init)(void), (*shutdown)(void);
	nvmlReturn_t (*by_bus)(const char *, nvmlDevice_t *);
	nvmlReturn_t (*bar1)(nvmlDevice_t, struct nvml_bar1 *);
	const char *path = getenv("GPUD_LIBNVML");
	struct nvml_bar1 b;
	nvmlDevice_t nd;
	char bus[32];
	void *lib;

	if (!path || !*path)
		path = "libnvidia-ml.so.1";
	snprintf(buf, len, "BAR1 headroom unknown (no %s)", path);
	if (api->DeviceGetPCIBusId(bus, sizeof(bus), dev) != CUDA_SUCCESS)
		return;
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return;
	*(void **)&init = dlsym(lib, "nvmlInit_v2");
	*(void **)&shutdown = dlsym(lib, "nvmlShutdown");
	*(void **)&by_bus = dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2");
	*(void **)&bar1 = dlsym(lib, "nvmlDeviceGetBAR1MemoryInfo");
	if (!init || !shutdown || !by_bus || !bar1) {
		snprintf(buf, len, "BAR1 headroom unknown (%s lacks the BAR1 query)", path);
		goto out_close;
	}
	if (init()) {
		snprintf(buf, len, "BAR1 headroom unknown (nvmlInit failed)");
		goto out_close;
	}
	/* NVML and CUDA may number devices differently: match by PCI bus id. */
	if (!by_bus(bus, &nd) && !bar1(nd, &b))
		snprintf(buf, len,
			 "BAR1 free %llu of %llu MiB: NIC bindings map the buffer through BAR1, so bound memory cannot exceed it",
			 b.free >> 20, b.total >> 20);
	else
		snprintf(buf, len, "BAR1 headroom unknown (NVML has no BAR1 data for %s)", bus);
	shutdown();
out_close:
	dlclose(lib);
}

static int cuda_probe(int device, char *why, size_t len)
{
	const struct gpud_cudrv *api;
	char bar1[192];
	CUdevice dev;
	int ret, n;

	ret = cuda_load(&api, why, len);
	if (ret)
		return ret;
	ret = cuda_open_device(api, device, true, &dev, why, len);
	if (ret || !why || !len)
		return ret;
	nvml_bar1_text(api, dev, bar1, sizeof(bar1));
	n = (int)strlen(why);
	if ((size_t)n < len)
		snprintf(why + n, len - (size_t)n, "; %s", bar1);
	return 0;
}

/* ---- create, copies, destroy ---- */

/* Exports [dptr, dptr + size); PCIe mapping type first, plain if refused. */
static int cuda_export(const struct gpud_cudrv *api, int device, CUdeviceptr dptr, size_t size,
		       int *out_fd)
{
	int fd = -1;
	CUresult r;

	/*
	 * The PCIe mapping type (CUDA 12.8+) only exists on cache-coherent
	 * platforms; elsewhere the driver says INVALID_VALUE or NOT_SUPPORTED
	 * and the default mapping is the right one.
	 */
	r = api->MemGetHandleForAddressRange(&fd, dptr, size, CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD,
					      CU_MEM_RANGE_FLAG_DMA_BUF_MAPPING_TYPE_PCIE);
	if (r == CUDA_ERROR_INVALID_VALUE || r == CUDA_ERROR_NOT_SUPPORTED) {
		fd = -1;
		r = api->MemGetHandleForAddressRange(&fd, dptr, size,
						      CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0);
	}
	if (r)
		return cu_fail(api, r, device, "cuMemGetHandleForAddressRange(DMA_BUF_FD)");
	if (fd < 0)
		return gpud_err(-EIO, "cuda:%d: cuMemGetHandleForAddressRange returned no fd", device);
	*out_fd = fd;
	return 0;
}

static int cuda_create(struct gpud_mem *mem, size_t req)
{
	bool export = !(mem->opts.flags & GPUD_MEM_F_NO_DMABUF);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int device = mem->opts.device;
	const struct gpud_cudrv *api;
	unsigned int sync_memops = 1;
	char why[GPUD_ERRMSG_MAX];
	struct cuda_mem *cm;
	CUdeviceptr dptr = 0;
	int ordering = 0, fd = -1, ret;
	bool pushed = false;
	CUcontext cur;
	size_t size;
	CUresult r;

	size = gpud_mem_round_up(req, CUDA_ALIGN);
	if (!size)
		return gpud_err(-E2BIG, "cuda:%d: %zu bytes is too large", device, req);
	ret = cuda_load(&api, why, sizeof(why));
	if (ret)
		return gpud_err(ret, "%s", why);
	cm = calloc(1, sizeof(*cm));
	if (!cm)
		return gpud_err(-ENOMEM, "cuda: out of memory");
	cm->api = api;
	ret = cuda_open_device(api, device, export, &cm->dev, why, sizeof(why));
	if (ret) {
		gpud_err(ret, "%s", why);
		goto err_free_cm;
	}
	/* Without native ordering, reads must flush the NIC's writes first. */
	if (api->DeviceGetAttribute(&ordering, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WRITES_ORDERING,
				    cm->dev) != CUDA_SUCCESS)
		ordering = 0;
	cm->flush_before_read = ordering < CU_GPU_DIRECT_RDMA_WRITES_ORDERING_OWNER &&
				api->FlushGPUDirectRDMAWrites;

	r = api->DevicePrimaryCtxRetain(&cm->ctx, cm->dev);
	if (r) {
		ret = cu_fail(api, r, device, "cuDevicePrimaryCtxRetain");
		goto err_free_cm;
	}
	r = api->CtxPushCurrent(cm->ctx);
	if (r) {
		ret = cu_fail(api, r, device, "cuCtxPushCurrent");
		goto err_release;
	}
	pushed = true;
	r = api->MemAlloc(&dptr, size);
	if (r) {
		ret = cu_fail(api, r, device, "cuMemAlloc");
		goto err_pop;
	}
	/* dma-buf export needs host-page alignment (64 KiB pages on some arm64). */
	if (dptr % page) {
		ret = gpud_err(-EINVAL, "cuda:%d: cuMemAlloc returned 0x%llx, not aligned to the %zu-byte page dma-buf export needs",
			       device, dptr, page);
		goto err_mem_free;
	}
	r = api->StreamCreate(&cm->stream, CU_STREAM_NON_BLOCKING);
	if (r) {
		ret = cu_fail(api, r, device, "cuStreamCreate(NON_BLOCKING)");
		goto err_mem_free;
	}
	/* Copies must not overtake DMA already issued to this range. */
	r = api->PointerSetAttribute(&sync_memops, CU_POINTER_ATTRIBUTE_SYNC_MEMOPS, dptr);
	if (r) {
		ret = cu_fail(api, r, device, "cuPointerSetAttribute(SYNC_MEMOPS)");
		goto err_stream;
	}
	if (export) {
		ret = cuda_export(api, device, dptr, size, &fd);
		if (ret)
			goto err_stream;
	}
	r = api->CtxPopCurrent(&cur);
	if (r) {
		/* Still current: freeing below works; do not pop twice. */
		pushed = false;
		ret = cu_fail(api, r, device, "cuCtxPopCurrent");
		goto err_close_fd;
	}

	mem->size = size;
	mem->dev_ptr = dptr;
	mem->dmabuf_fd = fd;
	mem->priv = cm;
	return 0;

err_close_fd:
	if (fd >= 0)
		close(fd);
err_stream:
	api->StreamDestroy(cm->stream);
err_mem_free:
	api->MemFree(dptr);
err_pop:
	if (pushed)
		api->CtxPopCurrent(&cur);
err_release:
	api->DevicePrimaryCtxRelease(cm->dev);
err_free_cm:
	free(cm);
	return ret;
}

/* A dma-buf of [off, off + len) of the allocation, in its own context. */
static int cuda_export_range(struct gpud_mem *mem, size_t off, size_t len, int *out_fd)
{
	struct cuda_mem *cm = mem->priv;
	const struct gpud_cudrv *api = cm->api;
	CUcontext cur;
	CUresult r;
	int ret;

	r = api->CtxPushCurrent(cm->ctx);
	if (r)
		return cu_fail(api, r, mem->opts.device, "cuCtxPushCurrent");
	ret = cuda_export(api, mem->opts.device, (CUdeviceptr)(mem->dev_ptr + off), len, out_fd);
	api->CtxPopCurrent(&cur);
	return ret;
}

static void cuda_destroy(struct gpud_mem *mem)
{
	struct cuda_mem *cm = mem->priv;
	const struct gpud_cudrv *api = cm->api;
	CUcontext cur;
	CUresult r;

	/* The dma-buf holds the pages until its last user lets go: close first. */
	if (mem->dmabuf_fd >= 0)
		close(mem->dmabuf_fd);
	r = api->CtxPushCurrent(cm->ctx);
	if (r == CUDA_SUCCESS) {
		api->StreamDestroy(cm->stream);
		/* synchronises the device: the caller has stopped every kernel using it */
		r = api->MemFree(mem->dev_ptr);
		if (r)
			gpud_log(GPUD_LOG_WARN, "cuda:%d: cuMemFree failed (%d)",
				 mem->opts.device, r);
		api->CtxPopCurrent(&cur);
	} else {
		gpud_log(GPUD_LOG_WARN, "cuda:%d: cuCtxPushCurrent failed (%d); device memory leaked",
			 mem->opts.device, r);
	}
	api->DevicePrimaryCtxRelease(cm->dev);
	free(cm);
}

/*
 * One copy in the buffer's context, on its own stream, waited for on that
 * stream alone. Each thread pushes and pops on its own, so concurrent copies
 * on one gpud_mem are fine (the stream orders them).
 */
static int cuda_copy(struct gpud_mem *mem, bool to_device, size_t off, void *host, size_t len)
{
	struct cuda_mem *cm = mem->priv;
	const struct gpud_cudrv *api = cm->api;
	int device = mem->opts.device;
	CUdeviceptr d = mem->dev_ptr + off;
	CUcontext cur;
	int ret = 0;
	CUresult r;

	r = api->CtxPushCurrent(cm->ctx);
	if (r)
		return cu_fail(api, r, device, "cuCtxPushCurrent");
	if (to_device) {
		/* pageable @host: CUDA stages it; the stream wait covers the DMA */
		r = api->MemcpyHtoDAsync(d, host, len, cm->stream);
		if (r)
			ret = cu_fail(api, r, device, "cuMemcpyHtoDAsync");
	} else {
		/* A NIC's writes may still sit in the PCIe path: flush them first. */
		if (cm->flush_before_read) {
			r = api->FlushGPUDirectRDMAWrites(CU_FLUSH_GPU_DIRECT_RDMA_WRITES_TARGET_CURRENT_CTX,
							  CU_FLUSH_GPU_DIRECT_RDMA_WRITES_TO_OWNER);
			if (r)
				ret = cu_fail(api, r, device, "cuFlushGPUDirectRDMAWrites");
		}
		if (!ret) {
			r = api->MemcpyDtoHAsync(host, d, len, cm->stream);
			if (r)
				ret = cu_fail(api, r, device, "cuMemcpyDtoHAsync");
		}
	}
	if (!ret) {
		r = api->StreamSynchronize(cm->stream);
		if (r)
			ret = cu_fail(api, r, device, "cuStreamSynchronize(own stream)");
	}
	r = api->CtxPopCurrent(&cur);
	if (r && !ret)
		ret = cu_fail(api, r, device, "cuCtxPopCurrent");
	return ret;
}

static int cuda_write(struct gpud_mem *mem, size_t off, const void *src, size_t len)
{
	return cuda_copy(mem, true, off, (void *)src, len);
}

static int cuda_read(struct gpud_mem *mem, size_t off, void *dst, size_t len)
{
	return cuda_copy(mem, false, off, dst, len);
}

static int cuda_placement(const struct gpud_mem *mem, enum gpud_mem_placement *where,
			  char *why, size_t len)
{
	/* NVIDIA's exporter is static and pins VRAM behind BAR1: never moves. */
	*where = GPUD_MEM_PLACE_DEVICE;
	gpud_why(0, why, len, "NVIDIA exports VRAM through BAR1 and never migrates it");
	return 0;
}

const struct gpud_mem_ops gpud_mem_cuda_ops = {
	.name = "cuda",
	.probe = cuda_probe,
	.create = cuda_create,
	.destroy = cuda_destroy,
	.write = cuda_write,
	.read = cuda_read,
	.placement = cuda_placement,
	.export_range = cuda_export_range,
};
