// SPDX-License-Identifier: MIT
/*
 * RDMA importer: registers a gpud_mem's dma-buf with an RDMA device through
 * rdma-core's ibv_reg_dmabuf_mr, with an ordinary ibv_reg_mr of the CPU
 * mapping where the provider cannot import dma-bufs (soft-RoCE) and the
 * memory is system RAM.
 *
 * libibverbs.so.1 is dlopen()ed, and the little of its ABI we touch is
 * declared below (Debian 12's rdma-core 44, <infiniband/verbs.h>) rather
 * than included: rdma-core stays optional at build time, and the fake
 * library the tests build can stand in for it. What we use is stable ABI:
 * exported functions (the default symbol versions, IBVERBS_1.1 and later)
 * and the public head of struct ibv_mr, which rdma-core never reorders.
 * Everything that is a static inline in verbs.h (posting, polling) is the
 * caller's business, with the real header; queue pairs are in qp.c, which
 * is built with it.
 */
#include "dl.h"
#include "rdma_internal.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the slice of <infiniband/verbs.h> we use (the rest: qp.c) ---- */

struct ibv_mr {		/* public head, unchanged since libibverbs 1.0 */
	struct ibv_context *context;
	struct ibv_pd *pd;
	void *addr;
	size_t length;
	uint32_t handle;
	uint32_t lkey;
	uint32_t rkey;
};


static const struct gpud_dl_sym verbs_syms[] = {
#define SYM(n, f, opt) { n, offsetof(struct gpud_verbs_api, f), opt, " (rdma-core too old?)" }
	SYM("ibv_get_device_list", get_device_list, false),
	SYM("ibv_free_device_list", free_device_list, false),
	SYM("ibv_get_device_name", get_device_name, false),
	SYM("ibv_open_device", open_device, false),
	SYM("ibv_close_device", close_device, false),
	SYM("ibv_alloc_pd", alloc_pd, false),
	SYM("ibv_dealloc_pd", dealloc_pd, false),
	SYM("ibv_reg_mr_iova", reg_mr_iova, false),
	SYM("ibv_dereg_mr", dereg_mr, false),
	SYM("ibv_reg_dmabuf_mr", reg_dmabuf_mr, true),
	/*
	 * Queue pairs (qp.c). Optional here so that a verbs stand-in with
	 * registration only (the unit tests' fake) still loads; qp.c says
	 * which one is missing.
	 */
	SYM("ibv_create_comp_channel", create_comp_channel, true),
	SYM("ibv_destroy_comp_channel", destroy_comp_channel, true),
	SYM("ibv_create_cq", create_cq, true),
	SYM("ibv_destroy_cq", destroy_cq, true),
	SYM("ibv_create_qp", create_qp, true),
	SYM("ibv_destroy_qp", destroy_qp, true),
	SYM("ibv_modify_qp", modify_qp, true),
	SYM("ibv_query_port", query_port, true),
	SYM("ibv_query_gid", query_gid, true),
	SYM("ibv_get_cq_event", get_cq_event, true),
	SYM("ibv_ack_cq_events", ack_cq_events, true),
	SYM("ibv_wc_status_str", wc_status_str, true),
	SYM("_ibv_query_gid_ex", query_gid_ex, true),
#undef SYM
};

static struct gpud_dl_lib verbs_lib =
	GPUD_DL_LIB("rdma", "GPUD_LIBIBVERBS", "libibverbs.so.1",
		    "install rdma-core's libibverbs1 and ibverbs-providers,",
		    verbs_syms, struct gpud_verbs_api, NULL);
static const char *sysfs_dir = "/sys/class/infiniband";

void gpud_rdma_set_sysfs_dir(const char *dir)
{
	sysfs_dir = dir ? dir : "/sys/class/infiniband";
}

struct gpud_rdma_dev {
	const struct gpud_verbs_api *api;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	int refs;		/* the caller's + one per MR and QP; atomic */
	char name[64];
	char provider[32];
	char netdev[32];
};

struct gpud_rdma_mr {
	struct gpud_rdma_dev *dev;
	struct ibv_mr *mr;
	int dmabuf_fd;		/* our dup, -1 for HOST_VA */
	uint64_t iova;
	size_t len;
	enum gpud_rdma_mr_how how;
};

