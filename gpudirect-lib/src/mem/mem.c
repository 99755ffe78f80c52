// SPDX-License-Identifier: MIT
/*
 * gpud_mem: one object type for every kind of memory the NIC can write into,
 * with the backend behind a const ops table (rdma-core's provider model).
 * Everything that does not depend on the driver lives here: argument and
 * bounds checks, spec parsing, and the probe cache.
 */
#include "mem_internal.h"

#include <limits.h>
#include <linux/dma-buf.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const struct gpud_mem_ops *const mem_backends[GPUD_MEM_KIND_MAX] = {
	[GPUD_MEM_HOST] = &gpud_mem_host_ops,
	[GPUD_MEM_CUDA] = &gpud_mem_cuda_ops,
	[GPUD_MEM_HIP] = &gpud_mem_hip_ops,
	[GPUD_MEM_DRM] = &gpud_mem_drm_ops,
};

static const char *const kind_names[GPUD_MEM_KIND_MAX] = {
	[GPUD_MEM_HOST] = "host",
	[GPUD_MEM_CUDA] = "cuda",
	[GPUD_MEM_HIP] = "hip",
	[GPUD_MEM_DRM] = "drm",
};

const char *gpud_mem_kind_name(enum gpud_mem_kind kind)
{
	if ((unsigned int)kind >= GPUD_MEM_KIND_MAX)
		return "?";
	return kind_names[kind];
}

static bool kind_has_device(enum gpud_mem_kind kind)
{
	return kind == GPUD_MEM_CUDA || kind == GPUD_MEM_HIP;
}

int gpud_mem_sync_copy(struct gpud_mem *mem, void *dst, const void *src, size_t len,
		       bool to_mem)
{
	__u64 dir = to_mem ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ;
	struct dma_buf_sync s = { .flags = DMA_BUF_SYNC_START | dir };

	/* Unexported memory has no device side to synchronise with. */
	if (mem->dmabuf_fd < 0) {
		memcpy(dst, src, len);
		return 0;
	}
	/* START and END must name the same direction (a bare START is EINVAL). */
	while (ioctl(mem->dmabuf_fd, DMA_BUF_IOCTL_SYNC, &s))
		if (errno != EINTR && errno != EAGAIN)
			goto err_sync;
	memcpy(dst, src, len);
	s.flags = DMA_BUF_SYNC_END | dir;
	while (ioctl(mem->dmabuf_fd, DMA_BUF_IOCTL_SYNC, &s))
		if (errno != EINTR && errno != EAGAIN)
			goto err_sync;
	return 0;

err_sync:
	return gpud_err(-errno, "%s: DMA_BUF_IOCTL_SYNC(%s%s): %s", mem->ops->name,
			s.flags & DMA_BUF_SYNC_END ? "END" : "START",
			to_mem ? "|RW" : "|READ", strerror(errno));
}

/* ---- spec parsing ---- */

