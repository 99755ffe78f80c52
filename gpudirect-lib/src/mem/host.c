// SPDX-License-Identifier: MIT
/*
 * Host memory: memfd pages mapped into the process and exported as one
 * dma-buf through /dev/udmabuf. This is what devmem tests use where no GPU is
 * around, and the copy-mode target when there is no udmabuf at all.
 *
 * Segments. One memfd can hold any size, so ordinary memory is one segment
 * and UDMABUF_CREATE. The buffer spans several memfds (UDMABUF_CREATE_LIST)
 * when:
 *   - GPUD_MEM_F_HUGEPAGES is set and the hugetlb pool has fewer free 2 MiB
 *     pages than the buffer needs: the huge pages it has go into a hugetlb
 *     memfd, the remainder into an ordinary one (rather than failing, or
 *     silently dropping huge pages altogether);
 *   - a test capped the segment size (gpud_mem_host_set_segment_max()).
 * The segments are mapped back to back so the CPU sees one range, and the
 * list keeps that order, so dma-buf offset N is mapping offset N. Exported
 * memory keeps its memfds open (one fd per segment, normally one or two):
 * gpud_mem_slice() builds a slice's udmabuf from parts of them.
 */
#include "mem_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/udmabuf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif

#define UDMABUF_DEV "/dev/udmabuf"
#define UDMABUF_PARAMS "/sys/module/udmabuf/parameters/"
#define UDMABUF_SIZE_LIMIT_MB_DEFAULT 64	/* drivers/dma-buf/udmabuf.c */
#define UDMABUF_LIST_LIMIT_DEFAULT 1024
#define HUGE_2M (2u << 20)
#define HUGETLB_2M_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"

struct host_seg {
	int memfd;
	size_t size;
	bool huge;
};

struct host_mem {
	void *resv;		/* whole reservation, munmap()ed at destroy */
	size_t resv_len;
	/* exported memory keeps its memfds: gpud_mem_slice() exports parts of them */
	struct host_seg *segs;
	int nseg;
};

static size_t segment_max;	/* test hook; accessed with __atomic only */

void gpud_mem_host_set_segment_max(size_t bytes)
{
	__atomic_store_n(&segment_max, bytes, __ATOMIC_RELAXED);
}

/*
 * Reads one unsigned number from a sysfs file into *out; false (and *out
 * untouched) when the file is missing or holds no number. Every caller falls
 * back to a default then, so no errno is kept: with `return -errno` nothing
 * told the compiler (or a reader) that a failed fopen() cannot return 0,
 * "success" with *out unset, and gcc -O3 warned callers might read it.
 */
static bool read_ulong(const char *path, unsigned long *out)
{
	unsigned long v;
	FILE *f;
	int n;

	f = fopen(path, "re");
	if (!f)
		return false;
	n = fscanf(f, "%lu", &v);
	fclose(f);
	if (n != 1)
		return false;
	*out = v;
	return true;
}

static unsigned long udmabuf_param(const char *name, unsigned long dflt)
{
	char path[128];
	unsigned long v;

	snprintf(path, sizeof(path), UDMABUF_PARAMS "%s", name);
	return read_ulong(path, &v) ? v : dflt;
}

static int udmabuf_missing(char *why, size_t len)
{
	return gpud_why(-ENODEV, why, len,
			    "host: " UDMABUF_DEV " is missing: this kernel has no CONFIG_UDMABUF; use a kernel with it (e.g. Debian's stock 6.12) or run `modprobe udmabuf`; copy mode works without it (GPUD_MEM_F_NO_DMABUF)");
}

/* Checks @size and @nseg against udmabuf's module parameters. */
static int udmabuf_check_limits(size_t size, size_t nseg, char *why, size_t len)
{
	unsigned long limit_mb = udmabuf_param("size_limit_mb", UDMABUF_SIZE_LIMIT_MB_DEFAULT);
	unsigned long list_limit = udmabuf_param("list_limit", UDMABUF_LIST_LIMIT_DEFAULT);
	unsigned long need_mb = (unsigned long)((size + (1u << 20) - 1) >> 20);

	if (size > (size_t)limit_mb << 20)
		return gpud_why(-E2BIG, why, len,
				    "host: %zu bytes exceed udmabuf's size_limit_mb=%lu (one dma-buf at most %lu MiB); raise it with `echo %lu > " UDMABUF_PARAMS "size_limit_mb` or boot with udmabuf.size_limit_mb=%lu",
				    size, limit_mb, limit_mb, need_mb, need_mb);
	if (nseg > list_limit)
		return gpud_why(-E2BIG, why, len,
				    "host: %zu memfd segments exceed udmabuf's list_limit=%lu; raise it with `echo %zu > " UDMABUF_PARAMS "list_limit` or boot with udmabuf.list_limit=%zu",
				    nseg, list_limit, nseg, nseg);
	return 0;
}

