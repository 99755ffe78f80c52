// SPDX-License-Identifier: MIT
/*
 * DRM PRIME: a GEM buffer object of a DRM driver, exported as a dma-buf.
 *
 * Two ways to get the buffer, chosen by the node's driver:
 *  - amdgpu: a dedicated VRAM (or GTT) buffer object from libdrm_amdgpu,
 *    dlopen()ed like the GPU runtimes so that a build without it still has
 *    the backend; the library also makes the path testable with a fake.
 *  - anything else with dumb buffers (vgem, and most display drivers):
 *    DRM_IOCTL_MODE_CREATE_DUMB on the primary node, exported with
 *    DRM_IOCTL_PRIME_HANDLE_TO_FD. Raw ioctls, not libdrm: drmPrimeHandleToFD
 *    is a thin wrapper over the same ioctl, and the headers would be a build
 *    dependency for five stable structs (see drm_uapi.h).
 *
 * Ownership: the gpud_mem owns the node fd (dumb path) or the libdrm_amdgpu
 * device (which owns its own dup of the fd), the GEM handle or buffer
 * object, the CPU mapping and the dma-buf fd. The dma-buf holds its own
 * reference on the GEM object, so closing our handle never pulls memory from
 * under a NIC binding or an RDMA registration.
 */
#include "dl.h"
#include "mem_internal.h"
#include "drm_uapi.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ---- the slice of libdrm's amdgpu.h / amdgpu_drm.h we use ---- */
typedef struct amdgpu_device *amdgpu_device_handle;
typedef struct amdgpu_bo *amdgpu_bo_handle;

struct amdgpu_bo_alloc_request {
	uint64_t alloc_size;
	uint64_t phys_alignment;
	uint32_t preferred_heap;
	uint64_t flags;
};

#define AMDGPU_GEM_DOMAIN_GTT 0x2
#define AMDGPU_GEM_DOMAIN_VRAM 0x4
#define AMDGPU_BO_HANDLE_TYPE_DMA_BUF_FD 2	/* amdgpu_bo_handle_type_dma_buf_fd */

struct amdgpu_api {
	void *lib;
	int (*device_initialize)(int, uint32_t *, uint32_t *, amdgpu_device_handle *);
	int (*device_deinitialize)(amdgpu_device_handle);
	int (*bo_alloc)(amdgpu_device_handle, struct amdgpu_bo_alloc_request *,
			amdgpu_bo_handle *);
	int (*bo_export)(amdgpu_bo_handle, int, uint32_t *);
	int (*bo_free)(amdgpu_bo_handle);
	int (*bo_cpu_map)(amdgpu_bo_handle, void **);
	int (*bo_cpu_unmap)(amdgpu_bo_handle);
	/* Optional (NULL when the library lacks them). */
	int (*device_get_fd)(amdgpu_device_handle);
	const char *(*get_marketing_name)(amdgpu_device_handle);
};

static const struct gpud_dl_sym amdgpu_syms[] = {
#define SYM(n, f, opt) { n, offsetof(struct amdgpu_api, f), opt, NULL }
	SYM("amdgpu_device_initialize", device_initialize, false),
	SYM("amdgpu_device_deinitialize", device_deinitialize, false),
	SYM("amdgpu_bo_alloc", bo_alloc, false),
	SYM("amdgpu_bo_export", bo_export, false),
	SYM("amdgpu_bo_free", bo_free, false),
	SYM("amdgpu_bo_cpu_map", bo_cpu_map, false),
	SYM("amdgpu_bo_cpu_unmap", bo_cpu_unmap, false),
	SYM("amdgpu_device_get_fd", device_get_fd, true),
	SYM("amdgpu_get_marketing_name", get_marketing_name, true),
#undef SYM
};

static struct gpud_dl_lib amdgpu_lib =
	GPUD_DL_LIB("drm", "GPUD_LIBDRM_AMDGPU", "libdrm_amdgpu.so.1", "install libdrm-amdgpu1",
		    amdgpu_syms, struct amdgpu_api, NULL);

/* Test hooks (gpud_drm_set_test_hooks). */
static const char *drm_dev_dir = "/dev/dri";
static int (*drm_driver_of_hook)(int fd, char *name, size_t len);