static int parse_index(const char *s, int *out)
{
	char *end;
	long v;

	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v > INT_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

int gpud_mem_parse_spec(const char *spec, enum gpud_mem_kind *kind,
			struct gpud_mem_opts *opts)
{
	static const char forms[] =
		"accepted: host, cuda[:N], hip[:N], drm:/dev/dri/cardN, amdgpu[:N]";
	enum gpud_mem_kind k;
	const char *arg = NULL;
	const char *colon;
	size_t name_len;
	int device = 0;

	if (!spec || !kind || !opts)
		return gpud_err(-EINVAL, "gpud_mem_parse_spec: NULL argument");
	/* We write ->device and ->path: the caller's struct must have them. */
	if (opts->sz < offsetof(struct gpud_mem_opts, path) + sizeof(opts->path))
		return gpud_err(-EINVAL, "gpud_mem_parse_spec: opts.sz is %zu; set it to sizeof(struct gpud_mem_opts)",
				opts->sz);

	colon = strchr(spec, ':');
	name_len = colon ? (size_t)(colon - spec) : strlen(spec);
	if (colon)
		arg = colon + 1;
	/* "amdgpu[:N]": drm memory on the Nth amdgpu render node (no path). */
	if (name_len == 6 && !strncmp(spec, "amdgpu", 6)) {
		if (arg && parse_index(arg, &device))
			return gpud_err(-EINVAL, "memory spec \"%s\": \"%s\" is not an amdgpu index (%s)",
					spec, arg, forms);
		*kind = GPUD_MEM_DRM;
		opts->device = device;
		opts->path = NULL;
		return 0;
	}
	for (k = 0; k < GPUD_MEM_KIND_MAX; k++)
		if (strlen(kind_names[k]) == name_len && !strncmp(spec, kind_names[k], name_len))
			break;
	if (k == GPUD_MEM_KIND_MAX)
		return gpud_err(-EINVAL, "memory spec \"%s\": unknown kind (%s)", spec, forms);

	switch (k) {
	case GPUD_MEM_HOST:
		if (arg)
			return gpud_err(-EINVAL, "memory spec \"%s\": host takes no argument (%s)",
					spec, forms);
		break;
	case GPUD_MEM_CUDA:
	case GPUD_MEM_HIP:
		if (arg && parse_index(arg, &device))
			return gpud_err(-EINVAL, "memory spec \"%s\": \"%s\" is not a device index (%s)",
					spec, arg, forms);
		break;
	case GPUD_MEM_DRM:
		if (!arg || !*arg)
			return gpud_err(-EINVAL, "memory spec \"%s\": drm needs a device node (%s)",
					spec, forms);
		break;
	default:
		break;
	}

	*kind = k;
	opts->device = device;
	opts->path = k == GPUD_MEM_DRM ? arg : NULL;
	return 0;
}

/* ---- lifetime ---- */

static int mem_no_backend(enum gpud_mem_kind kind, char *why, size_t len)
{
	gpud_why(-EINVAL, why, len, "unknown memory kind %d", (int)kind);
	return -EINVAL;
}

int gpud_mem_create(enum gpud_mem_kind kind, size_t size, const struct gpud_mem_opts *opts,
		    struct gpud_mem **out)
{
	const struct gpud_mem_ops *ops;
	struct gpud_mem_opts o;
	struct gpud_mem *mem;
	char why[GPUD_ERRMSG_MAX];
	int ret;

	if (!out)
		return gpud_err(-EINVAL, "gpud_mem_create: out is NULL");
	ret = gpud_opts_copy(&o, sizeof(o), opts, "gpud_mem_opts");
	if (ret)
		return ret;
	if ((unsigned int)kind >= GPUD_MEM_KIND_MAX || !mem_backends[kind]) {
		ret = mem_no_backend(kind, why, sizeof(why));
		return gpud_err(ret, "%s", why);
	}
	ops = mem_backends[kind];
	if (!size)
		return gpud_err(-EINVAL, "%s memory: size 0; ask for at least one byte",
				ops->name);
	if (o.flags & ~GPUD_MEM_F_ALL)
		return gpud_err(-EINVAL, "%s memory: unknown flags 0x%x", ops->name,
				o.flags & ~GPUD_MEM_F_ALL);
	if (kind_has_device(kind) && o.device < 0)
		return gpud_err(-ENODEV, "%s:%d: device index must be >= 0", ops->name, o.device);
	if (!ops->create)
		return gpud_err(-EOPNOTSUPP, "%s memory: cannot be created here", ops->name);

	mem = calloc(1, sizeof(*mem));
	if (!mem)
		return gpud_err(-ENOMEM, "%s memory: out of memory", ops->name);
	mem->kind = kind;
	mem->ops = ops;
	mem->opts = o;	/* .path is the caller's until create() returns */
	mem->dmabuf_fd = -1;

	ret = ops->create(mem, size);
	/* The backend copied what it needs of the caller's path. */
	mem->opts.path = NULL;
	if (ret)
		goto err_free;
	gpud_log(GPUD_LOG_DEBUG, "%s memory: %zu bytes (asked %zu)%s", ops->name, mem->size,
		 size, mem->dmabuf_fd >= 0 ? ", dma-buf exported" : ", not exported");
	*out = mem;
	return 0;

err_free:
	free(mem);
	return ret;
}

void gpud_mem_free(struct gpud_mem *mem)
{
	if (!mem)
		return;
	if (mem->ops->destroy)
		mem->ops->destroy(mem);
	free(mem);
}

/* ---- slices: a part of a memory with a dma-buf of its own ---- */

struct mem_slice {
	struct gpud_mem *parent;
	size_t off;
};

static void slice_destroy(struct gpud_mem *mem)
{
	if (mem->dmabuf_fd >= 0)
		close(mem->dmabuf_fd);
	free(mem->priv);
}

static int slice_write(struct gpud_mem *mem, size_t off, const void *src, size_t len)
{
	struct mem_slice *sl = mem->priv;

	return gpud_mem_write(sl->parent, sl->off + off, src, len);
}

static int slice_read(struct gpud_mem *mem, size_t off, void *dst, size_t len)
{
	struct mem_slice *sl = mem->priv;

	return gpud_mem_read(sl->parent, sl->off + off, dst, len);
}

static int slice_placement(const struct gpud_mem *mem, enum gpud_mem_placement *where,
			   char *why, size_t len)
{
	const struct mem_slice *sl = mem->priv;

	return gpud_mem_placement_why(sl->parent, where, why, len);
}

static const struct gpud_mem_ops slice_ops = {
	.name = "slice",
	.destroy = slice_destroy,
	.write = slice_write,
	.read = slice_read,
	.placement = slice_placement,
};

int gpud_mem_slice(struct gpud_mem *mem, size_t off, size_t len, struct gpud_mem **out)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct mem_slice *sl;
	struct gpud_mem *s;
	int ret, fd = -1;

	if (!mem || !out)
		return gpud_err(-EINVAL, "gpud_mem_slice: NULL argument");
	if (!len || off % page || len % page || off > mem->size || len > mem->size - off)
		return gpud_err(-EINVAL, "gpud_mem_slice: [%zu, %zu + %zu) is not a page-aligned part of the %zu-byte %s memory",
				off, off, len, mem->size, mem->ops->name);
	if (!mem->ops->export_range)
		return gpud_err(-EOPNOTSUPP, "%s memory cannot export a part of itself as a dma-buf",
				mem->ops->name);
	s = calloc(1, sizeof(*s));
	sl = calloc(1, sizeof(*sl));
	if (!s || !sl) {
		ret = gpud_err(-ENOMEM, "gpud_mem_slice: out of memory");
		goto err_free;
	}
	ret = mem->ops->export_range(mem, off, len, &fd);
	if (ret)
		goto err_free;
	*sl = (struct mem_slice){ .parent = mem, .off = off };
	s->kind = mem->kind;
	s->ops = &slice_ops;
	s->opts = mem->opts;
	s->size = len;
	s->dmabuf_fd = fd;
	s->host_ptr = mem->host_ptr ? (char *)mem->host_ptr + off : NULL;
	s->dev_ptr = mem->dev_ptr ? mem->dev_ptr + off : 0;
	s->priv = sl;
	*out = s;
	return 0;

err_free:
	free(sl);
	free(s);
	return ret;
}

