// SPDX-License-Identifier: MIT
/*
 * gpud-pluginbench: the NCCL net plugin against plain TCP, per message size.
 *
 * The parent creates two namespaces joined by a veth pair (netdevsim inside
 * the patched-kernel VM), with the guardian that removes them however we
 * end, then forks: rank 0 (the parent, which reports) runs in the receiving
 * namespace, rank 1 in the other. Each rank loads its own copy of the plugin,
 * as two NCCL processes would, and both run the same sweep per transport.
 */
#include "pluginbench.h"
#include "bench_netns.h"
#include "coll.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

volatile sig_atomic_t pb_interrupted;

static void on_signal(int sig)
{
	pb_interrupted = sig;
}

static int check_can_run(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, PB_TOOL " creates two network namespaces and a veth pair, which\n"
				"needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): sudo " PB_TOOL "\n"
				"Everything it creates is removed when it exits, ^C included.\n");
		return PB_EXIT_USAGE;
	}
	if (system("command -v ip >/dev/null 2>&1")) {
		fprintf(stderr, PB_TOOL " needs the `ip` tool: apt-get install iproute2\n");
		return PB_EXIT_USAGE;
	}
	return 0;
}

static void xport_init(struct pb_xport *x, enum pb_xport_kind k, const struct pb_opts *o,
		       const struct pb_rank *r, struct pb_bufs *b)
{
	memset(x, 0, sizeof(*x));
	x->kind = k;
	x->o = o;
	x->r = r;
	x->b = b;
	x->ops = k == PB_XPORT_PLUGIN ? &pb_plugin_ops : &pb_raw_ops;
	x->name = k == PB_XPORT_PLUGIN ? "plugin" : k == PB_XPORT_RAW1 ? "raw_1" : "raw_n";
	x->nconns = k == PB_XPORT_RAW1 ? 1 : o->nsocks;
}

/* One transport, both ranks: connect, sweep, close. Rank 0 keeps the numbers. */
static int run_xport(struct pb_xport *x, struct pb_result *res, double budget)
{
	struct pb_series *s = &res->s[x->kind];
	int err;

	s->name = x->name;
	s->conns = x->nconns;
	err = pb_ctl_agree(x->r->ctl, x->ops->open(x));
	if (!err)
		err = pb_sweep(x, res->sizes, res->nsizes, budget, s);
	s->ran = true;
	s->err = err;
	snprintf(s->errmsg, sizeof(s->errmsg), "%s", err && x->err[0] ? x->err
						      : err ? strerror(-err) : "");
	snprintf(s->desc, sizeof(s->desc), "%s", x->desc);
	snprintf(s->mode, sizeof(s->mode), "%s", x->mode);
	if (err && x->err[0])
		fprintf(stderr, PB_TOOL "[rank %d]: %s: %s\n", x->r->rank, x->name, x->err);
	x->ops->close(x);
	/* the next transport starts on both ranks together */
	return pb_ctl_barrier(x->r->ctl) ? -EPIPE : err;
}

static int run_rank(const struct pb_opts *o, const struct pb_rank *r, struct pb_result *res)
{
	int nx = o->nsocks > 1 ? PB_NXPORTS : PB_NXPORTS - 1;	/* raw_n = raw_1 when N is 1 */
	double budget = o->budget_s / (res->nsizes * nx);
	struct pb_bufs b;
	struct pb_xport x;
	char why[256] = "";
	int err, first = 0;

	err = pb_ctl_agree(r->ctl, pb_bufs_alloc(&b, o, why, sizeof(why)));
	if (err) {
		if (why[0])
			fprintf(stderr, PB_TOOL "[rank %d]: %s\n", r->rank, why);
		return err == -ENODEV || err == -EOPNOTSUPP ? PB_EXIT_USAGE : PB_EXIT_FAIL;
	}
	for (int k = 0; k < nx && !pb_interrupted; k++) {
		xport_init(&x, (enum pb_xport_kind)k, o, r, &b);
		err = run_xport(&x, res, budget);
		if (err == -EPIPE)
			break;	/* the other rank is gone */
		if (err && !first)
			first = err;
	}
	pb_bufs_free(&b);
	if (pb_interrupted)
		return 128 + pb_interrupted;
	return first || err ? PB_EXIT_FAIL : PB_EXIT_OK;
}

