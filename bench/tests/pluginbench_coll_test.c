// SPDX-License-Identifier: MIT
/*
 * `gpud-pluginbench --op ... -j` end to end.
 *
 *   pluginbench_coll_test TOOL netns   3 ranks in a ring of veth pairs, each
 *       op, sizes from 16 B to 4 MiB (odd splits over ranks and channels
 *       included): the tool checked every output element on every rank (it
 *       fails the run on one wrong float), both transports ran every size,
 *       busbw is algbw times nccl-tests' factor, the ratio is plugin/raw,
 *       the namespaces are gone afterwards; --ranks without --op is a usage
 *       error naming --op; a plugin that cannot load fails the run with its
 *       path while the raw TCP ring still runs every size.
 *   pluginbench_coll_test TOOL vm      inside the patched-kernel VM: 2 ranks
 *       over the netdevsim pair, allreduce 16 B .. 1 MiB with
 *       NCCL_DEVMEM_MODE=devmem, so
 *       each rank receives into its own bound queue; the plugin must say
 *       devmem mode and every element must be right.
 */
#define _GNU_SOURCE
#include "gpud_test.h"
#include "json_get.h"
#include "tool_run.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static const char *tool;

/* sizes.I.KEY, KEY itself a path ("plugin.busbw_gbs") */
static double num(const char *doc, int i, const char *key)
{
	char path[128];

	snprintf(path, sizeof(path), "sizes.%d.%s", i, key);
	return jg_num(doc, path);
}

static bool ring_gone(pid_t pid, int n)
{
	char p[96];

	for (int k = 0; k < n; k++) {
		snprintf(p, sizeof(p), "/var/run/netns/gpud-pluginbench-%d-r%d", (int)pid, k);
		if (!access(p, F_OK))
			return false;
	}
	return true;
}

static void check_series(const char *doc, int i, const char *x, double factor)
{
	char fmt[64], key[64];
	double alg, bus;

	snprintf(key, sizeof(key), "%s.time_us", x);
	T_ASSERT(num(doc, i, key) > 0);
	snprintf(key, sizeof(key), "%s.algbw_gbs", x);
	alg = num(doc, i, key);
	snprintf(key, sizeof(key), "%s.busbw_gbs", x);
	bus = num(doc, i, key);
	T_ASSERT(alg > 0);
	if (fabs(bus - alg * factor) > 1e-4 * bus + 1e-9)
		T_FAIL("sizes.%d.%s: busbw %g, expected algbw %g x %g", i, x, bus, alg, factor);
	snprintf(key, sizeof(key), "%s.iters", x);
	T_ASSERT(num(doc, i, key) >= 1);
	snprintf(fmt, sizeof(fmt), "sizes.%d.%s.checked", i, x);
	T_ASSERT(jg_bool(doc, fmt));
	snprintf(fmt, sizeof(fmt), "sizes.%d.%s.ok", i, x);
	T_ASSERT(jg_bool(doc, fmt));
}

/* Runs one op; returns its output (caller frees with tool_run_free). */
static void run_op(struct tool_run *r, const char *op, const char *ranks, const char *max)
{
	char *argv[] = { (char *)tool, "-j", "--op", (char *)op, "--ranks", (char *)ranks,
			 "--channels", "2", "-b", "16", "-e", (char *)max, "-f", "4", "-t", "2",
			 "--rounds", "1", "-w", "2", "--min-iters", "2", NULL };

	tool_run(r, argv, 0, 0, false);
	t_log("%s output: %s", op, r->out);
}

/* nccl-tests' busbw factors, written out here so a wrong one in the tool shows */
static double factor(const char *op, int n)
{
	if (!strcmp(op, "allreduce"))
		return 2.0 * (n - 1) / n;
	if (!strcmp(op, "sendrecv"))
		return 1;
	return (double)(n - 1) / n;
}