static int verbs_load(const struct gpud_verbs_api **out)
{
	char why[GPUD_ERRMSG_MAX];
	int ret = gpud_dl_load(&verbs_lib, (const void **)out, why, sizeof(why));

	return ret ? gpud_err(ret, "%s", why) : 0;
}

/* ---- provider facts from sysfs ---- */

static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/* Which kernel driver serves @name: the bound driver, or soft-RoCE's "parent". */
static void rdma_provider(const char *name, char *prov, size_t plen, char *netdev, size_t nlen)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	netdev[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s/device/driver", sysfs_dir, name);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		const char *base;

		link[n] = '\0';
		base = strrchr(link, '/');
		base = base ? base + 1 : link;
		/* Driver names are short; cut, not overflow, a long one. */
		memcpy(prov, base, strnlen(base, plen - 1));
		prov[strnlen(base, plen - 1)] = '\0';
		return;
	}
	/* rxe has no bus device; it names the netdev it runs on. */
	snprintf(path, sizeof(path), "%s/%s/parent", sysfs_dir, name);
	read_line(path, netdev, nlen);
	snprintf(prov, plen, "%s", netdev[0] ? "rxe" : "unknown");
}

/* ---- devices ---- */

/* ibv_get_device_list() failed: ENOSYS means no RDMA in this kernel at all. */
static int list_failed(void)
{
	int err = errno ? errno : ENODEV;

	if (err == ENOSYS)
		return gpud_err(-ENODEV, "rdma: this kernel has no RDMA user access (ibv_get_device_list: %s): needs ib_uverbs (CONFIG_INFINIBAND_USER_ACCESS)",
				strerror(err));
	return gpud_err(-err, "rdma: ibv_get_device_list: %s", strerror(err));
}

/* Finds @want (NULL: the first) in the device list, listing the names seen. */
static int rdma_find(const struct gpud_verbs_api *api, const char *want,
		     struct ibv_device ***list_out, struct ibv_device **dev_out)
{
	char names[256] = "";
	struct ibv_device **list;
	size_t used = 0;
	int n = 0;

	errno = 0;
	list = api->get_device_list(&n);
	if (!list)
		return list_failed();
	for (int i = 0; i < n; i++) {
		const char *name = api->get_device_name(list[i]);

		if (!want || !strcmp(name, want)) {
			*list_out = list;
			*dev_out = list[i];
			return 0;
		}
		if (used < sizeof(names))
			used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
						 i ? ", " : "", name);
	}
	api->free_device_list(list);
	if (!n)
		return gpud_err(-ENODEV, "rdma: no RDMA devices (for soft-RoCE: rdma link add rxe0 type rxe netdev eth0, needs CONFIG_RDMA_RXE)");
	return gpud_err(-ENODEV, "rdma: no RDMA device \"%s\" (present: %s); it may have gone away (rdma link show)",
			want, names);
}

static int rdma_dev_open_one(const struct gpud_verbs_api *api, struct ibv_device *ibdev,
			     struct gpud_rdma_dev **out)
{
	struct gpud_rdma_dev *dev;
	int ret;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return gpud_err(-ENOMEM, "rdma: out of memory");
	dev->api = api;
	dev->refs = 1;
	snprintf(dev->name, sizeof(dev->name), "%s", api->get_device_name(ibdev));
	rdma_provider(dev->name, dev->provider, sizeof(dev->provider), dev->netdev,
		      sizeof(dev->netdev));
	errno = 0;
	dev->ctx = api->open_device(ibdev);
	if (!dev->ctx) {
		ret = errno ? -errno : -ENODEV;
		gpud_err(ret, "rdma: %s: ibv_open_device: %s%s", dev->name, strerror(-ret),
			 ret == -EACCES || ret == -EPERM ?
			 " (no access to /dev/infiniband/uverbsN: check its permissions / the rdma group)" : "");
		goto err_free;
	}
	errno = 0;
	dev->pd = api->alloc_pd(dev->ctx);
	if (!dev->pd) {
		ret = errno ? -errno : -ENOMEM;
		gpud_err(ret, "rdma: %s: ibv_alloc_pd: %s", dev->name, strerror(-ret));
		goto err_close_device;
	}
	*out = dev;
	return 0;

err_close_device:
	api->close_device(dev->ctx);
err_free:
	free(dev);
	return ret;
}

