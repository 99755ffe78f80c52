// SPDX-License-Identifier: MIT
/*
 * The drm backend without a GPU: the amdgpu path against a fake
 * libdrm_amdgpu (tests/fakes/fake_drm_amdgpu.c) on fake nodes (plain files
 * in a temporary /dev/dri whose content is the driver name the test hook
 * reports), node listing and probe text, bad nodes, every libdrm_amdgpu step
 * failing with nothing leaked, and the placement decision itself. The raw
 * dumb-buffer/PRIME ioctls need a kernel: drm_vgem_vm_test covers them.
 */
#include "mem_util.h"
#include "mem/mem_internal.h"

#include <gpudirect/gpudirect.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

static int (*live_devs)(void), (*live_bos)(void), (*live_maps)(void);
static uint32_t (*last_heap)(void);
static char dir[64];

/* The test hook: a fake node's content is its driver; empty = not DRM. */
static int fake_driver_of(int fd, char *name, size_t len)
{
	ssize_t n = pread(fd, name, len - 1, 0);

	if (n <= 0)
		return -ENOTTY;
	name[n] = '\0';
	name[strcspn(name, "\n")] = '\0';
	return 0;
}

static void make_node(const char *name, const char *driver)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	T_ASSERT(fd >= 0);
	T_ASSERT_EQ((ssize_t)strlen(driver), write(fd, driver, strlen(driver)));
	close(fd);
}

static void setup(void)
{
	void *lib;

	snprintf(dir, sizeof(dir), "/tmp/gpud-drm-fake.XXXXXX");
	T_ASSERT(mkdtemp(dir));
	make_node("card0", "vgem");
	make_node("card1", "");		/* not a DRM device */
	make_node("renderD128", "vgem");
	make_node("renderD129", "amdgpu");
	make_node("renderD130", "amdgpu");
	gpud_drm_set_test_hooks(dir, fake_driver_of);
	setenv("GPUD_LIBDRM_AMDGPU", FAKE_DRM_AMDGPU_PATH, 1);
	lib = dlopen(FAKE_DRM_AMDGPU_PATH, RTLD_NOW);
	if (!lib)
		T_FAIL("dlopen %s: %s", FAKE_DRM_AMDGPU_PATH, dlerror());
	*(void **)&live_devs = dlsym(lib, "fake_amdgpu_live_devs");
	*(void **)&live_bos = dlsym(lib, "fake_amdgpu_live_bos");
	*(void **)&live_maps = dlsym(lib, "fake_amdgpu_live_maps");
	*(void **)&last_heap = dlsym(lib, "fake_amdgpu_last_heap");
	T_ASSERT(live_devs && live_bos && live_maps && last_heap);
}