void gpud_drm_set_test_hooks(const char *dev_dir, int (*driver_of)(int fd, char *name, size_t len))
{
	drm_dev_dir = dev_dir ? dev_dir : "/dev/dri";
	drm_driver_of_hook = driver_of;
}

struct drm_mem {
	char node[64];
	char driver[32];
	int fd;				/* dumb path: the node; amdgpu: -1 (the device owns its fd) */
	uint32_t handle;		/* dumb path: GEM handle */
	void *map;			/* CPU mapping (dumb: MAP_DUMB; amdgpu: cpu_map, lazy) */
	size_t map_len;
	/* amdgpu */
	const struct amdgpu_api *api;
	amdgpu_device_handle dev;
	amdgpu_bo_handle bo;
	uint32_t domain;
	pthread_mutex_t map_lock;	/* amdgpu: the lazy CPU map */
	struct gpud_amdgpu_counters at_export;
	int counters_fd;		/* the DRM file our buffer is counted in, or -1 */
};

/* ---- libdrm_amdgpu ---- */

static int amdgpu_load(const struct amdgpu_api **out, char *why, size_t len)
{
	return gpud_dl_load(&amdgpu_lib, (const void **)out, why, len);
}

/* ---- nodes ---- */

/* The driver's name through DRM_IOCTL_VERSION (or the test hook). */
static int drm_driver_of(int fd, char *name, size_t len)
{
	struct gpud_drm_version v = { 0 };

	if (drm_driver_of_hook)
		return drm_driver_of_hook(fd, name, len);
	v.name = name;
	v.name_len = len - 1;
	if (ioctl(fd, GPUD_DRM_IOCTL_VERSION, &v))
		return -errno;
	name[v.name_len < len ? v.name_len : len - 1] = '\0';
	return 0;
}

static bool drm_is_render(int fd, const char *path)
{
	struct stat st;

	if (!fstat(fd, &st) && S_ISCHR(st.st_mode))
		return minor(st.st_rdev) >= GPUD_DRM_RENDER_MINOR_BASE;
	/* Test nodes are plain files: go by the name. */
	return strstr(path, "renderD") != NULL;
}

static int drm_get_cap(int fd, uint64_t cap, uint64_t *val)
{
	struct gpud_drm_get_cap c = { .capability = cap };

	if (drm_driver_of_hook) {
		/* A fake node: an amdgpu render node can export, no dumb buffers. */
		*val = cap == GPUD_DRM_CAP_PRIME ? GPUD_DRM_PRIME_CAP_EXPORT : 0;
		return 0;
	}
	if (ioctl(fd, GPUD_DRM_IOCTL_GET_CAP, &c))
		return -errno;
	*val = c.value;
	return 0;
}

/*
 * Opens @path and names its driver. Errors say what the node is not:
 * -ENODEV missing or not DRM, -EACCES no permission.
 */
static int drm_node_open(const char *path, int *fd_out, char *driver, size_t len, char *why,
			 size_t why_len)
{
	int fd, ret;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (ret == -EACCES || ret == -EPERM)
			return gpud_why(-EACCES, why, why_len,
					    "drm: %s: %s: add the user to the \"render\" (render nodes) or \"video\" (card nodes) group",
					    path, strerror(-ret));
		return gpud_why(-ENODEV, why, why_len, "drm: cannot open %s: %s%s", path,
				    strerror(-ret),
				    ret == -ENOENT ? " (no such node: see ls /dev/dri; vgem needs CONFIG_DRM_VGEM / modprobe vgem)"
						   : "");
	}
	ret = drm_driver_of(fd, driver, len);
	if (ret) {
		close(fd);
		return gpud_why(-ENODEV, why, why_len,
				    "drm: %s is not a DRM device (DRM_IOCTL_VERSION: %s); name a /dev/dri/cardN or renderDN node",
				    path, strerror(-ret));
	}
	*fd_out = fd;
	return 0;
}

static int drm_node_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	bool rx = !strncmp(x, "renderD", 7), ry = !strncmp(y, "renderD", 7);

	/* cards before render nodes, then by number */
	if (rx != ry)
		return rx - ry;
	return atoi(x + strcspn(x, "0123456789")) - atoi(y + strcspn(y, "0123456789"));
}

