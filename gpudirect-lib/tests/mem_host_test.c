// SPDX-License-Identifier: MIT
/*
 * Host memory on any kernel: memfd pages in copy mode (GPUD_MEM_F_NO_DMABUF),
 * bounds, rounding, segments, bad arguments, and, where /dev/udmabuf is
 * missing (the host kernel here), the export failing with -ENODEV and the
 * fix. The export itself is mem_udmabuf_test's job.
 */
#include "mem_util.h"
#include "mem/mem_internal.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

static const size_t MiB = 1u << 20;

static struct gpud_mem_opts opts(uint32_t flags)
{
	return (struct gpud_mem_opts){ .sz = sizeof(struct gpud_mem_opts), .flags = flags };
}

static void check_pattern_roundtrip(struct gpud_mem *m, uint64_t seed)
{
	size_t size = gpud_mem_size(m);
	uint8_t *buf = malloc(size), *back = malloc(size);

	T_ASSERT(buf && back);
	t_pattern_fill(seed, 0, buf, size);
	T_ASSERT_OK(gpud_mem_write(m, 0, buf, size));
	/* Through the mapping, and back through read. */
	T_ASSERT_EQ(-1, t_pattern_check(seed, 0, gpud_mem_host_ptr(m), size));
	memset(back, 0, size);
	T_ASSERT_OK(gpud_mem_read(m, 0, back, size));
	T_ASSERT_EQ(-1, t_pattern_check(seed, 0, back, size));
	free(buf);
	free(back);
}

static void copy_mode(void)
{
	struct gpud_mem_opts o = opts(GPUD_MEM_F_NO_DMABUF);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	enum gpud_mem_placement where;
	struct gpud_mem *m = NULL;
	uint8_t b[64];
	int fds = t_count_fds();

	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, 1, &o, &m));
	T_ASSERT_EQ(page, gpud_mem_size(m));
	T_ASSERT_EQ(-ENOENT, gpud_mem_dmabuf_fd(m));
	T_ASSERT(gpud_mem_host_ptr(m) != NULL);
	T_ASSERT_EQ(0, gpud_mem_device_ptr(m));
	T_ASSERT_EQ(GPUD_MEM_HOST, gpud_mem_kind(m));
	T_ASSERT_OK(gpud_mem_placement(m, &where));
	T_ASSERT_EQ(GPUD_MEM_PLACE_HOST, where);
	/* memfd pages start zeroed. */
	T_ASSERT_OK(gpud_mem_read(m, page - sizeof(b), b, sizeof(b)));
	for (size_t i = 0; i < sizeof(b); i++)
		T_ASSERT_EQ(0, b[i]);
	check_pattern_roundtrip(m, 11);

	/* Bounds: inside ok, one past the end -ERANGE, overflow -ERANGE. */
	T_ASSERT_OK(gpud_mem_write(m, page - 1, b, 1));
	T_ASSERT_EQ(-ERANGE, gpud_mem_write(m, page - 1, b, 2));
	T_ASSERT_MSG("outside");
	T_ASSERT_EQ(-ERANGE, gpud_mem_read(m, page + 1, b, 0));
	T_ASSERT_EQ(-ERANGE, gpud_mem_read(m, SIZE_MAX, b, 2));
	T_ASSERT_EQ(-ERANGE, gpud_mem_read(m, 1, b, SIZE_MAX));
	T_ASSERT_OK(gpud_mem_read(m, page, b, 0));
	T_ASSERT_EQ(-EINVAL, gpud_mem_read(m, 0, NULL, 1));
	gpud_mem_free(m);

	/* Rounding to pages. */
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, 3 * page + 1, &o, &m));
	T_ASSERT_EQ(4 * page, gpud_mem_size(m));
	gpud_mem_free(m);
	T_ASSERT_EQ(fds, t_count_fds());
}

static void huge_pages(void)
{
	struct gpud_mem_opts o = opts(GPUD_MEM_F_NO_DMABUF | GPUD_MEM_F_HUGEPAGES);
	struct gpud_mem *m = NULL;
	int fds = t_count_fds();

	/*
	 * Rounded to 2 MiB; backed by the hugetlb pool as far as it reaches
	 * (here usually empty: ordinary pages), the rest ordinary.
	 */
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, 3 * MiB, &o, &m));
	T_ASSERT_EQ(4 * MiB, gpud_mem_size(m));
	check_pattern_roundtrip(m, 12);
	gpud_mem_free(m);
	T_ASSERT_EQ(fds, t_count_fds());
}

#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"

static long meminfo(const char *key)
{
	char line[128];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	T_ASSERT(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key));
	fclose(f);
	return v;
}

