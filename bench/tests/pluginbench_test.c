// SPDX-License-Identifier: MIT
/*
 * `gpud-pluginbench -j` end to end, a short sweep: the JSON is well-formed,
 * every size from -b to -e is there with the right byte and element counts,
 * each transport moved checked bytes at algbw > 0, the ratios are
 * plugin/raw, each mean lies within its iterations' min and max, and the
 * namespaces are gone afterwards. Then one way with a plugin that cannot be
 * loaded: that transport fails with the reason, raw TCP still runs (at least
 * --min-iters iterations although the time budget is far too short for
 * them), the exit code says failure.
 *
 * usage: pluginbench_test PATH-TO-gpud-pluginbench
 */
#define _GNU_SOURCE
#include "gpud_test.h"
#include "json_get.h"
#include "tool_run.h"

#include <math.h>
#include <unistd.h>

static const char *tool;

static bool netns_gone(pid_t pid)
{
	char a[96], b[96];

	snprintf(a, sizeof(a), "/var/run/netns/gpud-pluginbench-%d-tx", (int)pid);
	snprintf(b, sizeof(b), "/var/run/netns/gpud-pluginbench-%d-rx", (int)pid);
	return access(a, F_OK) && access(b, F_OK);
}

static double num(const char *doc, int i, const char *key)
{
	char path[96];

	snprintf(path, sizeof(path), "sizes.%d.%s", i, key);
	return jg_num(doc, path);
}

static double pnum(const char *doc, int i, const char *xp, const char *key)
{
	char path[96];

	snprintf(path, sizeof(path), "sizes.%d.%s.%s", i, xp, key);
	return jg_num(doc, path);
}

/* The spread of single iterations brackets their mean. */
static void check_spread(const char *doc, int i, const char *xp)
{
	double mean = pnum(doc, i, xp, "time_us"), lo = pnum(doc, i, xp, "min_us"),
	       hi = pnum(doc, i, xp, "max_us"), sd = pnum(doc, i, xp, "stddev_us");

	/* the mean is the loop's clock, min and max each iteration's: allow 1% */
	if (!(lo > 0 && lo <= mean * 1.01 && hi >= mean * 0.99 && sd >= 0 && sd <= hi - lo + 1))
		T_FAIL("sizes.%d.%s: min %g, mean %g, max %g, stddev %g: expected 0 < min <= mean <= max, 0 <= stddev <= max - min",
		       i, xp, lo, mean, hi, sd);
}

static void check_point(const char *doc, int i, const char *xp)
{
	char path[96];

	snprintf(path, sizeof(path), "sizes.%d.%s.algbw_gbs", i, xp);
	T_ASSERT(jg_num(doc, path) > 0);
	snprintf(path, sizeof(path), "sizes.%d.%s.time_us", i, xp);
	T_ASSERT(jg_num(doc, path) > 0);
	snprintf(path, sizeof(path), "sizes.%d.%s.iters", i, xp);
	T_ASSERT(jg_num(doc, path) >= 1);
	snprintf(path, sizeof(path), "sizes.%d.%s.checked", i, xp);
	T_ASSERT(jg_bool(doc, path));
	snprintf(path, sizeof(path), "sizes.%d.%s.ok", i, xp);
	T_ASSERT(jg_bool(doc, path));
	check_spread(doc, i, xp);
}

static void check_ratio(const char *doc, int i, const char *raw)
{
	char p[96], q[96], r[96];
	double want, got;

	snprintf(p, sizeof(p), "sizes.%d.plugin.algbw_gbs", i);
	snprintf(q, sizeof(q), "sizes.%d.%s.algbw_gbs", i, raw);
	snprintf(r, sizeof(r), "sizes.%d.ratio_%s", i, raw);
	want = jg_num(doc, p) / jg_num(doc, q);
	got = jg_num(doc, r);
	/* the writer prints 6 significant digits, each operand too */
	if (fabs(got - want) > 1e-4 * want)
		T_FAIL("%s = %g, expected plugin/%s = %g", r, got, raw, want);
}