static int child_main(const struct pb_opts *o, struct bench_netns *n, int ctl)
{
	struct pb_rank r = { .rank = 1, .ctl = ctl, .ifname = n->ifname[0], .addr = n->addr[0],
			     .peer_addr = n->addr[1], .do_send = true, .do_recv = !o->oneway };
	struct pb_result *res;
	int rc;

	/* the guardian must see EOF when the parent goes, not wait for us */
	close(n->guard.fd);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (bench_netns_enter(n->nsfd[0]))
		return PB_EXIT_FAIL;
	res = calloc(1, sizeof(*res));
	if (!res)
		return PB_EXIT_FAIL;
	res->nsizes = pb_sizes(o, res->sizes, PB_MAX_SIZES);
	rc = run_rank(o, &r, res);
	free(res);
	return rc;
}

static int parent_main(const struct pb_opts *o, struct bench_netns *n, int ctl,
		       struct pb_result *res)
{
	struct pb_rank r = { .rank = 0, .ctl = ctl, .ifname = n->ifname[1], .addr = n->addr[1],
			     .peer_addr = n->addr[0], .do_send = !o->oneway, .do_recv = true };
	int err = bench_netns_enter(n->nsfd[1]);

	if (err)
		return PB_EXIT_FAIL;
	return run_rank(o, &r, res);
}

static int run(struct pb_opts *o, struct pb_result *res)
{
	enum bench_link link = bench_in_vm() ? BENCH_LINK_NSIM : BENCH_LINK_VETH;
	struct bench_netns n;
	int sp[2], rc, st, crc;
	pid_t pid;

	rc = bench_netns_setup(&n, PB_TOOL, link);
	if (rc) {
		fprintf(stderr, PB_TOOL ": network setup failed: %s\n", strerror(-rc));
		rc = PB_EXIT_FAIL;
		goto out_teardown;
	}
	snprintf(res->link, sizeof(res->link), "%s (%s %s -> %s %s)",
		 link == BENCH_LINK_VETH ? "veth" : "netdevsim", n.ifname[0], n.addr[0],
		 n.ifname[1], n.addr[1]);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp)) {
		rc = PB_EXIT_FAIL;
		goto out_teardown;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = PB_EXIT_FAIL;
		goto out_close;
	}
	if (pid == 0) {
		close(sp[0]);
		_exit(child_main(o, &n, sp[1]));
	}
	close(sp[1]);
	sp[1] = -1;
	rc = parent_main(o, &n, sp[0], res);
	close(sp[0]);	/* a child still waiting on us sees EOF */
	sp[0] = -1;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	crc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (!rc && crc)
		rc = crc;
out_close:
	if (sp[0] >= 0)
		close(sp[0]);
	if (sp[1] >= 0)
		close(sp[1]);
out_teardown:
	bench_netns_teardown(&n);
	return rc;
}

int main(int argc, char **argv)
{
	char path[PATH_MAX];
	struct pb_result *res;
	struct pb_opts o;
	double t0 = pb_now();
	int rc;

	rc = pb_parse_args(argc, argv, &o);
	if (rc)
		return rc < 0 ? PB_EXIT_OK : rc;
	rc = check_can_run();
	if (rc)
		return rc;
	if (!o.plugin_path)
		o.plugin_path = pb_plugin_default(path, sizeof(path));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (o.op != PB_OP_NONE)
		return pb_coll_main(&o);
	res = calloc(1, sizeof(*res));
	if (!res)
		return PB_EXIT_FAIL;
	res->o = &o;
	res->nsizes = pb_sizes(&o, res->sizes, PB_MAX_SIZES);
	snprintf(res->plugin_path, sizeof(res->plugin_path), "%s", o.plugin_path);
	if (getloadavg(res->loadavg, 3) < 0)
		res->loadavg[0] = res->loadavg[1] = res->loadavg[2] = -1;
	rc = run(&o, res);
	res->wall_s = pb_now() - t0;
	res->interrupted = pb_interrupted;
	res->exit_code = rc;
	if (o.json)
		pb_report_json(stdout, res);
	else
		pb_report_table(stdout, res);
	free(res);
	return rc;
}
