// SPDX-License-Identifier: MIT
/*
 * gpud-rxbench's RDMA WRITE baseline (--compare rdma, --only rdma).
 *
 * On the host (no RDMA here, or rdma-core swapped for a fake or nothing):
 * the rdma run is reported skipped with its reason in the text and the
 * JSON, the other runs still run and the exit status stays 0; asked for
 * alone it exits 2 and says what to do; bad options are refused.
 *
 * In the patched-kernel VM, over soft-RoCE: a device on a veth in the
 * initial namespace (6.12's rxe works there only), then
 *  - `--demo --compare rdma -j` with two flows: the rdma run wrote into the
 *    buffer the devmem run received into, validated byte for byte;
 *  - the same with --inject-error: a flipped bit in what the peer writes
 *    must fail the run at its offset (so validation reads what landed);
 *  - receiver and `--send --rdma` as two processes in two namespaces.
 *
 * usage: bench_rdma_test PATH-TO-gpud-rxbench [PATH-TO-fake-libibverbs]
 */
#define _GNU_SOURCE
#include "gpud_test.h"
#include "json_get.h"
#include "tool_run.h"

#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *tool;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[768];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	t_log("$ %s -> %d", cmd, st);
	return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- host: the rdma run cannot run here ------------------------------- */

/* --compare plain,rdma: rdma skipped with @why_part in its reason, rest fine. */
static void check_skip_alongside(const char *why_part)
{
	char *argv[] = { (char *)tool, "--demo", "--compare", "plain,rdma", "-j", "--duration",
			 "0.5", NULL };
	struct tool_run r;
	const char *doc;

	tool_run(&r, argv, 0, 0, false);
	doc = r.out;
	t_log("compare plain,rdma: exit %d: %s", tool_exit_code(&r), doc);
	T_ASSERT_EQ(0, tool_exit_code(&r));
	T_ASSERT(jg_valid(doc));
	T_ASSERT(jg_bool(doc, "ok"));
	T_ASSERT_STREQ("gpud", jg_str(doc, "runs.0.name"));
	T_ASSERT_STREQ("plain", jg_str(doc, "runs.1.name"));
	T_ASSERT(!jg_get(doc, "runs.2", (char[8]){ 0 }, 8));
	T_ASSERT(jg_num(doc, "runs.0.bytes") > 0 && jg_num(doc, "runs.1.bytes") > 0);
	T_ASSERT(jg_is_null(doc, "runs.0.rdma"));
	T_ASSERT_STREQ("rdma", jg_str(doc, "skipped.0.name"));
	if (!strstr(jg_str(doc, "skipped.0.reason"), why_part))
		T_FAIL("skip reason '%s' does not mention '%s'", jg_str(doc, "skipped.0.reason"),
		       why_part);
	T_ASSERT(!jg_get(doc, "skipped.1", (char[8]){ 0 }, 8));
	T_ASSERT_STREQ("rdma", jg_str(doc, "config.compare_with.1"));
	T_ASSERT(jg_is_null(doc, "ratio.gbps_gpud_over_rdma"));
	T_ASSERT(jg_num(doc, "ratio.gbps_gpud_over_plain") > 0);
	T_ASSERT(tool_netns_gone(r.pid, 0));
	tool_run_free(&r);
}

/* The table says it too, and --compare rdma alone still runs the gpud run. */
static void check_skip_text(const char *why_part)
{
	char *argv[] = { (char *)tool, "--demo", "--compare", "rdma", "--duration", "0.5", NULL };
	struct tool_run r;

	tool_run(&r, argv, 0, 0, false);
	T_ASSERT_EQ(0, tool_exit_code(&r));
	T_ASSERT(strstr(r.out, "rdma run SKIPPED: "));
	T_ASSERT(strstr(r.out, why_part));
	T_ASSERT(strstr(r.out, "\ngpud "));
	T_ASSERT(strstr(r.err, "rdma run skipped: "));
	tool_run_free(&r);
}