static void check_sweep(void)
{
	char *argv[] = { (char *)tool, "-j", "-b", "8", "-e", "1M", "-f", "4", "-t", "3",
			 "-n", "2", NULL };
	struct tool_run r;
	const char *doc;
	int n = 0;

	tool_run(&r, argv, 0, 0, false);
	doc = r.out;
	t_log("sweep output: %s", doc);
	T_ASSERT_EQ(0, tool_exit_code(&r));
	T_ASSERT(jg_valid(doc));
	T_ASSERT_STREQ("gpud-pluginbench/1", jg_str(doc, "schema"));
	T_ASSERT(jg_bool(doc, "ok"));
	T_ASSERT_STREQ("sendrecv", jg_str(doc, "op"));
	/* veth on the host: the plugin falls back to copy and says why */
	T_ASSERT(!strncmp(jg_str(doc, "plugin_mode"), "copy mode (", 11));
	T_ASSERT_STREQ("plugin", jg_str(doc, "transports.0.name"));
	T_ASSERT_STREQ("raw_1", jg_str(doc, "transports.1.name"));
	T_ASSERT_STREQ("raw_n", jg_str(doc, "transports.2.name"));
	T_ASSERT_EQ(2, jg_num(doc, "transports.2.conns"));
	/* 8, 32, ... 512 KiB (the last x4 step under 1 MiB): all nine, in order */
	for (uint64_t s = 8; s <= (1u << 20); s *= 4, n++) {
		T_ASSERT_EQ(s, num(doc, n, "bytes"));
		T_ASSERT_EQ(s / 4, num(doc, n, "count"));
		check_point(doc, n, "plugin");
		check_point(doc, n, "raw_1");
		check_point(doc, n, "raw_n");
		check_ratio(doc, n, "raw_1");
		check_ratio(doc, n, "raw_n");
	}
	T_ASSERT_EQ(9, n);
	T_ASSERT(!jg_get(doc, "sizes.9", (char[8]){ 0 }, 8));
	T_ASSERT(netns_gone(r.pid));
	tool_run_free(&r);
}

static void check_bad_plugin(void)
{
	char *argv[] = { (char *)tool, "-j", "--oneway", "-b", "4096", "-e", "64K", "-f", "4",
			 "-t", "0.001", "--min-iters", "50", "--plugin",
			 "/nonexistent/libnccl-net-devmem.so", NULL };
	struct tool_run r;
	const char *doc;

	tool_run(&r, argv, 0, 0, false);
	doc = r.out;
	t_log("bad plugin output: %s", doc);
	T_ASSERT_EQ(1, tool_exit_code(&r));
	T_ASSERT(jg_valid(doc));
	T_ASSERT(!jg_bool(doc, "ok"));
	T_ASSERT_STREQ("oneway", jg_str(doc, "op"));
	T_ASSERT(!jg_bool(doc, "transports.0.ok"));
	T_ASSERT(strstr(jg_str(doc, "transports.0.error"), "/nonexistent/"));
	T_ASSERT(jg_is_null(doc, "sizes.0.plugin"));
	T_ASSERT(jg_is_null(doc, "sizes.0.ratio_raw_1"));
	T_ASSERT(jg_bool(doc, "transports.1.ok"));
	T_ASSERT(jg_num(doc, "sizes.2.raw_1.algbw_gbs") > 0);
	/* ~0.2 ms per size buys a handful of iterations: the floor wins */
	T_ASSERT_EQ(50, jg_num(doc, "config.min_iters"));
	for (int i = 0; i < 3; i++) {
		T_ASSERT(pnum(doc, i, "raw_1", "iters") >= 50);
		check_spread(doc, i, "raw_1");
	}
	T_ASSERT(netns_gone(r.pid));
	tool_run_free(&r);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		T_FAIL("usage: %s PATH-TO-gpud-pluginbench", argv[0]);
	tool = argv[1];
	t_require_root();
	check_sweep();
	check_bad_plugin();
	t_log("PASS");
	return T_EXIT_PASS;
}
