// SPDX-License-Identifier: MIT
/* Memory specs ("host", "cuda:N", ...), kind names, and a missing drm node. */
#include "mem_util.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>

static void parse_ok(const char *spec, enum gpud_mem_kind want_kind, int want_dev,
		     const char *want_path)
{
	struct gpud_mem_opts o = { .sz = sizeof(o), .flags = GPUD_MEM_F_NO_DMABUF };
	enum gpud_mem_kind k = GPUD_MEM_KIND_MAX;

	T_ASSERT_OK(gpud_mem_parse_spec(spec, &k, &o));
	T_ASSERT_EQ(want_kind, k);
	T_ASSERT_EQ(want_dev, o.device);
	T_ASSERT_EQ(GPUD_MEM_F_NO_DMABUF, o.flags);	/* left alone */
	if (want_path)
		T_ASSERT_STREQ(want_path, o.path);
	else
		T_ASSERT(o.path == NULL);
}

static void parse_bad(const char *spec)
{
	struct gpud_mem_opts o = { .sz = sizeof(o), .device = 42 };
	enum gpud_mem_kind k = GPUD_MEM_KIND_MAX;

	T_ASSERT_EQ(-EINVAL, gpud_mem_parse_spec(spec, &k, &o));
	T_ASSERT_MSG("host, cuda[:N], hip[:N], drm:");
	T_ASSERT_EQ(GPUD_MEM_KIND_MAX, k);	/* outputs untouched */
	T_ASSERT_EQ(42, o.device);
}

int main(void)
{
	struct gpud_mem_opts o = { .sz = sizeof(o), .path = "/dev/dri/card0" };
	enum gpud_mem_kind k;
	struct gpud_mem *m;
	char why[256];

	parse_ok("host", GPUD_MEM_HOST, 0, NULL);
	parse_ok("cuda", GPUD_MEM_CUDA, 0, NULL);
	parse_ok("cuda:3", GPUD_MEM_CUDA, 3, NULL);
	parse_ok("hip:12", GPUD_MEM_HIP, 12, NULL);
	parse_ok("drm:/dev/dri/card1", GPUD_MEM_DRM, 0, "/dev/dri/card1");
	parse_bad("");
	parse_bad("gpu");
	parse_bad("hostx");
	parse_bad("host:1");
	parse_bad("cuda:");
	parse_bad("cuda:-1");
	parse_bad("cuda:1x");
	parse_bad("cuda:99999999999");
	parse_bad("drm");
	parse_bad("drm:");
	T_ASSERT_EQ(-EINVAL, gpud_mem_parse_spec(NULL, &k, &o));
	o.sz = 1;
	T_ASSERT_EQ(-EINVAL, gpud_mem_parse_spec("host", &k, &o));
	o.sz = sizeof(o);

	T_ASSERT_STREQ("host", gpud_mem_kind_name(GPUD_MEM_HOST));
	T_ASSERT_STREQ("cuda", gpud_mem_kind_name(GPUD_MEM_CUDA));
	T_ASSERT_STREQ("hip", gpud_mem_kind_name(GPUD_MEM_HIP));
	T_ASSERT_STREQ("drm", gpud_mem_kind_name(GPUD_MEM_DRM));
	T_ASSERT_STREQ("?", gpud_mem_kind_name(GPUD_MEM_KIND_MAX));

	/* drm is implemented (drm_*_test); a node that is not there says so. */
	o.path = "/nonexistent/dri/card0";
	T_ASSERT_EQ(-ENODEV, gpud_mem_create(GPUD_MEM_DRM, 4096, &o, &m));
	T_ASSERT_MSG("/nonexistent/dri/card0");
	T_ASSERT_EQ(-EINVAL, gpud_mem_probe(GPUD_MEM_KIND_MAX, 0, why, sizeof(why)));
	T_ASSERT_EQ(-ENODEV, gpud_mem_probe(GPUD_MEM_CUDA, -1, NULL, 0));
	t_log("ok");
	return T_EXIT_PASS;
}