/* The names of @drm_dev_dir's card and render nodes, sorted; caller frees. */
static int drm_node_names(char ***out, size_t *n_out)
{
	char **names = NULL, **tmp;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	d = opendir(drm_dev_dir);
	if (!d) {
		*out = NULL;
		*n_out = 0;
		return errno == ENOENT ? 0 : -errno;
	}
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "card", 4) && strncmp(de->d_name, "renderD", 7))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			tmp = realloc(names, cap * sizeof(*names));
			if (!tmp)
				goto err_nomem;
			names = tmp;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			goto err_nomem;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), drm_node_cmp);
	*out = names;
	*n_out = n;
	return 0;

err_nomem:
	closedir(d);
	while (n)
		free(names[--n]);
	free(names);
	return -ENOMEM;
}

static void drm_node_names_free(char **names, size_t n)
{
	while (n)
		free(names[--n]);
	free(names);
}

static void drm_node_describe(const char *name, int *amdgpu_seen, struct gpud_drm_node_info *ni)
{
	uint64_t prime = 0, dumb = 0;
	int fd, ret;

	memset(ni, 0, sizeof(*ni));
	ni->amdgpu_index = -1;
	snprintf(ni->path, sizeof(ni->path), "%s/%s", drm_dev_dir, name);
	ret = drm_node_open(ni->path, &fd, ni->driver, sizeof(ni->driver), ni->why,
			    sizeof(ni->why));
	if (ret)
		return;
	ni->render = drm_is_render(fd, ni->path);
	ni->prime_export = !drm_get_cap(fd, GPUD_DRM_CAP_PRIME, &prime) &&
			   (prime & GPUD_DRM_PRIME_CAP_EXPORT);
	/*
	 * Drivers without modesetting (vgem) answer EOPNOTSUPP for this cap yet
	 * have dumb buffers: only a definite 0 means none.
	 */
	ret = drm_get_cap(fd, GPUD_DRM_CAP_DUMB_BUFFER, &dumb);
	ni->dumb = ret == -EOPNOTSUPP || (!ret && dumb);
	close(fd);
	if (!strcmp(ni->driver, "amdgpu")) {
		if (ni->render)
			ni->amdgpu_index = (*amdgpu_seen)++;
		ni->usable = ni->prime_export;
		if (ni->amdgpu_index >= 0)
			snprintf(ni->why, sizeof(ni->why),
				 "amdgpu: VRAM/GTT buffers through libdrm_amdgpu (spec amdgpu:%d); placement checked after binding",
				 ni->amdgpu_index);
		else
			snprintf(ni->why, sizeof(ni->why),
				 "amdgpu: VRAM/GTT buffers through libdrm_amdgpu (or its render node)");
	} else if (!ni->prime_export) {
		snprintf(ni->why, sizeof(ni->why), "%s: no PRIME export (DRM_CAP_PRIME)", ni->driver);
	} else if (!ni->dumb) {
		snprintf(ni->why, sizeof(ni->why), "%s: PRIME export, but no dumb buffers to allocate with",
			 ni->driver);
	} else if (ni->render) {
		snprintf(ni->why, sizeof(ni->why),
			 "%s: render node: dumb buffers are refused here (EACCES); use the card node",
			 ni->driver);
	} else {
		ni->usable = true;
		snprintf(ni->why, sizeof(ni->why), "%s: dumb buffers + PRIME export (spec drm:%s)",
			 ni->driver, ni->path);
	}
}

int gpud_drm_nodes_get(struct gpud_drm_node_info *out, size_t max)
{
	int amdgpu_seen = 0, ret;
	char **names;
	size_t n;

	if (!out && max)
		return gpud_err(-EINVAL, "gpud_drm_nodes_get: out is NULL");
	ret = drm_node_names(&names, &n);
	if (ret)
		return gpud_err(ret, "drm: cannot list %s: %s", drm_dev_dir, strerror(-ret));
	for (size_t i = 0; i < n; i++) {
		struct gpud_drm_node_info ni;

		drm_node_describe(names[i], &amdgpu_seen, &ni);
		if (i < max)
			out[i] = ni;
	}
	drm_node_names_free(names, n);
	return (int)n;
}