int gpud_rdma_dev_open(const char *ibdev, struct gpud_rdma_dev **out)
{
	const struct gpud_verbs_api *api;
	struct ibv_device **list;
	struct ibv_device *d;
	int ret;

	if (!out)
		return gpud_err(-EINVAL, "gpud_rdma_dev_open: out is NULL");
	ret = verbs_load(&api);
	if (ret)
		return ret;
	ret = rdma_find(api, ibdev, &list, &d);
	if (ret)
		return ret;
	ret = rdma_dev_open_one(api, d, out);
	api->free_device_list(list);
	return ret;
}

static void rdma_dev_put(struct gpud_rdma_dev *dev)
{
	int ret;

	if (__atomic_sub_fetch(&dev->refs, 1, __ATOMIC_ACQ_REL))
		return;
	ret = dev->api->dealloc_pd(dev->pd);
	if (ret)
		gpud_log(GPUD_LOG_WARN, "rdma: %s: ibv_dealloc_pd: %s", dev->name, strerror(ret));
	ret = dev->api->close_device(dev->ctx);
	if (ret)
		gpud_log(GPUD_LOG_WARN, "rdma: %s: ibv_close_device: %s", dev->name,
			 strerror(ret < 0 ? -ret : errno));
	free(dev);
}

void gpud_rdma_dev_free(struct gpud_rdma_dev *dev)
{
	if (dev)
		rdma_dev_put(dev);
}

void gpud_rdma_dev_ref(struct gpud_rdma_dev *dev)
{
	__atomic_add_fetch(&dev->refs, 1, __ATOMIC_ACQ_REL);
}

void gpud_rdma_dev_unref(struct gpud_rdma_dev *dev)
{
	rdma_dev_put(dev);
}

const struct gpud_verbs_api *gpud_rdma_dev_api(const struct gpud_rdma_dev *dev)
{
	return dev->api;
}

const char *gpud_rdma_dev_name(const struct gpud_rdma_dev *dev)
{
	return dev->name;
}

const char *gpud_rdma_dev_provider(const struct gpud_rdma_dev *dev)
{
	return dev->provider;
}

void *gpud_rdma_dev_context(const struct gpud_rdma_dev *dev)
{
	return dev->ctx;
}

void *gpud_rdma_dev_pd(const struct gpud_rdma_dev *dev)
{
	return dev->pd;
}

/* ---- memory regions ---- */

static bool dmabuf_unsupported(int err)
{
	/* What libibverbs' default op and providers without the verb answer. */
	return err == EOPNOTSUPP || err == EPROTONOSUPPORT || err == ENOSYS;
}

/* The fallback: the CPU mapping, when it is system RAM. */
static int reg_host_va(struct gpud_rdma_dev *dev, struct gpud_mem *mem, struct gpud_rdma_mr *m,
		       size_t off, int access, const char *why_not_dmabuf)
{
	char *host = gpud_mem_host_ptr(mem);
	int err;

	if (!host)
		return gpud_err(-EOPNOTSUPP, "rdma: %s (provider %s) %s, and this %s memory has no CPU mapping in system RAM to register instead: use an RDMA NIC whose provider imports dma-bufs (mlx5, efa, bnxt_re, irdma, mana, ionic)",
				dev->name, dev->provider, why_not_dmabuf,
				gpud_mem_kind_name(gpud_mem_kind(mem)));
	errno = 0;
	/* iova = off, as for a dma-buf MR: byte N of mem is address N either way. */
	m->mr = dev->api->reg_mr_iova(dev->pd, host + off, m->len, off, access);
	if (!m->mr) {
		err = errno ? errno : EFAULT;
		return gpud_err(-err, "rdma: %s (provider %s) %s; registering the CPU mapping instead failed too: ibv_reg_mr: %s%s",
				dev->name, dev->provider, why_not_dmabuf, strerror(err),
				err == EFAULT ? " (the mapping cannot be pinned: a driver mapping such as VM_PFNMAP)" :
				err == ENOMEM ? " (locked-memory limit? ulimit -l)" : "");
	}
	m->how = GPUD_RDMA_MR_HOST_VA;
	gpud_log(GPUD_LOG_INFO, "rdma: %s: %s; registered the CPU mapping of %zu bytes instead",
		 dev->name, why_not_dmabuf, m->len);
	return 0;
}

