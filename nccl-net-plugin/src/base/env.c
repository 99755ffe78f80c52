// SPDX-License-Identifier: MIT
/*
 * NCCL_DEVMEM_* settings, read once at init. A malformed value is reported
 * (WARN) and replaced by the default rather than failing NCCL's init: a typo
 * in an environment variable should not take a training job down.
 */
#include "base/base.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct dm_config dm_cfg;

const char *dm_mode_name(enum dm_mode m)
{
	switch (m) {
	case DM_MODE_AUTO:
		return "auto";
	case DM_MODE_DEVMEM:
		return "devmem";
	case DM_MODE_COPY:
		return "copy";
	}
	return "?";
}

const char *dm_unpack_name(enum dm_unpack u)
{
	return u == DM_UNPACK_NCCL ? "nccl" : "plugin";
}

/* "123", "64K", "512MiB", "4G" → bytes: the library's parser, so the
 * plugin reads sizes exactly as gpudctl and the benchmarks do. */
int dm_parse_size(const char *s, uint64_t *out)
{
	return gpud_parse_size(s, out);
}

static int env_int(const char *name, int def, int lo, int hi)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	v = strtol(s, &end, 10);
	if (*end || v < lo || v > hi) {
		DM_WARN("%s=%s is not an integer in [%d, %d]; using %d", name, s, lo, hi, def);
		return def;
	}
	DM_INFO("%s set by environment to %ld", name, v);
	return (int)v;
}

static uint64_t env_size(const char *name, uint64_t def, uint64_t lo, uint64_t hi)
{
	const char *s = getenv(name);
	uint64_t v;

	if (!s || !*s)
		return def;
	if (dm_parse_size(s, &v) || v < lo || v > hi) {
		DM_WARN("%s=%s is not a size in [%llu, %llu] bytes (suffixes K, M, G); using %llu",
			name, s, (unsigned long long)lo, (unsigned long long)hi,
			(unsigned long long)def);
		return def;
	}
	DM_INFO("%s set by environment to %llu", name, (unsigned long long)v);
	return v;
}

static void env_str(const char *name, char *dst, size_t len)
{
	const char *s = getenv(name);

	dst[0] = '\0';
	if (!s)
		return;
	if (strlen(s) >= len) {
		DM_WARN("%s is longer than %zu characters; ignored", name, len - 1);
		return;
	}
	strcpy(dst, s);
	DM_INFO("%s set by environment to %s", name, s);
}

/*
 * NCCL's kernel unpacks SIMPLE-protocol receives only. NCCL marks the others
 * (LL, LL128) by presetting *request to NCCL_NET_OPTIONAL_RECV_COMPLETION,
 * unless NCCL_NET_OPTIONAL_RECV_COMPLETION=0; then we could not tell them
 * apart, and a slot given to a receive the kernel skips would shift every
 * later one. Only NCCL_PROTO=Simple makes that safe again.
 */
static bool receives_distinguishable(void)
{
	const char *opt = getenv("NCCL_NET_OPTIONAL_RECV_COMPLETION");
	const char *proto = getenv("NCCL_PROTO");

	if (!opt || atoi(opt) != 0)
		return true;
	return proto && !strcasecmp(proto, "simple");
}

static void env_unpack(struct dm_config *cfg)
{
	char v[16];

	env_str("NCCL_DEVMEM_UNPACK", v, sizeof(v));
	if (!v[0] || !strcmp(v, "plugin")) {
		cfg->unpack = DM_UNPACK_PLUGIN;
	} else if (!strcmp(v, "nccl")) {
		cfg->unpack = DM_UNPACK_NCCL;
	} else {
		DM_WARN("NCCL_DEVMEM_UNPACK=%s: expected plugin or nccl; using plugin", v);
		cfg->unpack = DM_UNPACK_PLUGIN;
	}
	if (cfg->unpack == DM_UNPACK_NCCL && !receives_distinguishable()) {
		DM_WARN("NCCL_DEVMEM_UNPACK=nccl with NCCL_NET_OPTIONAL_RECV_COMPLETION=0: the plugin cannot tell which receives NCCL's kernel unpacks; using NCCL_DEVMEM_UNPACK=plugin (unset that variable, or set NCCL_PROTO=Simple)");
		cfg->unpack = DM_UNPACK_PLUGIN;
	}
}