/* The path of the @index-th amdgpu render node. */
static int drm_find_amdgpu(int index, char *path, size_t len)
{
	struct gpud_drm_node_info *ni;
	int n, ret = -ENODEV, found = 0;

	n = gpud_drm_nodes_get(NULL, 0);
	if (n < 0)
		return n;
	ni = calloc((size_t)n + 1, sizeof(*ni));
	if (!ni)
		return gpud_err(-ENOMEM, "drm: out of memory");
	n = gpud_drm_nodes_get(ni, (size_t)n);
	for (int i = 0; i < n; i++) {
		if (ni[i].amdgpu_index < 0)
			continue;
		found++;
		if (ni[i].amdgpu_index == index) {
			snprintf(path, len, "%s", ni[i].path);
			ret = 0;
		}
	}
	free(ni);
	if (ret)
		return gpud_err(ret, "amdgpu:%d: no such device: %d amdgpu render node(s) in %s",
				index, found, drm_dev_dir);
	return 0;
}

static int drm_probe(int device, char *why, size_t len)
{
	struct gpud_drm_node_info ni[16];
	size_t used = 0;
	int n, ret = -ENODEV;

	n = gpud_drm_nodes_get(ni, GPUD_ARRAY_SIZE(ni));
	if (n < 0)
		return gpud_why(n, why, len, "%s", gpud_errmsg());
	if (!n)
		return gpud_why(-ENODEV, why, len,
				    "drm: no nodes in %s (no DRM driver; for tests: CONFIG_DRM_VGEM / modprobe vgem)",
				    drm_dev_dir);
	if (why && len)
		why[0] = '\0';
	for (int i = 0; i < n && i < (int)GPUD_ARRAY_SIZE(ni); i++) {
		const char *base = strrchr(ni[i].path, '/');

		if (ni[i].usable)
			ret = 0;
		if (why && used < len)
			used += (size_t)snprintf(why + used, len - used, "%s%s %s%s", i ? "; " : "",
						 base ? base + 1 : ni[i].path,
						 ni[i].usable ? "" : "(unusable) ", ni[i].why);
	}
	return ret;
}

/* ---- the dumb-buffer path (vgem and others) ---- */

static void gem_close(int fd, uint32_t handle, const char *node)
{
	struct gpud_drm_gem_close c = { .handle = handle };

	if (ioctl(fd, GPUD_DRM_IOCTL_GEM_CLOSE, &c))
		gpud_log(GPUD_LOG_WARN, "drm: %s: GEM_CLOSE(%u): %s", node, handle, strerror(errno));
}

static int prime_export(int fd, uint32_t handle, struct drm_mem *dm, int *out)
{
	struct gpud_drm_prime_handle p = {
		.handle = handle,
		.flags = O_CLOEXEC | O_RDWR,	/* DRM_CLOEXEC | DRM_RDWR: all the kernel takes */
		.fd = -1,
	};

	if (ioctl(fd, GPUD_DRM_IOCTL_PRIME_HANDLE_TO_FD, &p)) {
		int err = errno;

		/* Before 6.6 a driver without PRIME said ENOSYS; some say EOPNOTSUPP. */
		if (err == ENOSYS || err == EOPNOTSUPP || err == ENODEV)
			return gpud_err(-EOPNOTSUPP, "drm: %s (%s) cannot export GEM buffers with PRIME (PRIME_HANDLE_TO_FD: %s); use a driver that can (vgem, amdgpu) or GPUD_MEM_F_NO_DMABUF",
					dm->node, dm->driver, strerror(err));
		return gpud_err(-err, "drm: %s (%s): PRIME_HANDLE_TO_FD: %s", dm->node, dm->driver,
				strerror(err));
	}
	*out = p.fd;
	return 0;
}

