// SPDX-License-Identifier: MIT
/*
 * `gpud-rxbench --demo --compare -j`: both modes run on the same path with
 * the same flow count, each moves data, and the ratio is their quotient.
 *
 * usage: bench_compare_test PATH-TO-gpud-rxbench
 */
#define _GNU_SOURCE
#include "gpud_test.h"
#include "json_get.h"
#include "tool_run.h"

#include <math.h>

int main(int argc, char **argv)
{
	char *args[] = { argc > 1 ? argv[1] : NULL, "--demo", "--compare", "-j", "--flows", "2",
			 "--duration", "1.5", NULL };
	struct tool_run r;
	const char *doc;
	double g, p, ratio;

	if (argc < 2)
		T_FAIL("usage: %s PATH-TO-gpud-rxbench", argv[0]);
	t_require_root();
	tool_run(&r, args, 0, 0, false);
	doc = r.out;
	t_log("compare output: %s", doc);
	T_ASSERT_EQ(0, tool_exit_code(&r));
	T_ASSERT(jg_valid(doc));
	T_ASSERT(jg_bool(doc, "ok"));
	T_ASSERT(jg_bool(doc, "config.compare"));
	T_ASSERT_STREQ("gpud", jg_str(doc, "runs.0.name"));
	T_ASSERT_STREQ("plain", jg_str(doc, "runs.1.name"));
	T_ASSERT_EQ(2, jg_num(doc, "runs.0.flows"));
	T_ASSERT_EQ(2, jg_num(doc, "runs.1.flows"));
	/* Host memory: no host->device run. */
	T_ASSERT(!jg_get(doc, "runs.2", (char[8]){ 0 }, 8));
	g = jg_num(doc, "runs.0.gbps");
	p = jg_num(doc, "runs.1.gbps");
	T_ASSERT(g > 0 && p > 0);
	T_ASSERT(jg_bool(doc, "runs.0.validated"));
	T_ASSERT(jg_bool(doc, "runs.1.validated"));
	ratio = jg_num(doc, "ratio.gbps_gpud_over_plain");
	T_ASSERT(fabs(ratio - g / p) < 0.01 * ratio);
	T_ASSERT(jg_num(doc, "ratio.rx_cpu_per_gb_gpud_over_plain") > 0);
	T_ASSERT(jg_is_null(doc, "ratio.gbps_gpud_over_plain_h2d"));
	T_ASSERT(tool_netns_gone(r.pid, 0));
	tool_run_free(&r);
	t_log("gpud %.2f Gbit/s, plain %.2f Gbit/s, ratio %.2f", g, p, ratio);
	t_log("PASS");
	return T_EXIT_PASS;
}