static void teardown(void)
{
	const char *names[] = { "card0", "card1", "renderD128", "renderD129", "renderD130" };
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void assert_clean(int fds)
{
	T_ASSERT_EQ(fds, t_count_fds());
	T_ASSERT_EQ(0, live_devs());
	T_ASSERT_EQ(0, live_bos());
	T_ASSERT_EQ(0, live_maps());
}

static struct gpud_mem_opts opts(int device, const char *path, uint32_t flags)
{
	return (struct gpud_mem_opts){ .sz = sizeof(struct gpud_mem_opts), .device = device,
				       .path = path, .flags = flags };
}

static void spec(void)
{
	struct gpud_mem_opts o = opts(7, "x", 0);
	enum gpud_mem_kind k;

	T_ASSERT_OK(gpud_mem_parse_spec("amdgpu:1", &k, &o));
	T_ASSERT_EQ(GPUD_MEM_DRM, k);
	T_ASSERT_EQ(1, o.device);
	T_ASSERT(o.path == NULL);
	T_ASSERT_OK(gpud_mem_parse_spec("amdgpu", &k, &o));
	T_ASSERT_EQ(0, o.device);
	T_ASSERT_EQ(-EINVAL, gpud_mem_parse_spec("amdgpu:x", &k, &o));
	T_ASSERT_MSG("amdgpu[:N]");
	T_ASSERT_OK(gpud_mem_parse_spec("drm:/dev/dri/card0", &k, &o));
	T_ASSERT_STREQ("/dev/dri/card0", o.path);
	T_ASSERT_STREQ("system", gpud_mem_placement_name(GPUD_MEM_PLACE_HOST));
	T_ASSERT_STREQ("vram", gpud_mem_placement_name(GPUD_MEM_PLACE_DEVICE));
	T_ASSERT_STREQ("unknown", gpud_mem_placement_name(GPUD_MEM_PLACE_UNKNOWN));
}

static void listing(void)
{
	struct gpud_drm_node_info ni[8];
	char why[512];
	int n;

	setup();
	n = gpud_drm_nodes_get(ni, 8);
	T_ASSERT_EQ(5, n);
	/* cards first, then render nodes, by number */
	T_ASSERT(strstr(ni[0].path, "/card0"));
	T_ASSERT(strstr(ni[1].path, "/card1"));
	T_ASSERT(strstr(ni[2].path, "/renderD128"));
	T_ASSERT_STREQ("", ni[1].driver);
	T_ASSERT(!ni[1].usable);
	T_ASSERT(strstr(ni[1].why, "not a DRM device"));
	T_ASSERT(ni[2].render);
	T_ASSERT_STREQ("amdgpu", ni[3].driver);
	T_ASSERT_EQ(0, ni[3].amdgpu_index);
	T_ASSERT_EQ(1, ni[4].amdgpu_index);
	T_ASSERT(ni[3].usable);
	T_ASSERT(strstr(ni[3].why, "amdgpu:0"));
	T_ASSERT_EQ(5, gpud_drm_nodes_get(NULL, 0));
	T_ASSERT_OK(gpud_mem_probe(GPUD_MEM_DRM, 0, why, sizeof(why)));
	t_log("probe: %s", why);
	T_ASSERT(strstr(why, "renderD129"));
	teardown();
}

static void amdgpu_vram(void)
{
	struct gpud_mem_opts o = opts(1, NULL, 0);
	enum gpud_mem_placement where;
	uint8_t buf[5000], back[5000];
	struct gpud_mem *m = NULL;
	char why[512];
	int fds;

	setup();
	fds = t_count_fds();
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_DRM, 5000, &o, &m));
	T_ASSERT_EQ(8192, gpud_mem_size(m));
	T_ASSERT_EQ(4, last_heap());		/* AMDGPU_GEM_DOMAIN_VRAM */
	T_ASSERT(gpud_mem_dmabuf_fd(m) >= 0);
	/* the dma-buf and libdrm_amdgpu's dup of the node */
	T_ASSERT_EQ(fds + 2, t_count_fds());
	T_ASSERT(gpud_mem_host_ptr(m) == NULL);	/* VRAM is not host memory */
	t_pattern_fill(9, 0, buf, sizeof(buf));
	T_ASSERT_OK(gpud_mem_write(m, 100, buf, sizeof(buf)));
	T_ASSERT_OK(gpud_mem_read(m, 100, back, sizeof(back)));
	T_ASSERT_EQ(-1, t_pattern_check(9, 0, back, sizeof(back)));
	T_ASSERT_EQ(1, live_maps());
	/* A fake node has no amdgpu fdinfo: cannot tell, and says why. */
	T_ASSERT_OK(gpud_mem_placement_why(m, &where, why, sizeof(why)));
	T_ASSERT_EQ(GPUD_MEM_PLACE_UNKNOWN, where);
	T_ASSERT(strstr(why, "unreadable"));
	gpud_mem_free(m);
	assert_clean(fds);

	o.device = 2;
	T_ASSERT_EQ(-ENODEV, gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m));
	T_ASSERT_MSG("2 amdgpu render node(s)");
	assert_clean(fds);
	teardown();
}

static void amdgpu_gtt_and_unexported(void)
{
	char path[128];
	struct gpud_mem_opts o;
	enum gpud_mem_placement where;
	struct gpud_mem *m;
	char why[256];
	int fds;

	setup();
	snprintf(path, sizeof(path), "%s/renderD129", dir);
	o = opts(0, path, GPUD_MEM_F_GTT);
	fds = t_count_fds();
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m));
	T_ASSERT_EQ(2, last_heap());		/* AMDGPU_GEM_DOMAIN_GTT */
	T_ASSERT_OK(gpud_mem_placement_why(m, &where, why, sizeof(why)));
	T_ASSERT_EQ(GPUD_MEM_PLACE_HOST, where);
	T_ASSERT(strstr(why, "GTT"));
	gpud_mem_free(m);
	assert_clean(fds);

	o.flags = GPUD_MEM_F_NO_DMABUF;
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m));
	T_ASSERT_EQ(-ENOENT, gpud_mem_dmabuf_fd(m));
	T_ASSERT_OK(gpud_mem_placement(m, &where));
	T_ASSERT_EQ(GPUD_MEM_PLACE_DEVICE, where);
	gpud_mem_free(m);
	assert_clean(fds);
	teardown();
}