static int dumb_create(struct gpud_mem *mem, struct drm_mem *dm, bool render, size_t req)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct gpud_drm_mode_create_dumb c = { 0 };
	struct gpud_drm_mode_map_dumb m = { 0 };
	/* The kernel computes the size in 32 bits (drm_mode_create_dumb). */
	size_t max = (size_t)(UINT32_MAX & ~(uint32_t)(page - 1));
	size_t size = gpud_mem_round_up(req, page);
	int fd = -1, ret;
	void *map;

	if (!size || size > max)
		return gpud_err(-E2BIG, "drm: %s (%s): %zu bytes is more than a dumb buffer can hold (%zu: its size is 32-bit in DRM_IOCTL_MODE_CREATE_DUMB); use several buffers",
				dm->node, dm->driver, req, max);
	/* One page-wide row of 8-bit pixels per page: pitch = page, no padding. */
	c.width = (uint32_t)page;
	c.height = (uint32_t)(size / page);
	c.bpp = 8;
	if (ioctl(dm->fd, GPUD_DRM_IOCTL_MODE_CREATE_DUMB, &c)) {
		int err = errno;

		if (err == EACCES && render)
			return gpud_err(-EACCES, "drm: %s is a render node, and render nodes refuse dumb buffers (DRM_IOCTL_MODE_CREATE_DUMB is not allowed there): use the card node, e.g. /dev/dri/card0",
					dm->node);
		if (err == ENOSYS || err == EOPNOTSUPP)
			return gpud_err(-EOPNOTSUPP, "drm: %s (%s) has no dumb buffers (DRM_IOCTL_MODE_CREATE_DUMB: %s): nothing generic to allocate with",
					dm->node, dm->driver, strerror(err));
		return gpud_err(-err, "drm: %s (%s): DRM_IOCTL_MODE_CREATE_DUMB(%zu bytes): %s",
				dm->node, dm->driver, size, strerror(err));
	}
	dm->handle = c.handle;
	if (c.size < size) {
		ret = gpud_err(-EPROTO, "drm: %s (%s): dumb buffer of %llu bytes, asked %zu",
			       dm->node, dm->driver, (unsigned long long)c.size, size);
		goto err_gem_close;
	}
	m.handle = c.handle;
	if (ioctl(dm->fd, GPUD_DRM_IOCTL_MODE_MAP_DUMB, &m)) {
		ret = gpud_err(-errno, "drm: %s (%s): DRM_IOCTL_MODE_MAP_DUMB: %s", dm->node,
			       dm->driver, strerror(errno));
		goto err_gem_close;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, dm->fd, (off_t)m.offset);
	if (map == MAP_FAILED) {
		ret = gpud_err(-errno, "drm: %s (%s): mmap of the dumb buffer: %s", dm->node,
			       dm->driver, strerror(errno));
		goto err_gem_close;
	}
	if (!(mem->opts.flags & GPUD_MEM_F_NO_DMABUF)) {
		ret = prime_export(dm->fd, c.handle, dm, &fd);
		if (ret)
			goto err_unmap;
	}
	dm->map = map;
	dm->map_len = size;
	mem->size = size;
	mem->dmabuf_fd = fd;
	/* vgem is shmem: system RAM, and the mapping is a host pointer. */
	if (!strcmp(dm->driver, "vgem"))
		mem->host_ptr = map;
	return 0;

err_unmap:
	munmap(map, size);
err_gem_close:
	gem_close(dm->fd, c.handle, dm->node);
	return ret;
}

/* ---- the amdgpu path ---- */

static int amdgpu_fail(int err, struct drm_mem *dm, const char *call)
{
	if (err > 0)
		err = -err;
	if (!err)
		err = -EIO;
	return gpud_err(err, "drm: %s (amdgpu): %s: %s", dm->node, call, strerror(-err));
}