static void env_pool_mem(struct dm_config *cfg)
{
	struct dm_pool_facts none = { .cuda_why = "", .probe_why = "", .cur_device = -1 };
	struct dm_pool_choice c;

	env_str("NCCL_DEVMEM_POOL_MEM", cfg->pool_mem, sizeof(cfg->pool_mem));
	if (dm_pool_choose(cfg->pool_mem, &none, &c) == -EINVAL) {
		DM_WARN("%s; using auto", c.why);
		snprintf(cfg->pool_mem, sizeof(cfg->pool_mem), "auto");
	}
	if (!cfg->pool_mem[0])
		snprintf(cfg->pool_mem, sizeof(cfg->pool_mem), "auto");
}

/*
 * NCCL_DEVMEM_FAMILY, else NCCL_SOCKET_FAMILY (NCCL's own, same values):
 * AF_INET or AF_INET6 makes every device use that family; unset, each
 * interface uses its IPv4 address, or IPv6 where it has no IPv4 one.
 */
static int env_family(void)
{
	const char *name = "NCCL_DEVMEM_FAMILY", *s = getenv(name);

	if (!s || !*s) {
		name = "NCCL_SOCKET_FAMILY";
		s = getenv(name);
	}
	if (!s || !*s)
		return AF_UNSPEC;
	if (!strcmp(s, "AF_INET") || !strcmp(s, "4"))
		return AF_INET;
	if (!strcmp(s, "AF_INET6") || !strcmp(s, "6"))
		return AF_INET6;
	DM_WARN("%s=%s: expected AF_INET or AF_INET6; using each interface's IPv4 address, else IPv6",
		name, s);
	return AF_UNSPEC;
}

void dm_config_load(struct dm_config *cfg)
{
	char mode[16];

	memset(cfg, 0, sizeof(*cfg));
	env_str("NCCL_DEVMEM_IFNAME", cfg->ifname, sizeof(cfg->ifname));
	cfg->family = env_family();
	env_str("NCCL_DEVMEM_QUEUES", cfg->queues, sizeof(cfg->queues));
	cfg->nsocks = env_int("NCCL_DEVMEM_NSOCKS", 4, 1, DM_MAX_SOCKS);
	cfg->nthreads = env_int("NCCL_DEVMEM_NTHREADS", 2, 1, 16);
	cfg->timeout_ms = env_int("NCCL_DEVMEM_TIMEOUT_MS", 60000, 100, 3600 * 1000);
	cfg->pool_size = env_size("NCCL_DEVMEM_POOL_SIZE", 256ull << 20, 1ull << 20,
				  (4ull << 30) - 4096);
	cfg->chunk = (uint32_t)env_size("NCCL_DEVMEM_CHUNK_SIZE", 512u << 10, DM_MIN_CHUNK,
					64u << 20);
	env_str("NCCL_DEVMEM_MODE", mode, sizeof(mode));
	if (!mode[0] || !strcmp(mode, "auto")) {
		cfg->mode = DM_MODE_AUTO;
	} else if (!strcmp(mode, "devmem")) {
		cfg->mode = DM_MODE_DEVMEM;
	} else if (!strcmp(mode, "copy")) {
		cfg->mode = DM_MODE_COPY;
	} else {
		DM_WARN("NCCL_DEVMEM_MODE=%s: expected auto, devmem or copy; using auto", mode);
		cfg->mode = DM_MODE_AUTO;
	}
	env_unpack(cfg);
	cfg->unpack_hold = env_int("NCCL_DEVMEM_UNPACK_HOLD", 50, 1, 100);
	/* tests only (emu.c): never documented as a user setting */
	cfg->test_emulate = env_int("NCCL_DEVMEM_TEST_EMULATE", 0, 0, 1);
	env_pool_mem(cfg);
}