static void bad_nodes(void)
{
	struct gpud_mem_opts o;
	struct gpud_mem *m = NULL;
	char path[128];
	int fds;

	setup();
	fds = t_count_fds();
	snprintf(path, sizeof(path), "%s/card1", dir);
	o = opts(0, path, 0);
	T_ASSERT_EQ(-ENODEV, gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m));
	T_ASSERT_MSG("is not a DRM device");
	snprintf(path, sizeof(path), "%s/card9", dir);
	T_ASSERT_EQ(-ENODEV, gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m));
	T_ASSERT_MSG("no such node");
	/* vgem on a fake node: the dumb-buffer ioctl reaches a plain file. */
	snprintf(path, sizeof(path), "%s/card0", dir);
	T_ASSERT(gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m) < 0);
	T_ASSERT_MSG("DRM_IOCTL_MODE_CREATE_DUMB");
	/* over the dumb-buffer limit, refused before the driver is asked */
	T_ASSERT_EQ(-E2BIG, gpud_mem_create(GPUD_MEM_DRM, (size_t)5 << 30, &o, &m));
	T_ASSERT_MSG("32-bit");
	T_ASSERT(m == NULL);
	assert_clean(fds);
	teardown();
}

static void missing_library(void)
{
	struct gpud_mem_opts o = opts(0, NULL, 0);
	struct gpud_mem *m;
	int fds;

	setup();
	fds = t_count_fds();
	setenv("GPUD_LIBDRM_AMDGPU", "/nonexistent/libdrm_amdgpu.so.1", 1);
	T_ASSERT_EQ(-ENOENT, gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m));
	T_ASSERT_MSG("libdrm-amdgpu1");
	T_ASSERT_EQ(fds, t_count_fds());
	teardown();
}

static const char *const steps[] = {
	"amdgpu_device_initialize", "amdgpu_bo_alloc", "amdgpu_bo_export",
};

static void each_step_fails(void)
{
	struct gpud_mem_opts o = opts(0, NULL, 0);
	struct gpud_mem *m = NULL;
	char b[16] = { 0 };
	int fds;

	setup();
	fds = t_count_fds();
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		setenv("GPUD_FAKE_FAIL", steps[i], 1);
		T_ASSERT_EQ(-EIO, gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m));
		T_ASSERT_MSG(steps[i]);
		T_ASSERT(m == NULL);
		assert_clean(fds);
	}
	unsetenv("GPUD_FAKE_FAIL");
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m));
	setenv("GPUD_FAKE_FAIL", "amdgpu_bo_cpu_map", 1);
	T_ASSERT_EQ(-EIO, gpud_mem_read(m, 0, b, sizeof(b)));
	T_ASSERT_MSG("amdgpu_bo_cpu_map");
	unsetenv("GPUD_FAKE_FAIL");
	T_ASSERT_OK(gpud_mem_write(m, 0, b, sizeof(b)));
	gpud_mem_free(m);
	assert_clean(fds);
	teardown();
}

/* The decision itself, on counters a test can choose. */
static void placement_rule(void)
{
	struct gpud_amdgpu_counters then = { .valid = true, .vram = 10240, .gtt = 100 };
	struct gpud_amdgpu_counters now = then;
	char why[512];

	T_ASSERT_EQ(GPUD_MEM_PLACE_DEVICE, gpud_amdgpu_placement(&then, &now, 8 << 20, why, sizeof(why)));
	T_ASSERT(strstr(why, "in VRAM"));
	now.vram = 10240 - 8192;
	now.gtt = 100 + 8192;
	T_ASSERT_EQ(GPUD_MEM_PLACE_HOST, gpud_amdgpu_placement(&then, &now, 8 << 20, why, sizeof(why)));
	T_ASSERT(strstr(why, "GTT (system RAM)"));
	now.gtt = 100 + 4096;	/* something else moved too: no verdict */
	T_ASSERT_EQ(GPUD_MEM_PLACE_UNKNOWN, gpud_amdgpu_placement(&then, &now, 8 << 20, why, sizeof(why)));
	T_ASSERT(strstr(why, "cannot tell"));
	now.valid = false;
	T_ASSERT_EQ(GPUD_MEM_PLACE_UNKNOWN, gpud_amdgpu_placement(&then, &now, 8 << 20, why, sizeof(why)));
}

int main(void)
{
	t_scenario("spec amdgpu:N, placement names", spec);
	t_scenario("node listing and probe text", listing);
	t_scenario("amdgpu VRAM: export, CPU copies, placement unknown without fdinfo", amdgpu_vram);
	t_scenario("amdgpu GTT is system RAM; unexported VRAM stays", amdgpu_gtt_and_unexported);
	t_scenario("not a DRM device, missing node, dumb limit", bad_nodes);
	t_scenario("missing libdrm_amdgpu: -ENOENT", missing_library);
	t_scenario("every libdrm_amdgpu step failing, nothing leaked", each_step_fails);
	t_scenario("placement rule on counters", placement_rule);
	return T_EXIT_PASS;
}