static int amdgpu_create(struct gpud_mem *mem, struct drm_mem *dm, int fd, size_t req)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct amdgpu_bo_alloc_request r = { 0 };
	size_t size = gpud_mem_round_up(req, page);
	char why[GPUD_ERRMSG_MAX];
	uint32_t major, minor, shared = 0;
	int dmabuf = -1, ret;

	if (!size)
		return gpud_err(-E2BIG, "drm: %s (amdgpu): %zu bytes is too large", dm->node, req);
	ret = amdgpu_load(&dm->api, why, sizeof(why));
	if (ret)
		return gpud_err(ret, "%s", why);
	/* libdrm_amdgpu dups @fd (or reuses its device for this GPU): we may close ours. */
	ret = dm->api->device_initialize(fd, &major, &minor, &dm->dev);
	if (ret)
		return amdgpu_fail(ret, dm, "amdgpu_device_initialize");
	dm->domain = mem->opts.flags & GPUD_MEM_F_GTT ? AMDGPU_GEM_DOMAIN_GTT
						      : AMDGPU_GEM_DOMAIN_VRAM;
	r.alloc_size = size;
	r.phys_alignment = page;
	r.preferred_heap = dm->domain;
	ret = dm->api->bo_alloc(dm->dev, &r, &dm->bo);
	if (ret) {
		ret = amdgpu_fail(ret, dm, dm->domain == AMDGPU_GEM_DOMAIN_VRAM ?
				  "amdgpu_bo_alloc(VRAM)" : "amdgpu_bo_alloc(GTT)");
		goto err_deinit;
	}
	if (!(mem->opts.flags & GPUD_MEM_F_NO_DMABUF)) {
		ret = dm->api->bo_export(dm->bo, AMDGPU_BO_HANDLE_TYPE_DMA_BUF_FD, &shared);
		if (ret) {
			ret = amdgpu_fail(ret, dm, "amdgpu_bo_export(dma_buf_fd)");
			goto err_bo_free;
		}
		dmabuf = (int)shared;
		/* The BOs of this device are counted in the device's own file. */
		dm->counters_fd = dm->api->device_get_fd ? dm->api->device_get_fd(dm->dev) : -1;
		gpud_amdgpu_counters_read(&dm->at_export, dm->counters_fd);
	}
	mem->size = size;
	mem->dmabuf_fd = dmabuf;
	return 0;

err_bo_free:
	dm->api->bo_free(dm->bo);
err_deinit:
	dm->api->device_deinitialize(dm->dev);
	return ret;
}

/* ---- ops ---- */

static int drm_create(struct gpud_mem *mem, size_t req)
{
	char why[GPUD_ERRMSG_MAX];
	struct drm_mem *dm;
	int fd, ret;

	dm = calloc(1, sizeof(*dm));
	if (!dm)
		return gpud_err(-ENOMEM, "drm: out of memory");
	dm->fd = -1;
	dm->counters_fd = -1;
	if (mem->opts.path) {
		if (strlen(mem->opts.path) >= sizeof(dm->node)) {
			ret = gpud_err(-ENAMETOOLONG, "drm: node path too long: %s", mem->opts.path);
			goto err_free_dm;
		}
		snprintf(dm->node, sizeof(dm->node), "%s", mem->opts.path);
	} else {
		if (mem->opts.device < 0) {
			ret = gpud_err(-ENODEV, "amdgpu:%d: index must be >= 0", mem->opts.device);
			goto err_free_dm;
		}
		ret = drm_find_amdgpu(mem->opts.device, dm->node, sizeof(dm->node));
		if (ret)
			goto err_free_dm;
	}
	ret = drm_node_open(dm->node, &fd, dm->driver, sizeof(dm->driver), why, sizeof(why));
	if (ret) {
		gpud_err(ret, "%s", why);
		goto err_free_dm;
	}
	if (!strcmp(dm->driver, "amdgpu")) {
		ret = amdgpu_create(mem, dm, fd, req);
		close(fd);	/* libdrm_amdgpu holds its own */
		if (ret)
			goto err_free_dm;
		pthread_mutex_init(&dm->map_lock, NULL);
	} else {
		dm->fd = fd;
		ret = dumb_create(mem, dm, drm_is_render(fd, dm->node), req);
		if (ret)
			goto err_close_fd;
	}
	mem->priv = dm;
	return 0;

err_close_fd:
	close(fd);
err_free_dm:
	free(dm);
	return ret;
}

static void drm_destroy(struct gpud_mem *mem)
{
	struct drm_mem *dm = mem->priv;
	int ret;

	/* The dma-buf keeps its own reference: closing it first is fine. */
	if (mem->dmabuf_fd >= 0)
		close(mem->dmabuf_fd);
	if (dm->api) {
		if (dm->map)
			dm->api->bo_cpu_unmap(dm->bo);
		ret = dm->api->bo_free(dm->bo);
		if (ret)
			gpud_log(GPUD_LOG_WARN, "drm: %s: amdgpu_bo_free: %s", dm->node,
				 strerror(ret < 0 ? -ret : ret));
		dm->api->device_deinitialize(dm->dev);
		pthread_mutex_destroy(&dm->map_lock);
	} else {
		munmap(dm->map, dm->map_len);
		gem_close(dm->fd, dm->handle, dm->node);
		close(dm->fd);
	}
	free(dm);
}

