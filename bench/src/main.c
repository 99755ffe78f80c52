// SPDX-License-Identifier: MIT
/*
 * gpud-rxbench: receive throughput and CPU cost of libgpudirect's receive
 * path (devmem TCP, or its copy fallback), against plain TCP on the same path.
 *
 *   gpud-rxbench --demo                 self-contained run in two namespaces
 *   gpud-rxbench [--mem ...] [...]      receiver
 *   gpud-rxbench --send HOST:PORT ...   sender
 */
#include "rxbench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t rxb_interrupted;

static void on_signal(int sig)
{
	/* First ^C: finish cleanly (the report says "interrupted"); second: die. */
	if (rxb_interrupted)
		signal(sig, SIG_DFL);
	rxb_interrupted = sig;
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	/* No SA_RESTART: blocking calls return EINTR and loops look at the flag. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void log_stderr(enum gpud_log_level level, const char *msg, void *ctx)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	fprintf(stderr, "libgpudirect %s: %s\n", names[level <= GPUD_LOG_DEBUG ? level : 0], msg);
}

static void describe_mem(char *buf, size_t len, const struct rxb_opts *o,
			 const struct rxb_rxsetup *rs)
{
	if (rs->binding)
		snprintf(buf, len, "%s, one %zu MiB dma-buf bound to %s queue(s) 1..%u", o->mem_spec,
			 rs->mem_size >> 20, o->ifname, o->queues);
	else if (o->only_rdma)
		snprintf(buf, len, "%s, one buffer registered for RDMA (rdma run only)",
			 o->mem_spec);
	else
		snprintf(buf, len, "%s, %zu MiB per flow, not exported (copy target)", o->mem_spec,
			 rs->copy_size >> 20);
}

static int exit_code(const struct rxb_run *runs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (runs[i].bad || runs[i].err || !runs[i].bytes)
			return RXB_EXIT_FAIL;
	return rxb_interrupted ? 128 + (int)rxb_interrupted : RXB_EXIT_OK;
}

/*
 * rdma was asked for and cannot run here. Alongside other runs that is a
 * skip, reported with its reason; asked for alone it is the user's error,
 * and the message says what would make it work.
 */
static unsigned int drop_rdma(const struct rxb_opts *o, const struct rxb_rxsetup *rs,
			      enum rxb_kind *kinds, unsigned int n)
{
	if (!o->only_rdma && !o->json)
		fprintf(stderr, "gpud-rxbench: rdma run skipped: %s\n", rs->rdma_skip);
	if (o->only_rdma) {
		fprintf(stderr, "gpud-rxbench: --only rdma: cannot run: %s\n", rs->rdma_skip);
		/* No device (or no RDMA in the kernel): say how to get one. */
		if (rs->rdma_skip_err == -ENODEV && !strstr(rs->rdma_skip, "rdma link add"))
			fprintf(stderr, "gpud-rxbench: it needs an RDMA device: a RoCE or InfiniBand "
				"NIC, or soft-RoCE on any netdev with an IPv4 address:\n"
				"    rdma link add rxe0 type rxe netdev IF   (CONFIG_RDMA_RXE)\n");
	}
	return n - 1;	/* rdma is always the last run */
}

int rxb_recv_main(const struct rxb_opts *o, const struct rxb_env *env)
{
	struct rxb_report rep = { .o = o, .env = env };
	enum rxb_kind kinds[RXB_MAX_RUNS];
	struct rxb_rxsetup *rs;
	struct rxb_run *runs;
	unsigned int nplan;
	char mem_desc[160];
	int rc = RXB_EXIT_FAIL;

	rs = calloc(1, sizeof(*rs));
	runs = calloc(RXB_MAX_RUNS, sizeof(*runs));
	if (!rs || !runs)
		goto out_free;
	if (bench_netns_enter(env->rx_nsfd)) {
		fprintf(stderr, "gpud-rxbench: cannot enter the receiver's namespace: %s\n",
			strerror(errno));
		goto out_free;
	}
	if (rxb_rxsetup_init(rs, o, o->compare ? RXB_MAX_RUNS : 1))
		goto out_free;
	nplan = rxb_plan_runs(o, rs->mem_kind == GPUD_MEM_HOST, kinds);
	if (kinds[nplan - 1] == RXB_KIND_RDMA && rs->rdma_skip[0]) {
		nplan = drop_rdma(o, rs, kinds, nplan);
		rep.rdma_skip = rs->rdma_skip;
	}
	for (unsigned int i = 0; i < nplan && !rxb_interrupted; i++) {
		rep.nruns = i + 1;
		if (rxb_run_one(o, rs, env, kinds[i], i, &runs[i]))
			break;
		if (runs[i].bad)
			break;
	}
	describe_mem(mem_desc, sizeof(mem_desc), o, rs);
	rep.mem_desc = mem_desc;
	rep.placement = rs->placement[0] ? rs->placement : NULL;
	rep.placement_why = rs->placement[0] ? rs->placement_why : NULL;
	rep.run = runs;
	if (o->json)
		rxb_report_json(stdout, &rep);
	else if (nplan)
		rxb_report_table(stdout, &rep);
	for (unsigned int i = 0; i < rep.nruns; i++) {
		/* Loud, on stderr too, so a script that only keeps stdout still fails visibly. */
		if (runs[i].bad)
			fprintf(stderr, "gpud-rxbench: VALIDATION FAILED: %s run, flow %u, first bad "
				"stream offset %llu (expected 0x%02x, got 0x%02x)\n",
				rxb_kind_name(runs[i].kind), runs[i].bad_flow,
				(unsigned long long)runs[i].bad_off, runs[i].bad_expected,
				runs[i].bad_actual);
		if (runs[i].err)
			fprintf(stderr, "gpud-rxbench: %s\n", runs[i].errmsg);
	}
	if (!nplan)
		rc = RXB_EXIT_USAGE;	/* --only rdma, and it cannot run here */
	else
		rc = rep.nruns ? exit_code(runs, rep.nruns) : RXB_EXIT_FAIL;
	rxb_rxsetup_free(rs);
out_free:
	free(runs);
	free(rs);
	return rc;
}

/* What the sender on the other host needs to match this receiver's runs. */
static void sender_hint(const struct rxb_opts *o)
{
	enum rxb_kind kinds[RXB_MAX_RUNS];
	unsigned int n = rxb_plan_runs(o, !strncmp(o->mem_spec, "host", 4), kinds);
	bool rdma = kinds[n - 1] == RXB_KIND_RDMA;
	unsigned int tcp = n - rdma;

	if (n == 1 && !rdma)
		return;
	if (!tcp)
		fprintf(stderr, "gpud-rxbench: the sender needs --rdma\n");
	else
		fprintf(stderr, "gpud-rxbench: the sender needs --runs %u%s\n", tcp,
			rdma ? " --rdma" : "");
}

int main(int argc, char **argv)
{
	struct rxb_env env = { .rx_nsfd = -1, .tx_nsfd = -1 };
	struct rxb_opts o;
	int rc;

	rc = rxb_parse_args(argc, argv, &o);
	if (rc)
		return rc;
	install_signals();
	if (o.verbose)
		gpud_set_log(log_stderr, NULL, GPUD_LOG_DEBUG);
	switch (o.role) {
	case RXB_ROLE_SEND:
		return rxb_send_main(&o);
	case RXB_ROLE_DEMO:
		return rxb_demo_main(&o);
	case RXB_ROLE_RECV:
		break;
	}
	env.path = o.ifname ? o.ifname : "the network";
	if (!o.json)
		sender_hint(&o);
	return rxb_recv_main(&o, &env);
}