/* --only rdma: exit 2, the reason and what to do, JSON still well-formed. */
static void check_only_refused(const char *why_part, const char *fix_part)
{
	char *argv[] = { (char *)tool, "--demo", "--only", "rdma", "-j", NULL };
	struct tool_run r;

	tool_run(&r, argv, 0, 0, false);
	t_log("only rdma: exit %d", tool_exit_code(&r));
	T_ASSERT_EQ(2, tool_exit_code(&r));
	T_ASSERT(jg_valid(r.out));
	T_ASSERT(!jg_bool(r.out, "ok"));
	T_ASSERT(jg_bool(r.out, "config.only_rdma"));
	T_ASSERT(!jg_get(r.out, "runs.0", (char[8]){ 0 }, 8));
	T_ASSERT_STREQ("rdma", jg_str(r.out, "skipped.0.name"));
	T_ASSERT(strstr(r.err, "--only rdma: cannot run: "));
	T_ASSERT(strstr(r.err, why_part));
	if (fix_part && !strstr(r.err, fix_part))
		T_FAIL("the error does not name the fix '%s'", fix_part);
	T_ASSERT(tool_netns_gone(r.pid, 0));
	tool_run_free(&r);
}

static void check_bad_options(void)
{
	char *bad[][6] = {
		{ (char *)tool, "--compare=bogus", NULL },
		{ (char *)tool, "--compare", "plain,bogus", NULL },
		{ (char *)tool, "--only", "plain", NULL },
		{ (char *)tool, "--only", "rdma", "--compare", NULL },
		{ (char *)tool, "--rdma-gid", "x", NULL },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tool_run r;

		tool_run(&r, bad[i], 0, 0, false);
		T_ASSERT_EQ(2, tool_exit_code(&r));
		T_ASSERT(strlen(r.err) > 10);
		tool_run_free(&r);
	}
}

static void host_checks(const char *fake)
{
	/* This host as it is: no RDMA (no rdma-core, no uverbs, or no device). */
	check_skip_alongside("rdma");
	/* rdma-core missing: the package to install. */
	setenv("GPUD_LIBIBVERBS", "/nonexistent/libibverbs.so.1", 1);
	check_skip_alongside("install rdma-core");
	check_only_refused("install rdma-core", NULL);
	check_skip_text("install rdma-core");
	/* rdma-core, no device: how to make a soft-RoCE one. */
	if (fake) {
		setenv("GPUD_LIBIBVERBS", fake, 1);
		setenv("GPUD_FAKE_IB_DEVS", "", 1);
		check_skip_alongside("no RDMA devices");
		check_only_refused("no RDMA devices", "rdma link add");
		unsetenv("GPUD_FAKE_IB_DEVS");
	}
	unsetenv("GPUD_LIBIBVERBS");
	check_bad_options();
}

/* ---- VM: soft-RoCE ---------------------------------------------------- */

struct rxe {
	struct t_netpair np;	/* cleanup anchor, and the two-process test's namespaces */
	char ifname[16];	/* veth end in the initial namespace, under the rxe device */
	char dev[32];
};

/*
 * The rxe device sits on a veth whose peer lives in the fixture's namespace
 * a: however the test ends, the guardian deletes a, that deletes the veth
 * pair, and the rxe device goes with its netdev.
 */
static void rxe_setup(struct rxe *x)
{
	char path[96];
	int pid = (int)getpid();

	if (sh("command -v rdma >/dev/null"))
		t_skip("no rdma tool (iproute2)");
	t_netpair_setup(&x->np, T_LINK_VETH);
	snprintf(x->ifname, sizeof(x->ifname), "gbr%dr", pid % 100000);
	if (sh("ip link add %s type veth peer name gbr%dp netns %s", x->ifname, pid % 100000,
	       x->np.ns[0]) ||
	    sh("ip addr add 198.18.3.1/24 dev %s && ip link set %s up", x->ifname, x->ifname) ||
	    t_netpair_exec(&x->np, 0, "ip link set gbr%dp up", pid % 100000))
		T_FAIL("cannot set up the veth for soft-RoCE");
	snprintf(x->dev, sizeof(x->dev), "gpud_rxb%d", pid);
	if (sh("rdma link add %s type rxe netdev %s", x->dev, x->ifname))
		t_skip("rdma link add failed: a kernel without CONFIG_RDMA_RXE?");
	/* rxe's GID table fills after the link appears; the tool waits too, briefly */
	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/ports/1/gids/1", x->dev);
	for (int i = 0; i < 100 && sh("grep -q ffff:c612:0301 %s", path); i++)
		usleep(50000);
}