/* ---- accessors ---- */

enum gpud_mem_kind gpud_mem_kind(const struct gpud_mem *mem)
{
	return mem->kind;
}

size_t gpud_mem_size(const struct gpud_mem *mem)
{
	return mem->size;
}

int gpud_mem_dmabuf_fd(const struct gpud_mem *mem)
{
	return mem->dmabuf_fd >= 0 ? mem->dmabuf_fd : -ENOENT;
}

void *gpud_mem_host_ptr(const struct gpud_mem *mem)
{
	return mem->host_ptr;
}

uint64_t gpud_mem_device_ptr(const struct gpud_mem *mem)
{
	return mem->dev_ptr;
}

/* ---- copies ---- */

static int mem_check_range(const struct gpud_mem *mem, size_t off, size_t len,
			   const void *buf, const char *what)
{
	if (!mem || (!buf && len))
		return gpud_err(-EINVAL, "gpud_mem_%s: NULL argument", what);
	if (off > mem->size || len > mem->size - off)
		return gpud_err(-ERANGE, "gpud_mem_%s: [%zu, %zu + %zu) is outside the %zu-byte %s memory",
				what, off, off, len, mem->size, mem->ops->name);
	return 0;
}

int gpud_mem_write(struct gpud_mem *mem, size_t off, const void *src, size_t len)
{
	int ret = mem_check_range(mem, off, len, src, "write");

	if (ret || !len)
		return ret;
	if (!mem->ops->write)
		return gpud_err(-EOPNOTSUPP, "%s memory cannot be written from the CPU",
				mem->ops->name);
	return mem->ops->write(mem, off, src, len);
}

