// SPDX-License-Identifier: MIT
/*
 * Host memory exported through /dev/udmabuf: a real dma-buf (fdinfo shows
 * exp_name), CPU writes through the mapping seen by gpud_mem_read (with
 * DMA_BUF_IOCTL_SYNC), a multi-memfd buffer (UDMABUF_CREATE_LIST), and the
 * size_limit_mb error. Needs a kernel with CONFIG_UDMABUF: runs in the
 * patched-kernel VM (ctest -L vm), skips on a host without it.
 */
#include "mem_util.h"
#include "mem/mem_internal.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static const size_t MiB = 1u << 20;

static bool fd_is_dmabuf(int fd, char *exp_name, size_t len)
{
	char path[64], line[256];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "exp_name:", 9)) {
			snprintf(exp_name, len, "%.63s", line + 9);
			exp_name[strcspn(exp_name, "\n")] = '\0';
			found = true;
		}
	fclose(f);
	return found;
}

static void export_roundtrip(size_t size, size_t segment_max, uint64_t seed)
{
	struct gpud_mem_opts o = { .sz = sizeof(o) };
	struct gpud_mem *m = NULL;
	uint8_t *back;
	char exp[64] = "";
	int fds = t_count_fds();

	size_t nseg = segment_max ? (size + segment_max - 1) / segment_max : 1;

	gpud_mem_host_set_segment_max(segment_max);
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, size, &o, &m));
	gpud_mem_host_set_segment_max(0);
	T_ASSERT(gpud_mem_dmabuf_fd(m) >= 0);
	/* The dma-buf and, for slices, each segment's memfd stay open. */
	T_ASSERT_EQ(fds + 1 + (int)nseg, t_count_fds());
	T_ASSERT(fd_is_dmabuf(gpud_mem_dmabuf_fd(m), exp, sizeof(exp)));
	t_log("dma-buf fd %d, exp_name:%s, %zu bytes, segment cap %zu", gpud_mem_dmabuf_fd(m),
	      exp, gpud_mem_size(m), segment_max);
	T_ASSERT(strstr(exp, "udmabuf"));

	/* Written straight through the mapping, read back bracketed by syncs. */
	t_pattern_fill(seed, 0, gpud_mem_host_ptr(m), size);
	back = malloc(size);
	T_ASSERT(back);
	T_ASSERT_OK(gpud_mem_read(m, 0, back, size));
	T_ASSERT_EQ(-1, t_pattern_check(seed, 0, back, size));
	/* And the other way. */
	t_pattern_fill(seed + 1, 0, back, size);
	T_ASSERT_OK(gpud_mem_write(m, 0, back, size));
	T_ASSERT_EQ(-1, t_pattern_check(seed + 1, 0, gpud_mem_host_ptr(m), size));
	free(back);
	gpud_mem_free(m);
	T_ASSERT_EQ(fds, t_count_fds());
}

/*
 * gpud_mem_slice: [off, off + len) of a buffer of @segs memfd segments as a
 * dma-buf of its own (what a fused NIC binds per member): its own fd of
 * exactly len bytes, whose mmap shows the parent's bytes from off, and
 * accessors and copies that are the parent's shifted by off.
 */
