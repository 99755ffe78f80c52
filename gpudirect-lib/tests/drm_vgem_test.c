// SPDX-License-Identifier: MIT
/*
 * vgem for real (the VM has CONFIG_DRM_VGEM; skips where /dev/dri has no
 * vgem node): a dumb buffer on the card node exported with PRIME, written
 * and read back through MAP_DUMB, and the same bytes seen through an
 * independent mmap of the dma-buf itself (so the export really is this
 * memory); the render node's EACCES, the dumb-buffer size limit, placement,
 * the node listing; no fd left behind.
 */
#include "mem_util.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#define SIZE (1u << 20)

int main(void)
{
	char card[sizeof(((struct gpud_drm_node_info *)0)->path)] = "";
	char render[sizeof(card)] = "", why[512];
	struct gpud_drm_node_info ni[16];
	struct gpud_mem_opts o = { .sz = sizeof(o) };
	enum gpud_mem_placement where;
	static uint8_t buf[SIZE], back[SIZE];
	struct gpud_mem *m = NULL;
	int n, fds;
	uint8_t *dm;

	n = gpud_drm_nodes_get(ni, 16);
	T_ASSERT(n >= 0);
	for (int i = 0; i < n && i < 16; i++) {
		t_log("%s: driver \"%s\"%s%s%s: %s", ni[i].path, ni[i].driver,
		      ni[i].render ? ", render" : "", ni[i].prime_export ? ", PRIME export" : "",
		      ni[i].dumb ? ", dumb" : "", ni[i].why);
		if (strcmp(ni[i].driver, "vgem"))
			continue;
		memcpy(ni[i].render ? render : card, ni[i].path, sizeof(card));
	}
	if (!card[0])
		t_skip("no vgem node in /dev/dri (CONFIG_DRM_VGEM / modprobe vgem; the VM test has it)");
	T_ASSERT_OK(gpud_mem_probe(GPUD_MEM_DRM, 0, why, sizeof(why)));
	t_log("probe: %s", why);

	fds = t_count_fds();
	o.path = card;
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_DRM, SIZE - 100, &o, &m));
	T_ASSERT_EQ(SIZE, gpud_mem_size(m));
	T_ASSERT(gpud_mem_dmabuf_fd(m) >= 0);
	T_ASSERT(gpud_mem_host_ptr(m) != NULL);
	/* the node and the dma-buf */
	T_ASSERT_EQ(fds + 2, t_count_fds());
	/* vgem's shmem pages start zeroed */
	T_ASSERT_OK(gpud_mem_read(m, 0, back, SIZE));
	for (size_t i = 0; i < SIZE; i++)
		if (back[i])
			T_FAIL("byte %zu of a fresh vgem buffer is 0x%x", i, back[i]);
	t_pattern_fill(42, 0, buf, SIZE);
	T_ASSERT_OK(gpud_mem_write(m, 0, buf, SIZE));
	T_ASSERT_OK(gpud_mem_read(m, 0, back, SIZE));
	T_ASSERT_EQ(-1, t_pattern_check(42, 0, back, SIZE));
	/* The dma-buf's own mapping shows the same bytes. */
	dm = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, gpud_mem_dmabuf_fd(m), 0);
	T_ASSERT(dm != MAP_FAILED);
	T_ASSERT_EQ(-1, t_pattern_check(42, 0, dm, SIZE));
	munmap(dm, SIZE);
	T_ASSERT_OK(gpud_mem_placement_why(m, &where, why, sizeof(why)));
	T_ASSERT_EQ(GPUD_MEM_PLACE_HOST, where);
	t_log("placement: %s (%s)", gpud_mem_placement_name(where), why);
	gpud_mem_free(m);
	T_ASSERT_EQ(fds, t_count_fds());

	/* copy-only: no dma-buf, the mapping still works */
	o.flags = GPUD_MEM_F_NO_DMABUF;
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m));
	T_ASSERT_EQ(-ENOENT, gpud_mem_dmabuf_fd(m));
	T_ASSERT_OK(gpud_mem_write(m, 0, buf, 4096));
	gpud_mem_free(m);
	o.flags = 0;

	/* over the dumb-buffer limit */
	T_ASSERT_EQ(-E2BIG, gpud_mem_create(GPUD_MEM_DRM, (size_t)4 << 30, &o, &m));
	T_ASSERT_MSG("32-bit");
	if (render[0]) {
		o.path = render;
		T_ASSERT_EQ(-EACCES, gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m));
		T_ASSERT_MSG("render nodes refuse dumb buffers");
		t_log("render node: %s", gpud_errmsg());
	}
	o.path = "/dev/null";
	T_ASSERT_EQ(-ENODEV, gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m));
	T_ASSERT_MSG("is not a DRM device");
	T_ASSERT_EQ(fds, t_count_fds());
	t_log("drm_vgem_test: pass");
	return T_EXIT_PASS;
}
