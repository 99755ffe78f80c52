// SPDX-License-Identifier: MIT
/*
 * A real CUDA buffer exported as a dma-buf (gpu tier):
 *  - the fd is a dma-buf: fstatfs says DMA_BUF_MAGIC (or, on kernels before
 *    the dma-buf pseudo filesystem, /proc/self/fd names "anon_inode:dmabuf"),
 *    fstat's size is the buffer's, /proc/self/fdinfo has exp_name and size;
 *  - DMA_BUF_IOCTL_SYNC START|READ ... END|READ: what it returns is reported,
 *    not asserted (NVIDIA's exporter is static, without CPU-access hooks: the
 *    ioctl may succeed doing nothing), likewise mmap() of the fd (ENOTSUPP,
 *    errno 524, before CUDA 13.3);
 *  - gpud_mem_probe()'s text names the BAR1 headroom;
 *  - a pattern written with gpud_mem_write comes back through gpud_mem_read.
 * Skips, with the probe's reason, without a usable GPU (no libcuda.so.1, no
 * device, or a driver without dma-buf export). With GPUD_GPU_RESULTS set the
 * findings go to $GPUD_GPU_RESULTS/mem_cuda_gpu_test.json as well.
 */
#include "mem_util.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <limits.h>
#include <linux/dma-buf.h>
#include <linux/magic.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>

struct dmabuf_facts {
	char link[128];		/* readlink /proc/self/fd/N */
	char exp_name[64];	/* fdinfo exp_name */
	long long fdinfo_size;	/* fdinfo size, -1 if absent */
	long long st_size;
	unsigned long fs_magic;
	int sync_start, sync_end;	/* 0 or -errno */
	int mmap_err;		/* 0 (mapped) or errno */
};

/* "abc\n" -> "abc", quotes and backslashes dropped: the text goes into JSON. */
static void copy_clean(char *dst, size_t len, const char *src)
{
	size_t o = 0;

	for (; *src && *src != '\n' && o + 1 < len; src++)
		if (*src != '"' && *src != '\\' && (unsigned char)*src >= 0x20)
			dst[o++] = *src;
	dst[o] = '\0';
}

static void read_fdinfo(int fd, struct dmabuf_facts *f)
{
	char path[64], line[256];
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	fp = fopen(path, "r");
	T_ASSERT(fp);
	f->fdinfo_size = -1;
	while (fgets(line, sizeof(line), fp)) {
		const char *v = line + 9 + strspn(line + 9, " \t");

		if (!strncmp(line, "exp_name:", 9))
			copy_clean(f->exp_name, sizeof(f->exp_name), v);
		else if (!strncmp(line, "size:", 5))
			f->fdinfo_size = atoll(line + 5);
	}
	fclose(fp);
}

static int sync_ioctl(int fd, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };

	return ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) ? -errno : 0;
}