static long read_nr_hugepages(void)
{
	FILE *f = fopen(NR_HUGEPAGES, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static bool write_nr_hugepages(long n)
{
	FILE *f = fopen(NR_HUGEPAGES, "w");
	bool ok;

	if (!f)
		return false;
	ok = fprintf(f, "%ld\n", n) > 0;
	return !fclose(f) && ok;
}

/* Two huge pages in the pool, 8 MiB asked: 4 MiB hugetlb + 4 MiB ordinary. */
static void huge_pages_mixed(void)
{
	struct gpud_mem_opts o = opts(GPUD_MEM_F_NO_DMABUF | GPUD_MEM_F_HUGEPAGES);
	struct gpud_mem *m = NULL;
	long avail_before;

	avail_before = meminfo("HugePages_Free:") - meminfo("HugePages_Rsvd:");
	T_ASSERT(avail_before >= 2);
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, 8 * MiB, &o, &m));
	T_ASSERT_EQ(8 * MiB, gpud_mem_size(m));
	/* The whole pool is ours (reserved at mmap). */
	T_ASSERT_EQ(avail_before - 2, meminfo("HugePages_Free:") - meminfo("HugePages_Rsvd:"));
	check_pattern_roundtrip(m, 14);
	gpud_mem_free(m);
	T_ASSERT_EQ(avail_before, meminfo("HugePages_Free:") - meminfo("HugePages_Rsvd:"));
}

static void maybe_huge_pages_mixed(void)
{
	long old = read_nr_hugepages();

	if (old < 0 || geteuid() != 0 || access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK)) {
		t_log("skip: mixed hugetlb/ordinary buffer needs root and 2 MiB hugetlb pages");
		return;
	}
	if (!write_nr_hugepages(old + 2) || read_nr_hugepages() != old + 2) {
		write_nr_hugepages(old);
		t_log("skip: could not grow " NR_HUGEPAGES " by 2");
		return;
	}
	t_scenario("huge pages where the pool has them, the rest ordinary", huge_pages_mixed);
	/* Restore the pool whatever the scenario did. */
	if (!write_nr_hugepages(old))
		T_FAIL("could not restore " NR_HUGEPAGES " to %ld", old);
}

static void segments(void)
{
	struct gpud_mem_opts o = opts(GPUD_MEM_F_NO_DMABUF);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct gpud_mem *m = NULL;
	int fds = t_count_fds();

	/* Five one-page memfds mapped back to back read as one range. */
	gpud_mem_host_set_segment_max(page);
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, 5 * page, &o, &m));
	gpud_mem_host_set_segment_max(0);
	T_ASSERT_EQ(5 * page, gpud_mem_size(m));
	check_pattern_roundtrip(m, 13);
	gpud_mem_free(m);
	T_ASSERT_EQ(fds, t_count_fds());
}

static void bad_arguments(void)
{
	struct gpud_mem_opts o = opts(GPUD_MEM_F_NO_DMABUF);
	struct gpud_mem *m = (void *)1;
	struct {
		struct gpud_mem_opts o;
		uint64_t future;
	} newer = { .o = o, .future = 1 };

	T_ASSERT_EQ(-EINVAL, gpud_mem_create(GPUD_MEM_HOST, 0, &o, &m));
	T_ASSERT_MSG("size 0");
	T_ASSERT_EQ(-E2BIG, gpud_mem_create(GPUD_MEM_HOST, SIZE_MAX - 1, &o, &m));
	o.flags = 1u << 7;
	T_ASSERT_EQ(-EINVAL, gpud_mem_create(GPUD_MEM_HOST, 4096, &o, &m));
	T_ASSERT_MSG("unknown flags");
	T_ASSERT_EQ(-EINVAL, gpud_mem_create(GPUD_MEM_KIND_MAX, 4096, NULL, &m));
	T_ASSERT_EQ(-EINVAL, gpud_mem_create(GPUD_MEM_HOST, 4096, NULL, NULL));
	/* A newer caller's unknown non-zero option is refused. */
	newer.o.sz = sizeof(newer);
	T_ASSERT_EQ(-EINVAL, gpud_mem_create(GPUD_MEM_HOST, 4096, &newer.o, &m));
	T_ASSERT(m == (void *)1);
	gpud_mem_free(NULL);
}

static void no_udmabuf(void)
{
	struct gpud_mem_opts o = opts(0);
	struct gpud_mem *m = (void *)1;
	char why[512];
	int fds = t_count_fds();

	T_ASSERT_EQ(-ENODEV, gpud_mem_create(GPUD_MEM_HOST, 4096, &o, &m));
	T_ASSERT_MSG("/dev/udmabuf is missing");
	T_ASSERT_MSG("CONFIG_UDMABUF");
	T_ASSERT_MSG("modprobe udmabuf");
	T_ASSERT_MSG("GPUD_MEM_F_NO_DMABUF");
	T_ASSERT(m == (void *)1);
	T_ASSERT_EQ(-ENODEV, gpud_mem_probe(GPUD_MEM_HOST, 0, why, sizeof(why)));
	T_ASSERT(strstr(why, "CONFIG_UDMABUF"));
	T_ASSERT_EQ(fds, t_count_fds());
}

int main(void)
{
	t_scenario("copy mode: read/write/bounds/rounding", copy_mode);
	t_scenario("huge pages flag: 2 MiB rounding, fallback", huge_pages);
	maybe_huge_pages_mixed();
	t_scenario("several memfd segments, one range", segments);
	t_scenario("bad arguments", bad_arguments);
	if (access("/dev/udmabuf", F_OK))
		t_scenario("no /dev/udmabuf: -ENODEV with the fix", no_udmabuf);
	else
		t_log("/dev/udmabuf present: export covered by mem_udmabuf_test");
	return T_EXIT_PASS;
}