static void rxe_teardown(struct rxe *x)
{
	char path[96];
	double t0 = t_now();

	T_ASSERT_EQ(0, sh("rdma link delete %s", x->dev));
	T_ASSERT_EQ(0, sh("ip link del %s", x->ifname));
	t_netpair_teardown(&x->np);
	snprintf(path, sizeof(path), "/sys/class/infiniband/%s", x->dev);
	while (!access(path, F_OK) && t_now() - t0 < 10)
		usleep(50000);
	T_ASSERT(access(path, F_OK));
}

/* The rdma run's JSON: ran, wrote everything, checked everything. */
static void check_rdma_run(const char *doc, const char *run, const char *dev, double bytes)
{
	char key[64];

#define K(s) (snprintf(key, sizeof(key), "%s.%s", run, s), key)
	T_ASSERT_STREQ("rdma", jg_str(doc, K("name")));
	T_ASSERT_STREQ("rdma", jg_str(doc, K("mode")));
	T_ASSERT(jg_is_null(doc, K("error")));
	T_ASSERT(jg_is_null(doc, K("mismatch")));
	T_ASSERT(jg_bool(doc, K("validated")));
	T_ASSERT_EQ(bytes, jg_num(doc, K("bytes")));
	T_ASSERT_EQ(bytes, jg_num(doc, K("bytes_checked")));
	T_ASSERT(jg_num(doc, K("gbps")) > 0);
	T_ASSERT_STREQ(dev, jg_str(doc, K("rdma.device")));
	T_ASSERT_STREQ("rxe", jg_str(doc, K("rdma.provider")));
	/* rxe cannot import a dma-buf: the CPU-mapping fallback registered it */
	T_ASSERT_STREQ("cpu-mapping", jg_str(doc, K("rdma.registration")));
	T_ASSERT(jg_bool(doc, K("rdma.soft")));
	T_ASSERT(strstr(jg_str(doc, K("rdma.note")), "not a performance claim"));
	T_ASSERT(jg_num(doc, K("rdma.writes")) >= bytes / jg_num(doc, K("rdma.write_bytes")));
	T_ASSERT_EQ(1, jg_num(doc, K("cpu_copies_per_byte")));
#undef K
}

static void vm_compare(const struct rxe *x)
{
	char *argv[] = { (char *)tool, "--demo", "--compare", "rdma", "-j", "--flows", "2",
			 "--bytes", "16M", "--rdma-dev", (char *)x->dev, NULL };
	const char *req = getenv("GPUD_REQUIRE_DEVMEM");
	struct tool_run r;
	const char *doc;

	tool_run(&r, argv, 0, 0, false);
	doc = r.out;
	t_log("compare rdma: exit %d: %s", tool_exit_code(&r), doc);
	if (tool_exit_code(&r) && strstr(r.err, "header split") && !(req && !strcmp(req, "1")))
		t_skip("this kernel's netdevsim has no header split (kernel-patches/ not applied): "
		       "the gpud run cannot bind the buffer the rdma run is to share");
	T_ASSERT_EQ(0, tool_exit_code(&r));
	T_ASSERT(jg_valid(doc));
	T_ASSERT(jg_bool(doc, "ok"));
	T_ASSERT(!jg_get(doc, "skipped.0", (char[8]){ 0 }, 8));
	T_ASSERT_STREQ("gpud", jg_str(doc, "runs.0.name"));
	T_ASSERT_STREQ("devmem", jg_str(doc, "runs.0.mode"));
	T_ASSERT(jg_bool(doc, "runs.0.validated"));
	check_rdma_run(doc, "runs.1", x->dev, 16 << 20);
	T_ASSERT_EQ(2, jg_num(doc, "runs.1.flows"));
	/* the very buffer the NIC received into, still bound */
	T_ASSERT(jg_bool(doc, "runs.1.rdma.same_buffer_as_gpud"));
	T_ASSERT(jg_num(doc, "ratio.gbps_gpud_over_rdma") > 0);
	T_ASSERT(tool_netns_gone(r.pid, 0));
	tool_run_free(&r);
}