static int reg_dmabuf(struct gpud_rdma_dev *dev, struct gpud_mem *mem, struct gpud_rdma_mr *m,
		      size_t off, int access)
{
	char why[160];
	int err;

	if (!dev->api->reg_dmabuf_mr) {
		snprintf(why, sizeof(why), "cannot register dma-bufs: libibverbs lacks ibv_reg_dmabuf_mr (rdma-core 34+ has it)");
		return reg_host_va(dev, mem, m, off, access, why);
	}
	errno = 0;
	m->mr = dev->api->reg_dmabuf_mr(dev->pd, off, m->len, off, m->dmabuf_fd, access);
	if (m->mr) {
		m->how = GPUD_RDMA_MR_DMABUF;
		return 0;
	}
	err = errno ? errno : EIO;
	if (dmabuf_unsupported(err)) {
		snprintf(why, sizeof(why), "cannot register dma-bufs (ibv_reg_dmabuf_mr: %s)",
			 strerror(err));
		return reg_host_va(dev, mem, m, off, access, why);
	}
	if (err == ENODEV || err == EIO)
		return gpud_err(-ENODEV, "rdma: %s: ibv_reg_dmabuf_mr: %s: the device is gone (unplugged, or its rxe link deleted); open it again",
				dev->name, strerror(err));
	return gpud_err(-err, "rdma: %s (provider %s): ibv_reg_dmabuf_mr(%zu bytes at %zu): %s",
			dev->name, dev->provider, m->len, off, strerror(err));
}

int gpud_rdma_reg(struct gpud_rdma_dev *dev, struct gpud_mem *mem, size_t off, size_t len,
		  uint32_t access, struct gpud_rdma_mr **out)
{
	const uint32_t known = GPUD_RDMA_ACCESS_LOCAL_WRITE | GPUD_RDMA_ACCESS_REMOTE_WRITE |
			       GPUD_RDMA_ACCESS_REMOTE_READ;
	size_t size;
	struct gpud_rdma_mr *m;
	int fd, ret;

	if (!dev || !mem || !out)
		return gpud_err(-EINVAL, "gpud_rdma_reg: NULL argument");
	if (access & ~known)
		return gpud_err(-EINVAL, "gpud_rdma_reg: unknown access flags 0x%x", access & ~known);
	/* Remote write needs local write (IB spec; the kernel says EINVAL). */
	if (access & GPUD_RDMA_ACCESS_REMOTE_WRITE)
		access |= GPUD_RDMA_ACCESS_LOCAL_WRITE;
	size = gpud_mem_size(mem);
	if (off >= size || len > size - off)
		return gpud_err(-EINVAL, "gpud_rdma_reg: [%zu, +%zu) is outside the %zu-byte %s memory",
				off, len, size, gpud_mem_kind_name(gpud_mem_kind(mem)));
	m = calloc(1, sizeof(*m));
	if (!m)
		return gpud_err(-ENOMEM, "rdma: out of memory");
	m->len = len ? len : size - off;
	m->iova = off;
	m->dmabuf_fd = -1;
	fd = gpud_mem_dmabuf_fd(mem);
	if (fd >= 0) {
		/* Our own reference: the MR may outlive the gpud_mem. */
		m->dmabuf_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (m->dmabuf_fd < 0) {
			ret = gpud_err(-errno, "rdma: dup of the dma-buf fd: %s", strerror(errno));
			goto err_free;
		}
		ret = reg_dmabuf(dev, mem, m, off, (int)access);
	} else {
		ret = reg_host_va(dev, mem, m, off, (int)access,
				  "was given memory without a dma-buf (GPUD_MEM_F_NO_DMABUF)");
	}
	if (ret)
		goto err_close_fd;
	/* Keep the fd only where the device imported it. */
	if (m->how == GPUD_RDMA_MR_HOST_VA && m->dmabuf_fd >= 0) {
		close(m->dmabuf_fd);
		m->dmabuf_fd = -1;
	}
	gpud_rdma_dev_ref(dev);
	m->dev = dev;
	*out = m;
	return 0;

err_close_fd:
	if (m->dmabuf_fd >= 0)
		close(m->dmabuf_fd);
err_free:
	free(m);
	return ret;
}