int gpud_mem_read(struct gpud_mem *mem, size_t off, void *dst, size_t len)
{
	int ret = mem_check_range(mem, off, len, dst, "read");

	if (ret || !len)
		return ret;
	if (!mem->ops->read)
		return gpud_err(-EOPNOTSUPP, "%s memory cannot be read from the CPU",
				mem->ops->name);
	return mem->ops->read(mem, off, dst, len);
}

int gpud_mem_placement_why(const struct gpud_mem *mem, enum gpud_mem_placement *where,
			   char *why, size_t why_len)
{
	if (!mem || !where)
		return gpud_err(-EINVAL, "gpud_mem_placement: NULL argument");
	if (why && why_len)
		why[0] = '\0';
	if (!mem->ops->placement) {
		*where = GPUD_MEM_PLACE_UNKNOWN;
		gpud_why(0, why, why_len, "%s memory: placement not known", mem->ops->name);
		return 0;
	}
	return mem->ops->placement(mem, where, why, why_len);
}

int gpud_mem_placement(const struct gpud_mem *mem, enum gpud_mem_placement *where)
{
	return gpud_mem_placement_why(mem, where, NULL, 0);
}

const char *gpud_mem_placement_name(enum gpud_mem_placement where)
{
	switch (where) {
	case GPUD_MEM_PLACE_HOST:
		return "system";
	case GPUD_MEM_PLACE_DEVICE:
		return "vram";
	default:
		return "unknown";
	}
}

/* ---- probe, cached per kind and device ---- */

#define PROBE_CACHE_DEVICES 64
#define PROBE_WHY_MAX 384

struct probe_entry {
	bool valid;
	int ret;
	char why[PROBE_WHY_MAX];
};

/*
 * Guarded by probe_lock, which is held across the probe itself: concurrent
 * first probes of one kind wait instead of loading a driver twice.
 */
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static struct probe_entry probe_cache[GPUD_MEM_KIND_MAX][PROBE_CACHE_DEVICES];

static int probe_uncached(enum gpud_mem_kind kind, int device, char *why, size_t len)
{
	const struct gpud_mem_ops *ops = mem_backends[kind];

	if (!ops)
		return mem_no_backend(kind, why, len);
	if (!ops->probe)
		return gpud_why(-EOPNOTSUPP, why, len, "%s: no probe", ops->name);
	return ops->probe(device, why, len);
}

int gpud_mem_probe(enum gpud_mem_kind kind, int device, char *why, size_t why_len)
{
	struct probe_entry *e;
	int ret;

	if ((unsigned int)kind >= GPUD_MEM_KIND_MAX)
		return gpud_why(-EINVAL, why, why_len, "unknown memory kind %d", (int)kind);
	if (!kind_has_device(kind))
		device = 0;
	if (device < 0)
		return gpud_why(-ENODEV, why, why_len, "%s:%d: device index must be >= 0",
				    gpud_mem_kind_name(kind), device);
	/* Indexes past the cache are rare enough to probe every time. */
	if (device >= PROBE_CACHE_DEVICES)
		return probe_uncached(kind, device, why, why_len);

	pthread_mutex_lock(&probe_lock);
	e = &probe_cache[kind][device];
	if (!e->valid) {
		e->why[0] = '\0';
		e->ret = probe_uncached(kind, device, e->why, sizeof(e->why));
		e->valid = true;
	}
	ret = e->ret;
	gpud_why(ret, why, why_len, "%s", e->why);
	pthread_mutex_unlock(&probe_lock);
	return ret;
}