/* @max: -e; @nsizes: how many sizes 16 B .. @max in x4 steps makes */
static void check_op(const char *op, int nranks, const char *max, int nsizes, uint64_t min_top,
		     const char *want_mode)
{
	char ranks[8];
	struct tool_run r;
	const char *doc;
	double f = factor(op, nranks);
	int i;

	snprintf(ranks, sizeof(ranks), "%d", nranks);
	run_op(&r, op, ranks, max);
	doc = r.out;
	T_ASSERT_EQ(0, tool_exit_code(&r));
	T_ASSERT(jg_valid(doc));
	T_ASSERT_STREQ("gpud-pluginbench-coll/1", jg_str(doc, "schema"));
	T_ASSERT(jg_bool(doc, "ok"));
	T_ASSERT_STREQ(op, jg_str(doc, "op"));
	T_ASSERT_EQ(nranks, jg_num(doc, "ranks"));
	T_ASSERT(jg_bool(doc, "config.check"));
	T_ASSERT_STREQ("plugin", jg_str(doc, "transports.0.name"));
	T_ASSERT_STREQ("raw", jg_str(doc, "transports.1.name"));
	/* 2 channels x 4 data sockets (the default --nsocks), raw TCP the same */
	T_ASSERT_EQ(8, jg_num(doc, "transports.1.conns"));
	if (want_mode && strncmp(jg_str(doc, "plugin_mode"), want_mode, strlen(want_mode)))
		T_FAIL("plugin receive mode '%s', expected '%s...'", jg_str(doc, "plugin_mode"),
		       want_mode);
	for (i = 0; i < 64; i++) {
		char path[32];

		snprintf(path, sizeof(path), "sizes.%d", i);
		if (!jg_get(doc, path, (char[8]){ 0 }, 8))
			break;
		check_series(doc, i, "plugin", f);
		check_series(doc, i, "raw", f);
		snprintf(path, sizeof(path), "sizes.%d.ratio_busbw", i);
		if (fabs(jg_num(doc, path) - num(doc, i, "plugin.busbw_gbs") /
					     num(doc, i, "raw.busbw_gbs")) >
		    1e-4 * jg_num(doc, path))
			T_FAIL("%s is not plugin busbw / raw busbw", path);
	}
	/* all-gather and reduce-scatter round each size down to whole floats per rank */
	T_ASSERT_EQ(nsizes, i);
	if (num(doc, i - 1, "bytes") < (double)min_top)
		T_FAIL("%s: largest size %g, expected >= %llu", op, num(doc, i - 1, "bytes"),
		       (unsigned long long)min_top);
	if (nranks > 2)
		T_ASSERT(ring_gone(r.pid, nranks));
	tool_run_free(&r);
}

static void check_usage(void)
{
	char *argv[] = { (char *)tool, "--ranks", "3", NULL };
	struct tool_run r;

	tool_run(&r, argv, 0, 0, false);
	T_ASSERT_EQ(2, tool_exit_code(&r));
	T_ASSERT(strstr(r.err, "--op"));
	tool_run_free(&r);
}

/* A plugin that cannot load: reported with its path, raw TCP still runs, exit 1. */
static void check_bad_plugin(void)
{
	char *argv[] = { (char *)tool, "-j", "--op", "allreduce", "--ranks", "3", "-b", "16",
			 "-e", "4K", "-f", "4", "-t", "0.2", "--rounds", "1", "--plugin",
			 "/nonexistent/libnccl-net-devmem.so", NULL };
	struct tool_run r;
	const char *doc;

	tool_run(&r, argv, 0, 0, false);
	doc = r.out;
	t_log("bad plugin output: %s", doc);
	T_ASSERT_EQ(1, tool_exit_code(&r));
	T_ASSERT(jg_valid(doc));
	T_ASSERT(!jg_bool(doc, "ok"));
	T_ASSERT(!jg_bool(doc, "transports.0.ok"));
	T_ASSERT(jg_bool(doc, "transports.1.ok"));
	T_ASSERT(strstr(jg_str(doc, "error"), "/nonexistent/"));
	T_ASSERT(jg_is_null(doc, "sizes.0.plugin"));
	T_ASSERT(jg_is_null(doc, "sizes.0.ratio_busbw"));
	T_ASSERT(jg_bool(doc, "sizes.4.raw.ok"));
	T_ASSERT(ring_gone(r.pid, 3));
	tool_run_free(&r);
}

int main(int argc, char **argv)
{
	static const char *const ops[] = { "allreduce", "allgather", "reducescatter", "sendrecv" };

	if (argc < 3)
		T_FAIL("usage: %s PATH-TO-gpud-pluginbench netns|vm", argv[0]);
	tool = argv[1];
	t_require_root();
	if (!strcmp(argv[2], "vm")) {
		const char *v = getenv("GPUD_IN_VM");

		if (!v || strcmp(v, "1") || access("/sys/bus/netdevsim", F_OK))
			t_skip("devmem collectives need the patched-kernel VM (netdevsim)");
		setenv("NCCL_DEVMEM_MODE", "devmem", 1);
		setenv("NCCL_DEVMEM_POOL_SIZE", "32M", 0);
		check_op("allreduce", 2, "1M", 9, 1u << 20, "devmem mode");
		t_log("PASS");
		return T_EXIT_PASS;
	}
	check_usage();
	check_bad_plugin();
	for (int i = 0; i < 4; i++)
		check_op(ops[i], 3, "4M", 10, 1u << 20, NULL);
	t_log("PASS");
	return T_EXIT_PASS;
}