static void inspect_fd(int fd, size_t size, struct dmabuf_facts *f)
{
	char path[64], raw[128];
	struct statfs sfs;
	struct stat st;
	ssize_t n;
	void *p;

	memset(f, 0, sizeof(*f));
	T_ASSERT(fd >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, raw, sizeof(raw) - 1);
	T_ASSERT(n > 0);
	raw[n] = '\0';
	copy_clean(f->link, sizeof(f->link), raw);
	T_ASSERT_OK(fstat(fd, &st) ? -errno : 0);
	T_ASSERT_OK(fstatfs(fd, &sfs) ? -errno : 0);
	f->st_size = (long long)st.st_size;
	f->fs_magic = (unsigned long)sfs.f_type;
	t_log("fd %d -> %s, fs magic 0x%lx, st_size %lld, mode 0%o", fd, f->link, f->fs_magic,
	      f->st_size, (unsigned int)st.st_mode);
	if (f->fs_magic != DMA_BUF_MAGIC && strncmp(f->link, "anon_inode:dmabuf", 17))
		T_FAIL("fd %d is not a dma-buf: fs magic 0x%lx (want 0x%x), link %s", fd,
		       f->fs_magic, DMA_BUF_MAGIC, f->link);
	/* dma_buf_export() sets the inode size to the buffer's */
	T_ASSERT_EQ(size, f->st_size);

	read_fdinfo(fd, f);
	t_log("fdinfo: exp_name \"%s\", size %lld", f->exp_name, f->fdinfo_size);
	if (!f->exp_name[0])
		T_FAIL("/proc/self/fdinfo/%d has no exp_name line: not a dma-buf?", fd);
	if (f->fdinfo_size >= 0)
		T_ASSERT_EQ(size, f->fdinfo_size);

	f->sync_start = sync_ioctl(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	f->sync_end = sync_ioctl(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	t_log("DMA_BUF_IOCTL_SYNC START|READ: %s, END|READ: %s (reported, not required: the "
	      "exporter may have no CPU-access hooks)",
	      f->sync_start ? strerror(-f->sync_start) : "ok",
	      f->sync_end ? strerror(-f->sync_end) : "ok");

	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	f->mmap_err = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED)
		munmap(p, 4096);
	if (p == MAP_FAILED)
		t_log("mmap of the dma-buf fails: errno %d (%s)", f->mmap_err,
		      f->mmap_err == 524 ? "ENOTSUPP" : strerror(f->mmap_err));
	else
		t_log("mmap of the dma-buf works");
}

static void write_result(const struct dmabuf_facts *f, size_t size, const char *probe)
{
	const char *dir = getenv("GPUD_GPU_RESULTS");
	char path[PATH_MAX], why[512];
	FILE *fp;

	copy_clean(why, sizeof(why), probe);
	snprintf(path, sizeof(path), "%s/mem_cuda_gpu_test.json", dir && *dir ? dir : ".");
	fp = dir && *dir ? fopen(path, "w") : NULL;
	if (dir && *dir && !fp)
		T_FAIL("GPUD_GPU_RESULTS: cannot write %s: %s", path, strerror(errno));
	for (int i = 0; i < 2; i++) {
		FILE *out = i ? fp : stdout;

		if (!out)
			continue;
		fprintf(out, "%s{\"size\": %zu, \"link\": \"%s\", \"fs_magic\": %lu, "
			"\"exp_name\": \"%s\", \"fdinfo_size\": %lld, \"sync_start_rc\": %d, "
			"\"sync_end_rc\": %d, \"mmap_errno\": %d, \"probe\": \"%s\"}\n",
			i ? "" : "RESULT mem_cuda_gpu_test ", size, f->link, f->fs_magic,
			f->exp_name, f->fdinfo_size, f->sync_start, f->sync_end, f->mmap_err, why);
	}
	if (fp && fclose(fp))
		T_FAIL("GPUD_GPU_RESULTS: writing %s: %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
	int device = argc > 1 ? atoi(argv[1]) : 0;
	struct gpud_mem_opts o = { .sz = sizeof(o), .device = device };
	size_t size = 8u << 20;
	struct dmabuf_facts facts;
	char why[512];
	struct gpud_mem *m;
	uint8_t *buf;
	int fds;

	if (gpud_mem_probe(GPUD_MEM_CUDA, device, why, sizeof(why)))
		t_skip("%s", why);
	t_log("probe: %s", why);
	if (!strstr(why, "BAR1"))
		T_FAIL("probe text names no BAR1 headroom (gpudirect.h promises it): \"%s\"", why);

	fds = t_count_fds();
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_CUDA, size - 1, &o, &m));
	T_ASSERT_EQ(size, gpud_mem_size(m));
	T_ASSERT(gpud_mem_device_ptr(m) != 0);
	inspect_fd(gpud_mem_dmabuf_fd(m), size, &facts);

	buf = malloc(size);
	T_ASSERT(buf);
	t_pattern_fill(99, 0, buf, size);
	T_ASSERT_OK(gpud_mem_write(m, 0, buf, size));
	memset(buf, 0, size);
	T_ASSERT_OK(gpud_mem_read(m, 0, buf, size));
	T_ASSERT_EQ(-1, t_pattern_check(99, 0, buf, size));
	/* An unaligned piece in the middle too. */
	T_ASSERT_OK(gpud_mem_read(m, 4097, buf, 12345));
	T_ASSERT_EQ(-1, t_pattern_check(99, 4097, buf, 12345));
	free(buf);
	gpud_mem_free(m);
	T_ASSERT_EQ(fds, t_count_fds());
	write_result(&facts, size, why);
	t_log("ok");
	return T_EXIT_PASS;
}
