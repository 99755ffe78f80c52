// SPDX-License-Identifier: MIT
/*
 * `gpud-rxbench --demo -j` end to end: the JSON is well-formed and says what
 * happened (bytes > 0, every byte validated, copy mode on the host with its
 * reason, devmem inside the patched-kernel VM), the namespaces are gone
 * afterwards — also after SIGINT and SIGKILL — a corrupted byte fails the run
 * loudly with its offset, and without root it explains how to run it (that
 * last check needs uid nobody to reach the binary; where it cannot, e.g. a
 * build under /root, everything else runs and the test then skips, saying so).
 *
 * usage: bench_demo_test PATH-TO-gpud-rxbench [--expect-mode copy|devmem]
 */
#define _GNU_SOURCE
#include "gpud_test.h"
#include "json_get.h"
#include "tool_run.h"

#include <signal.h>

static const char *tool;

static void check_demo(const char *expect_mode)
{
	/* The VM runs TCG at ~0.4 Gbit/s: a byte count keeps it short there. */
	char *argv_host[] = { (char *)tool, "--demo", "-j", "--duration", "2", NULL };
	char *argv_vm[] = { (char *)tool, "--demo", "-j", "--bytes", "48M", NULL };
	struct tool_run r;
	const char *doc;

	tool_run(&r, t_in_vm() ? argv_vm : argv_host, 0, 0, false);
	doc = r.out;
	t_log("demo output: %s", doc);
	if (!strcmp(expect_mode, "devmem") && tool_exit_code(&r) && strstr(r.err, "header split")) {
		/*
		 * A VM kernel without kernel-patches/ applied: its netdevsim
		 * cannot carry devmem. Skip saying so, unless told to insist
		 * (the same rule as the library's devmem e2e test).
		 */
		const char *req = getenv("GPUD_REQUIRE_DEVMEM");

		if (!(req && !strcmp(req, "1")))
			t_skip("this kernel's netdevsim has no header split: boot a kernel built with kernel-patches/patches applied; GPUD_REQUIRE_DEVMEM=1 makes this a failure");
	}
	T_ASSERT_EQ(0, tool_exit_code(&r));
	T_ASSERT(jg_valid(doc));
	T_ASSERT_STREQ("gpud-rxbench/1", jg_str(doc, "schema"));
	T_ASSERT(jg_bool(doc, "ok"));
	T_ASSERT(jg_num(doc, "bytes") > 0);
	T_ASSERT(jg_num(doc, "gbps") > 0);
	T_ASSERT(jg_bool(doc, "validated"));
	T_ASSERT(jg_bool(doc, "config.validate"));
	T_ASSERT_STREQ(expect_mode, jg_str(doc, "mode"));
	T_ASSERT_STREQ("gpud", jg_str(doc, "runs.0.name"));
	T_ASSERT_EQ(jg_num(doc, "bytes"), jg_num(doc, "runs.0.bytes_checked"));
	T_ASSERT(jg_is_null(doc, "runs.0.mismatch"));
	T_ASSERT(jg_num(doc, "runs.0.frags") > 0);
	T_ASSERT(jg_num(doc, "runs.0.cpu.cores.0.idle_pct") >= 0);
	if (!strcmp(expect_mode, "copy")) {
		/* The reason names what stopped devmem, not just "copy". */
		T_ASSERT(!strncmp(jg_str(doc, "mode_reason"), "copy: ", 6));
		T_ASSERT(strlen(jg_str(doc, "mode_reason")) > 20);
		T_ASSERT(jg_num(doc, "runs.0.cpu_copies_per_byte") > 0.99);
	} else {
		T_ASSERT(!strncmp(jg_str(doc, "mode_reason"), "devmem", 6));
		T_ASSERT(jg_num(doc, "runs.0.bytes_devmem") > 0);
		T_ASSERT(jg_num(doc, "runs.0.tokens_released") > 0);
	}
	T_ASSERT(tool_netns_gone(r.pid, 0));
	tool_run_free(&r);
}

static void check_sigint(void)
{
	char *argv[] = { (char *)tool, "--demo", "-j", "--duration", "30", NULL };
	struct tool_run r;

	tool_run(&r, argv, 2.5, SIGINT, false);
	t_log("after SIGINT: exit %d, %s", tool_exit_code(&r), r.out);
	T_ASSERT_EQ(128 + SIGINT, tool_exit_code(&r));
	T_ASSERT(jg_valid(r.out));
	T_ASSERT(jg_bool(r.out, "runs.0.interrupted"));
	T_ASSERT(!jg_bool(r.out, "ok"));
	T_ASSERT(tool_netns_gone(r.pid, 0));
	tool_run_free(&r);
}

static void check_sigkill(void)
{
	char *argv[] = { (char *)tool, "--demo", "-j", "--duration", "30", NULL };
	struct tool_run r;

	tool_run(&r, argv, 2.0, SIGKILL, false);
	T_ASSERT_EQ(128 + SIGKILL, tool_exit_code(&r));
	/* Nothing ran in the tool: its guardian child cleans up. */
	T_ASSERT(tool_netns_gone(r.pid, 10));
	tool_run_free(&r);
}

static void check_corruption(void)
{
	char *argv[] = { (char *)tool, "--demo", "-j", "--bytes", "64M", "--inject-error",
			 "12345677", NULL };
	struct tool_run r;

	tool_run(&r, argv, 0, 0, false);
	t_log("corrupted run: exit %d", tool_exit_code(&r));
	T_ASSERT_EQ(1, tool_exit_code(&r));
	T_ASSERT(jg_valid(r.out));
	T_ASSERT(!jg_bool(r.out, "ok"));
	T_ASSERT(!jg_bool(r.out, "validated"));
	T_ASSERT_EQ(0, jg_num(r.out, "runs.0.mismatch.flow"));
	T_ASSERT_EQ(12345677, jg_num(r.out, "runs.0.mismatch.offset"));
	T_ASSERT(tool_netns_gone(r.pid, 0));
	tool_run_free(&r);
}

static void check_needs_root(void)
{
	char *argv[] = { (char *)tool, "--demo", NULL };
	struct tool_run r;
	char why[512];

	/* else exec fails (127) before the tool can say it needs root (2) */
	if (!tool_reachable_as_nobody(tool, why, sizeof(why)))
		t_skip("the other checks passed; the no-root check needs uid 65534 to execute %s, and it cannot (%s): build in a tree every user can read (not under /root)",
		       tool, why);
	tool_run(&r, argv, 0, 0, true);
	T_ASSERT_EQ(2, tool_exit_code(&r));
	tool_run_free(&r);
}

int main(int argc, char **argv)
{
	const char *expect = "copy";

	if (argc < 2)
		T_FAIL("usage: %s PATH-TO-gpud-rxbench [--expect-mode MODE]", argv[0]);
	tool = argv[1];
	if (argc >= 4 && !strcmp(argv[2], "--expect-mode"))
		expect = argv[3];
	t_require_root();
	if (!strcmp(expect, "devmem"))
		t_require_vm();
	check_demo(expect);
	if (t_in_vm())
		return T_EXIT_PASS;	/* the rest is host-side plumbing, tested there */
	check_corruption();
	check_sigint();
	check_sigkill();
	check_needs_root();	/* last: it may skip */
	t_log("PASS");
	return T_EXIT_PASS;
}