static int udmabuf_open(char *why, size_t len)
{
	int fd = open(UDMABUF_DEV, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	if (errno == ENOENT || errno == ENXIO || errno == ENODEV)
		return udmabuf_missing(why, len);
	return gpud_why(-errno, why, len, "host: cannot open " UDMABUF_DEV ": %s%s",
			    strerror(errno), errno == EACCES ? " (needs root or a udev rule granting access)" : "");
}

static int host_probe(int device, char *why, size_t len)
{
	unsigned long limit_mb;
	int fd;

	fd = udmabuf_open(why, len);
	if (fd < 0)
		return fd;
	close(fd);
	limit_mb = udmabuf_param("size_limit_mb", UDMABUF_SIZE_LIMIT_MB_DEFAULT);
	return gpud_why(0, why, len,
			    "host: usable: " UDMABUF_DEV " present; one buffer at most %lu MiB (udmabuf size_limit_mb; raise with `echo N > " UDMABUF_PARAMS "size_limit_mb` or udmabuf.size_limit_mb=N)",
			    limit_mb);
}

/* Free 2 MiB pages the hugetlb pool can still promise (free minus reserved). */
static size_t hugetlb_free_bytes(void)
{
	unsigned long free_pages, resv;

	if (!read_ulong(HUGETLB_2M_DIR "free_hugepages", &free_pages) ||
	    !read_ulong(HUGETLB_2M_DIR "resv_hugepages", &resv) || resv >= free_pages)
		return 0;
	return (size_t)(free_pages - resv) * HUGE_2M;
}

/*
 * Splits @size into segments: huge pages first (as many as the pool has), the
 * rest ordinary, each at most the test hook's cap. Returns the count or
 * -errno; *out is calloc()ed with every memfd -1.
 */
static int plan_segments(size_t size, bool huge, size_t page, struct host_seg **out)
{
	size_t cap = __atomic_load_n(&segment_max, __ATOMIC_RELAXED);
	size_t huge_bytes = 0, n = 0, i = 0;
	struct host_seg *segs;

	if (huge) {
		huge_bytes = hugetlb_free_bytes();
		if (huge_bytes > size)
			huge_bytes = size;
		if (huge_bytes < size)
			gpud_log(GPUD_LOG_INFO,
				 "host: hugetlb pool has %zu of the %zu bytes asked; the rest is ordinary pages (raise /proc/sys/vm/nr_hugepages)",
				 huge_bytes, size);
	}
	cap = cap ? gpud_mem_round_up(cap, huge ? HUGE_2M : page) : size;
	if (!cap)
		cap = size;
	n = (huge_bytes + cap - 1) / cap + (size - huge_bytes + cap - 1) / cap;
	if (n > INT_MAX)
		return -E2BIG;
	segs = calloc(n, sizeof(*segs));
	if (!segs)
		return -ENOMEM;
	for (size_t left = huge_bytes; left; i++) {
		segs[i].size = left < cap ? left : cap;
		segs[i].huge = true;
		left -= segs[i].size;
	}
	for (size_t left = size - huge_bytes; left; i++) {
		segs[i].size = left < cap ? left : cap;
		left -= segs[i].size;
	}
	for (i = 0; i < n; i++)
		segs[i].memfd = -1;
	*out = segs;
	return (int)n;
}

/* memfd with F_SEAL_SHRINK (udmabuf's requirement; no write seals), mapped at @addr. */
static int seg_map(struct host_seg *seg, void *addr)
{
	unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	void *p;
	int ret;

	if (seg->huge)
		flags |= MFD_HUGETLB | MFD_HUGE_2MB;
	seg->memfd = memfd_create("gpud-host", flags);
	if (seg->memfd < 0)
		return gpud_err(-errno, "host: memfd_create%s: %s", seg->huge ? " (hugetlb)" : "",
				strerror(errno));
	if (ftruncate(seg->memfd, (off_t)seg->size)) {
		ret = gpud_err(-errno, "host: ftruncate(memfd, %zu): %s", seg->size, strerror(errno));
		goto err_close;
	}
	if (fcntl(seg->memfd, F_ADD_SEALS, F_SEAL_SHRINK)) {
		ret = gpud_err(-errno, "host: sealing the memfd (F_SEAL_SHRINK): %s", strerror(errno));
		goto err_close;
	}
	/* MAP_SHARED of a hugetlb memfd reserves its pages now, or fails. */
	p = mmap(addr, seg->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, seg->memfd, 0);
	if (p == MAP_FAILED) {
		ret = gpud_err(-errno, "host: mmap of %zu-byte memfd%s: %s", seg->size,
			       seg->huge ? " (hugetlb)" : "", strerror(errno));
		goto err_close;
	}
	return 0;

err_close:
	close(seg->memfd);
	seg->memfd = -1;
	return ret;
}

/* One dma-buf over segs[i] from byte offs[i] (@offs NULL: from 0), segs[i].size each. */
static int udmabuf_export(const struct host_seg *segs, const size_t *offs, int nseg, int *out_fd)
{
	struct udmabuf_create_list *list;
	int devfd, fd, ret;

	devfd = udmabuf_open(NULL, 0);
	if (devfd < 0) {
		char why[GPUD_ERRMSG_MAX];

		udmabuf_open(why, sizeof(why));
		return gpud_err(devfd, "%s", why);
	}
	if (nseg == 1) {
		struct udmabuf_create c = {
			.memfd = (__u32)segs[0].memfd,
			.flags = UDMABUF_FLAGS_CLOEXEC,
			.offset = offs ? offs[0] : 0,
			.size = segs[0].size,
		};

		fd = ioctl(devfd, UDMABUF_CREATE, &c);
	} else {
		list = calloc(1, sizeof(*list) + (size_t)nseg * sizeof(list->list[0]));
		if (!list) {
			ret = gpud_err(-ENOMEM, "host: out of memory");
			goto err_close_dev;
		}
		list->flags = UDMABUF_FLAGS_CLOEXEC;
		list->count = (__u32)nseg;
		for (int i = 0; i < nseg; i++) {
			list->list[i].memfd = (__u32)segs[i].memfd;
			list->list[i].offset = offs ? offs[i] : 0;
			list->list[i].size = segs[i].size;
		}
		fd = ioctl(devfd, UDMABUF_CREATE_LIST, list);
		free(list);
	}
	if (fd < 0) {
		ret = gpud_err(-errno, "host: %s with %d memfd segment(s): %s",
			       nseg == 1 ? "UDMABUF_CREATE" : "UDMABUF_CREATE_LIST", nseg,
			       strerror(errno));
		goto err_close_dev;
	}
	close(devfd);
	*out_fd = fd;
	return 0;

err_close_dev:
	close(devfd);
	return ret;
}

static int host_create(struct gpud_mem *mem, size_t req)
{
	bool huge = mem->opts.flags & GPUD_MEM_F_HUGEPAGES;
	bool export = !(mem->opts.flags & GPUD_MEM_F_NO_DMABUF);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t align = huge ? HUGE_2M : page;
	struct host_seg *segs = NULL;
	struct host_mem *hm;
	char why[GPUD_ERRMSG_MAX];
	int nseg, ret, fd = -1;
	size_t size, off;
	char *base;

	size = gpud_mem_round_up(req, align);
	if (!size || size > (size_t)SSIZE_MAX)
		return gpud_err(-E2BIG, "host: %zu bytes is too large", req);

	nseg = plan_segments(size, huge, page, &segs);
	if (nseg < 0)
		return gpud_err(nseg, "host: planning %zu bytes: %s", size, strerror(-nseg));
	/* Cheap checks first: no point allocating what udmabuf will refuse. */
	if (export) {
		ret = udmabuf_check_limits(size, (size_t)nseg, why, sizeof(why));
		if (!ret && access(UDMABUF_DEV, F_OK))
			ret = udmabuf_missing(why, sizeof(why));
		if (ret) {
			gpud_err(ret, "%s", why);
			goto err_free_segs;
		}
	}

	hm = calloc(1, sizeof(*hm));
	if (!hm) {
		ret = gpud_err(-ENOMEM, "host: out of memory");
		goto err_free_segs;
	}
	/*
	 * Reserve the whole range first (plus slack to 2 MiB-align hugetlb
	 * segments), then map each memfd over its part with MAP_FIXED: nothing
	 * else can land between the segments.
	 */
	hm->resv_len = size + (huge ? HUGE_2M : 0);
	hm->resv = mmap(NULL, hm->resv_len, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (hm->resv == MAP_FAILED) {
		ret = gpud_err(-errno, "host: reserving %zu bytes of address space: %s",
			       hm->resv_len, strerror(errno));
		goto err_free_hm;
	}
	base = (char *)gpud_mem_round_up((size_t)hm->resv, align);

	off = 0;
	for (int i = 0; i < nseg; i++) {
		ret = seg_map(&segs[i], base + off);
		if (ret && segs[i].huge && ret == -ENOMEM) {
			/* The pool emptied since we looked: ordinary pages will do. */
			gpud_log(GPUD_LOG_INFO, "host: hugetlb pool exhausted; using ordinary pages");
			segs[i].huge = false;
			ret = seg_map(&segs[i], base + off);
		}
		if (ret)
			goto err_unmap;
		off += segs[i].size;
	}
	if (export) {
		ret = udmabuf_export(segs, NULL, nseg, &fd);
		if (ret)
			goto err_unmap;
	}
	/*
	 * The mappings and the dma-buf hold their own references; exported
	 * memory keeps the fds for slices (export_range), the rest closes them.
	 */
	if (export) {
		hm->segs = segs;
		hm->nseg = nseg;
	} else {
		for (int i = 0; i < nseg; i++)
			close(segs[i].memfd);
		free(segs);
	}

	mem->size = size;
	mem->host_ptr = base;
	mem->dmabuf_fd = fd;
	mem->priv = hm;
	return 0;

err_unmap:
	munmap(hm->resv, hm->resv_len);
	for (int i = 0; i < nseg; i++)
		if (segs[i].memfd >= 0)
			close(segs[i].memfd);
err_free_hm:
	free(hm);
err_free_segs:
	free(segs);
	return ret;
}

static void host_destroy(struct gpud_mem *mem)
{
	struct host_mem *hm = mem->priv;

	if (mem->dmabuf_fd >= 0)
		close(mem->dmabuf_fd);
	for (int i = 0; i < hm->nseg; i++)
		close(hm->segs[i].memfd);
	free(hm->segs);
	munmap(hm->resv, hm->resv_len);
	free(hm);
}

/* A udmabuf over the parts of the segments that [off, off + len) covers. */
static int host_export_range(struct gpud_mem *mem, size_t off, size_t len, int *out_fd)
{
	struct host_mem *hm = mem->priv;
	size_t at = 0, end = off + len, *offs;
	struct host_seg *part;
	int n = 0, ret;

	if (!hm->nseg)
		return gpud_err(-ENOENT, "host: memory created with GPUD_MEM_F_NO_DMABUF has no dma-buf to slice");
	part = calloc((size_t)hm->nseg, sizeof(*part));
	offs = calloc((size_t)hm->nseg, sizeof(*offs));
	if (!part || !offs) {
		ret = gpud_err(-ENOMEM, "host: out of memory");
		goto out;
	}
	for (int i = 0; i < hm->nseg; at += hm->segs[i].size, i++) {
		size_t s = at > off ? at : off;
		size_t e = at + hm->segs[i].size < end ? at + hm->segs[i].size : end;

		if (s >= e)
			continue;
		part[n].memfd = hm->segs[i].memfd;
		part[n].size = e - s;
		offs[n++] = s - at;
	}
	ret = udmabuf_export(part, offs, n, out_fd);
out:
	free(offs);
	free(part);
	return ret;
}

static int host_write(struct gpud_mem *mem, size_t off, const void *src, size_t len)
{
	return gpud_mem_sync_copy(mem, (char *)mem->host_ptr + off, src, len, true);
}

static int host_read(struct gpud_mem *mem, size_t off, void *dst, size_t len)
{
	return gpud_mem_sync_copy(mem, dst, (const char *)mem->host_ptr + off, len, false);
}

static int host_placement(const struct gpud_mem *mem, enum gpud_mem_placement *where,
			  char *why, size_t len)
{
	*where = GPUD_MEM_PLACE_HOST;
	gpud_why(0, why, len, "memfd pages in system RAM");
	return 0;
}

const struct gpud_mem_ops gpud_mem_host_ops = {
	.name = "host",
	.probe = host_probe,
	.create = host_create,
	.destroy = host_destroy,
	.write = host_write,
	.read = host_read,
	.placement = host_placement,
	.export_range = host_export_range,
};
