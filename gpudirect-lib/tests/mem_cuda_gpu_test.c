// SPDX-License-Identifier: MIT
/*
 * A real CUDA buffer exported as a dma-buf (gpu tier): the fd is a dma-buf
 * (fdinfo exp_name), and a pattern written with gpud_mem_write comes back
 * through gpud_mem_read. Skips, with the probe's reason, without a usable
 * GPU (no libcuda.so.1, no device, or a driver without dma-buf export).
 */
#include "mem_util.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <stdint.h>

int main(int argc, char **argv)
{
	int device = argc > 1 ? atoi(argv[1]) : 0;
	struct gpud_mem_opts o = { .sz = sizeof(o), .device = device };
	size_t size = 8u << 20;
	char why[512], path[64], line[256];
	bool exp_name = false;
	struct gpud_mem *m;
	uint8_t *buf;
	FILE *f;
	int fds;

	if (gpud_mem_probe(GPUD_MEM_CUDA, device, why, sizeof(why)))
		t_skip("%s", why);
	t_log("probe: %s", why);

	fds = t_count_fds();
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_CUDA, size - 1, &o, &m));
	T_ASSERT_EQ(size, gpud_mem_size(m));
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", gpud_mem_dmabuf_fd(m));
	f = fopen(path, "r");
	T_ASSERT(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "exp_name:", 9)) {
			exp_name = true;
			t_log("%s", line);
		}
	fclose(f);
	T_ASSERT(exp_name);

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
	t_log("ok");
	return T_EXIT_PASS;
}