static void slice_roundtrip(size_t size, size_t segment_max, size_t off, size_t len,
			    uint64_t seed)
{
	struct gpud_mem_opts o = { .sz = sizeof(o) };
	struct gpud_mem *m = NULL, *s = (void *)1;
	char exp[64] = "";
	uint8_t *map, *back;
	int fds;

	gpud_mem_host_set_segment_max(segment_max);
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, size, &o, &m));
	gpud_mem_host_set_segment_max(0);
	fds = t_count_fds();
	T_ASSERT_EQ(-EINVAL, gpud_mem_slice(m, off + 1, len, &s));
	T_ASSERT_EQ(-EINVAL, gpud_mem_slice(m, off, size + 4096, &s));
	T_ASSERT(s == (void *)1);
	T_ASSERT_OK(gpud_mem_slice(m, off, len, &s));
	T_ASSERT_EQ(fds + 1, t_count_fds());
	T_ASSERT(gpud_mem_dmabuf_fd(s) >= 0 && gpud_mem_dmabuf_fd(s) != gpud_mem_dmabuf_fd(m));
	T_ASSERT(fd_is_dmabuf(gpud_mem_dmabuf_fd(s), exp, sizeof(exp)));
	T_ASSERT_EQ(len, gpud_mem_size(s));
	T_ASSERT_EQ(len, (size_t)lseek(gpud_mem_dmabuf_fd(s), 0, SEEK_END));
	T_ASSERT((char *)gpud_mem_host_ptr(m) + off == gpud_mem_host_ptr(s));
	T_ASSERT_EQ(GPUD_MEM_HOST, gpud_mem_kind(s));

	t_pattern_fill(seed, 0, gpud_mem_host_ptr(m), size);
	/* the slice's own dma-buf, mapped: byte N is the parent's byte off + N */
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, gpud_mem_dmabuf_fd(s), 0);
	T_ASSERT(map != MAP_FAILED);
	T_ASSERT_EQ(-1, t_pattern_check(seed, off, map, len));
	munmap(map, len);
	back = malloc(len);
	T_ASSERT(back);
	T_ASSERT_OK(gpud_mem_read(s, 0, back, len));
	T_ASSERT_EQ(-1, t_pattern_check(seed, off, back, len));
	T_ASSERT_EQ(-ERANGE, gpud_mem_read(s, 1, back, len));
	free(back);
	gpud_mem_free(s);
	T_ASSERT_EQ(fds, t_count_fds());
	gpud_mem_free(m);
	t_log("slice [%zu, %zu) of %zu bytes in %zu-byte segments: its own dma-buf (%s)", off,
	      off + len, size, segment_max ? segment_max : size, exp);
}

static unsigned long size_limit_mb(void)
{
	unsigned long v = 64;
	FILE *f = fopen("/sys/module/udmabuf/parameters/size_limit_mb", "r");

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 64;
		fclose(f);
	}
	return v;
}

int main(void)
{
	struct gpud_mem_opts o = { .sz = sizeof(o) };
	struct gpud_mem *m = (void *)1;
	unsigned long limit;
	char why[512];
	int fds;

	if (access("/dev/udmabuf", F_OK))
		t_skip("/dev/udmabuf is missing: this kernel has no CONFIG_UDMABUF (runs in the patched-kernel VM: ctest -L vm)");

	T_ASSERT_OK(gpud_mem_probe(GPUD_MEM_HOST, 0, why, sizeof(why)));
	t_log("probe: %s", why);
	T_ASSERT(strstr(why, "size_limit_mb"));

	export_roundtrip(4 * MiB, 0, 21);		/* one memfd: UDMABUF_CREATE */
	export_roundtrip(4 * MiB, MiB, 22);		/* four: UDMABUF_CREATE_LIST */
	export_roundtrip(5 * 4096 + 1, 4096, 23);	/* six one-page memfds */
	slice_roundtrip(4 * MiB, 0, 2 * MiB, 2 * MiB, 24);	/* the second half */
	slice_roundtrip(4 * MiB, MiB, MiB / 2, 2 * MiB, 25);	/* across three memfds */

	/* One MiB over the module's limit: refused before anything is allocated. */
	limit = size_limit_mb();
	fds = t_count_fds();
	T_ASSERT_EQ(-E2BIG, gpud_mem_create(GPUD_MEM_HOST, (limit + 1) * MiB, &o, &m));
	t_log("over the limit: %s", gpud_errmsg());
	T_ASSERT_MSG("size_limit_mb");
	T_ASSERT_MSG("echo");
	T_ASSERT_MSG("udmabuf.size_limit_mb=");
	T_ASSERT(m == (void *)1);
	T_ASSERT_EQ(fds, t_count_fds());
	/* Copy mode has no such limit. */
	o.flags = GPUD_MEM_F_NO_DMABUF;
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, (limit + 1) * MiB, &o, &m));
	gpud_mem_free(m);
	return T_EXIT_PASS;
}