/* A bit flipped on its way in must be found where it landed, at its offset. */
static void vm_corruption(const struct rxe *x)
{
	char *argv[] = { (char *)tool, "--demo", "--only", "rdma", "-j", "--bytes", "8M",
			 "--inject-error", "5000003", "--rdma-dev", (char *)x->dev, NULL };
	struct tool_run r;

	tool_run(&r, argv, 0, 0, false);
	t_log("rdma with a corrupted write: exit %d: %s", tool_exit_code(&r), r.out);
	T_ASSERT_EQ(1, tool_exit_code(&r));
	T_ASSERT(jg_valid(r.out));
	T_ASSERT(!jg_bool(r.out, "ok"));
	T_ASSERT_STREQ("rdma", jg_str(r.out, "runs.0.name"));
	T_ASSERT(!jg_bool(r.out, "runs.0.validated"));
	T_ASSERT_EQ(0, jg_num(r.out, "runs.0.mismatch.flow"));
	T_ASSERT_EQ(5000003, jg_num(r.out, "runs.0.mismatch.offset"));
	T_ASSERT(strstr(r.err, "VALIDATION FAILED: rdma run"));
	T_ASSERT(tool_netns_gone(r.pid, 0));
	tool_run_free(&r);
}

/* Receiver in namespace b, `--send --rdma` in a: the standalone protocol. */
static void vm_two_processes(const struct rxe *x)
{
	char out[64], txout[64], *doc = NULL;
	size_t len = 0;
	pid_t rx;
	FILE *f;
	int st;

	snprintf(out, sizeof(out), "/tmp/bench_rdma_rx.%d", (int)getpid());
	snprintf(txout, sizeof(txout), "/tmp/bench_rdma_tx.%d", (int)getpid());
	fflush(NULL);
	rx = fork();
	T_ASSERT(rx >= 0);
	if (!rx)
		_exit(t_netpair_exec(&x->np, 1, "%s --only rdma --listen %s --port 5450 --rdma-dev "
				     "%s --bytes 8M --validate -j > %s", tool, x->np.addr[1],
				     x->dev, out));
	T_ASSERT_EQ(0, t_netpair_exec(&x->np, 0, "%s --send %s:5450 --rdma --rdma-dev %s "
				      "--bytes 8M > %s", tool, x->np.addr[1], x->dev, txout));
	T_ASSERT_EQ(rx, waitpid(rx, &st, 0));
	T_ASSERT(WIFEXITED(st));
	T_ASSERT_EQ(0, WEXITSTATUS(st));
	f = fopen(out, "r");
	T_ASSERT(f);
	T_ASSERT_EQ(0, getdelim(&doc, &len, '\0', f) < 0 ? -1 : 0);
	fclose(f);
	t_log("receiver: %s", doc);
	T_ASSERT(jg_valid(doc));
	T_ASSERT(jg_bool(doc, "ok"));
	check_rdma_run(doc, "runs.0", x->dev, 8 << 20);
	T_ASSERT(!jg_bool(doc, "runs.0.rdma.same_buffer_as_gpud"));
	free(doc);
	doc = NULL;
	len = 0;
	f = fopen(txout, "r");
	T_ASSERT(f);
	T_ASSERT_EQ(0, getdelim(&doc, &len, '\0', f) < 0 ? -1 : 0);
	fclose(f);
	t_log("sender: %s", doc);
	T_ASSERT(strstr(doc, "(RDMA WRITE): sent 8388608 bytes"));
	free(doc);
	unlink(out);
	unlink(txout);
}

int main(int argc, char **argv)
{
	static struct rxe x;

	if (argc < 2)
		T_FAIL("usage: %s PATH-TO-gpud-rxbench [PATH-TO-fake-libibverbs]", argv[0]);
	tool = argv[1];
	t_require_root();
	if (!t_in_vm()) {
		host_checks(argc > 2 ? argv[2] : NULL);
		t_log("PASS (host: the rdma run skipped, with reasons)");
		return T_EXIT_PASS;
	}
	rxe_setup(&x);
	vm_compare(&x);
	vm_corruption(&x);
	vm_two_processes(&x);
	rxe_teardown(&x);
	t_log("PASS (soft-RoCE in the VM)");
	return T_EXIT_PASS;
}