/* The CPU mapping: made at create for dumb buffers, on first use for amdgpu. */
static int drm_cpu_map(struct gpud_mem *mem, void **out)
{
	struct drm_mem *dm = mem->priv;
	void *p = NULL;
	int ret = 0;

	if (!dm->api) {
		*out = dm->map;
		return 0;
	}
	pthread_mutex_lock(&dm->map_lock);
	if (!dm->map) {
		ret = dm->api->bo_cpu_map(dm->bo, &p);
		if (ret)
			ret = amdgpu_fail(ret, dm, "amdgpu_bo_cpu_map (is the VRAM CPU-visible? large BAR / resizable BAR)");
		else
			dm->map = p;
	}
	p = dm->map;
	pthread_mutex_unlock(&dm->map_lock);
	if (!ret)
		*out = p;
	return ret;
}

/*
 * amdgpu: no DMA_BUF_IOCTL_SYNC bracket. amdgpu's begin_cpu_access moves an
 * unpinned VRAM buffer to GTT so that the CPU can reach it, which is the very
 * migration placement must catch, and it would cause it. The BO mapping
 * (VRAM through the BAR, or GTT) is coherent for the CPU without it.
 */
static int drm_copy(struct gpud_mem *mem, size_t off, void *buf, size_t len, bool to_mem)
{
	struct drm_mem *dm = mem->priv;
	void *p;
	int ret = drm_cpu_map(mem, &p);

	if (ret)
		return ret;
	p = (char *)p + off;
	if (dm->api) {
		memcpy(to_mem ? p : buf, to_mem ? buf : p, len);
		return 0;
	}
	return to_mem ? gpud_mem_sync_copy(mem, p, buf, len, true)
		      : gpud_mem_sync_copy(mem, buf, p, len, false);
}

static int drm_write(struct gpud_mem *mem, size_t off, const void *src, size_t len)
{
	return drm_copy(mem, off, (void *)src, len, true);
}

static int drm_read(struct gpud_mem *mem, size_t off, void *dst, size_t len)
{
	return drm_copy(mem, off, dst, len, false);
}

static int drm_placement(const struct gpud_mem *mem, enum gpud_mem_placement *where, char *why,
			 size_t len)
{
	const struct drm_mem *dm = mem->priv;
	struct gpud_amdgpu_counters now;

	if (!dm->api) {
		if (!strcmp(dm->driver, "vgem")) {
			*where = GPUD_MEM_PLACE_HOST;
			gpud_why(0, why, len, "vgem: shmem pages in system RAM");
		} else {
			*where = GPUD_MEM_PLACE_UNKNOWN;
			gpud_why(0, why, len, "%s dumb buffer: the driver does not say where it lives",
				     dm->driver);
		}
		return 0;
	}
	if (dm->domain == AMDGPU_GEM_DOMAIN_GTT) {
		*where = GPUD_MEM_PLACE_HOST;
		gpud_why(0, why, len, "amdgpu GTT buffer: system RAM by request (GPUD_MEM_F_GTT)");
		return 0;
	}
	if (mem->dmabuf_fd < 0) {
		*where = GPUD_MEM_PLACE_DEVICE;
		gpud_why(0, why, len, "amdgpu VRAM buffer, not exported: nothing can have moved it");
		return 0;
	}
	gpud_amdgpu_counters_read(&now, dm->counters_fd);
	*where = gpud_amdgpu_placement(&dm->at_export, &now, mem->size, why, len);
	return 0;
}

const struct gpud_mem_ops gpud_mem_drm_ops = {
	.name = "drm",
	.probe = drm_probe,
	.create = drm_create,
	.destroy = drm_destroy,
	.write = drm_write,
	.read = drm_read,
	.placement = drm_placement,
};