void gpud_rdma_mr_free(struct gpud_rdma_mr *m)
{
	int ret;

	if (!m)
		return;
	ret = m->dev->api->dereg_mr(m->mr);
	if (ret)
		gpud_log(GPUD_LOG_WARN, "rdma: %s: ibv_dereg_mr: %s (device gone?); freeing anyway",
			 m->dev->name, strerror(ret));
	if (m->dmabuf_fd >= 0)
		close(m->dmabuf_fd);
	rdma_dev_put(m->dev);
	free(m);
}

uint32_t gpud_rdma_mr_lkey(const struct gpud_rdma_mr *m)
{
	return m->mr->lkey;
}

uint32_t gpud_rdma_mr_rkey(const struct gpud_rdma_mr *m)
{
	return m->mr->rkey;
}

uint64_t gpud_rdma_mr_addr(const struct gpud_rdma_mr *m)
{
	return m->iova;
}

size_t gpud_rdma_mr_length(const struct gpud_rdma_mr *m)
{
	return m->len;
}

enum gpud_rdma_mr_how gpud_rdma_mr_how(const struct gpud_rdma_mr *m)
{
	return m->how;
}

void *gpud_rdma_mr_ibv(const struct gpud_rdma_mr *m)
{
	return m->mr;
}

/* ---- listing ---- */

static void rdma_describe(const struct gpud_verbs_api *api, struct ibv_device *d,
			  struct gpud_rdma_dev_info *di)
{
	struct gpud_rdma_dev *dev;
	struct ibv_mr *mr;
	int err;

	memset(di, 0, sizeof(*di));
	di->dmabuf = -1;
	snprintf(di->name, sizeof(di->name), "%s", api->get_device_name(d));
	rdma_provider(di->name, di->provider, sizeof(di->provider), di->netdev,
		      sizeof(di->netdev));
	if (rdma_dev_open_one(api, d, &dev)) {
		snprintf(di->why, sizeof(di->why), "cannot open: %s", gpud_errmsg());
		return;
	}
	if (!api->reg_dmabuf_mr) {
		di->dmabuf = 0;
		snprintf(di->why, sizeof(di->why), "libibverbs without ibv_reg_dmabuf_mr: host memory MRs only");
		goto out_put;
	}
	/* NCCL's probe: fd -1 gets EBADF from a provider that implements the verb. */
	errno = 0;
	mr = api->reg_dmabuf_mr(dev->pd, 0, 4096, 0, -1, 0);
	err = errno;
	if (mr) {
		api->dereg_mr(mr);
		err = 0;
	}
	if (err == EBADF || !err) {
		di->dmabuf = 1;
		snprintf(di->why, sizeof(di->why), "imports dma-bufs (ibv_reg_dmabuf_mr): GPU memory can be registered");
	} else if (dmabuf_unsupported(err)) {
		di->dmabuf = 0;
		snprintf(di->why, sizeof(di->why), "no dma-buf import (%s%s%s): host memory MRs only (gpud_rdma_reg falls back for host/vgem memory)",
			 di->provider, di->netdev[0] ? " on " : "", di->netdev);
	} else {
		snprintf(di->why, sizeof(di->why), "dma-buf probe answered %s", strerror(err));
	}
out_put:
	rdma_dev_put(dev);
}

int gpud_rdma_devs_get(struct gpud_rdma_dev_info *out, size_t max)
{
	const struct gpud_verbs_api *api;
	struct ibv_device **list;
	int n = 0, ret;

	if (!out && max)
		return gpud_err(-EINVAL, "gpud_rdma_devs_get: out is NULL");
	ret = verbs_load(&api);
	if (ret)
		return ret;
	errno = 0;
	list = api->get_device_list(&n);
	if (!list)
		return list_failed();
	for (int i = 0; i < n && (size_t)i < max; i++)
		rdma_describe(api, list[i], &out[i]);
	api->free_device_list(list);
	return n;
}
