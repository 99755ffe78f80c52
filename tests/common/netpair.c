// SPDX-License-Identifier: MIT
/*
 * Network fixture: two namespaces joined by a veth pair (host kernel) or by
 * two linked netdevsim ports (patched-kernel VM). Test code may shell out to
 * `ip`; library code never does.
 *
 * The plumbing is gpudirect-lib/tools/netns/, shared with the bench tools; this file adds
 * the test's names and addresses and turns failures into T_FAIL or a skip.
 * Cleanup must survive any way a test can end (assertion exit, ASan abort,
 * ctest's SIGKILL on timeout): the guardian removes the namespaces and
 * devices, and when the test was killed, the peers it left in them.
 */
#define _GNU_SOURCE
#include "gpud_test.h"

#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

/* netdevsim ids derived from the pid keep parallel tests apart. */
static unsigned int nsim_id(const struct t_netpair *p, int side)
{
	return 10000 + (unsigned int)(p->owner_pid % 400000) * 2 + side;
}

unsigned int t_netpair_nsim_id(const struct t_netpair *p, int side)
{
	return nsim_id(p, side);
}

static void start_guardian(struct t_netpair *p)
{
	struct netns_guard_cfg gc = { .nsim = p->kind == T_LINK_NSIM, .kill_stragglers = true };
	struct netns_guard g;
	int err;

	for (int s = 0; s < 2; s++) {
		snprintf(gc.ns[s], sizeof(gc.ns[s]), "%s", p->ns[s]);
		gc.nsim_id[s] = nsim_id(p, s);
	}
	err = netns_guard_start(&g, &gc);
	if (err)
		T_FAIL("cannot start the namespace guardian: %s", strerror(-err));
	p->guardian_fd = g.fd;
	p->guardian_pid = g.pid;
}

static void setup_veth(struct t_netpair *p)
{
	char q[64] = "";

	snprintf(p->ifname[0], sizeof(p->ifname[0]), "gpud0");
	snprintf(p->ifname[1], sizeof(p->ifname[1]), "gpud1");
	if (p->queues)
		snprintf(q, sizeof(q), " numrxqueues %u numtxqueues %u", p->queues, p->queues);
	if (netns_run("ip link add %s netns %s%s type veth peer name %s netns %s%s",
		      p->ifname[0], p->ns[0], q, p->ifname[1], p->ns[1], q))
		T_FAIL("cannot create veth pair between %s and %s", p->ns[0], p->ns[1]);
}

static void setup_nsim(struct t_netpair *p)
{
	char why[160];

	if (access("/sys/bus/netdevsim/new_device", W_OK))
		t_skip("netdevsim is not available (CONFIG_NETDEVSIM): run inside the patched-kernel VM");
	for (int s = 0; s < 2; s++) {
		snprintf(p->ifname[s], sizeof(p->ifname[s]), "nsim%d", s);
		/* one port, 4 queue pairs by default: queue 0 for RSS, others for devmem */
		if (netns_nsim_add(nsim_id(p, s), p->queues ? p->queues : 4, p->ns[s],
				   p->ifname[s], why, sizeof(why)))
			T_FAIL("%s", why);
	}
	for (int s = 0; s < 2; s++) {
		p->ifindex[s] = netns_ifindex(p->nsfd[s], p->ifname[s]);
		if (p->ifindex[s] <= 0)
			T_FAIL("cannot read ifindex of %s in %s", p->ifname[s], p->ns[s]);
	}
	if (netns_nsim_link(p->nsfd, p->ifindex, why, sizeof(why)))
		T_FAIL("%s", why);
}

void t_netpair_setup(struct t_netpair *p, enum t_link_kind kind)
{
	t_netpair_setup_queues(p, kind, 0);
}

void t_netpair_setup_queues(struct t_netpair *p, enum t_link_kind kind, unsigned int queues)
{
	char path[96];
	pid_t me = getpid();

	t_require_root();
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->queues = queues;
	p->nsfd[0] = p->nsfd[1] = -1;
	p->owner_pid = (int)me;
	if (kind == T_LINK_NSIM)
		t_require_vm();
	if (netns_run("command -v ip >/dev/null 2>&1"))
		t_skip("iproute2 is not installed: apt-get install iproute2");
	for (int s = 0; s < 2; s++)
		snprintf(p->ns[s], sizeof(p->ns[s]), "gpudt-%d-%c", (int)me, 'a' + s);
	start_guardian(p);
	for (int s = 0; s < 2; s++) {
		if (netns_run("ip netns add %s", p->ns[s]))
			T_FAIL("ip netns add %s failed", p->ns[s]);
		snprintf(path, sizeof(path), "/var/run/netns/%s", p->ns[s]);
		p->nsfd[s] = open(path, O_RDONLY | O_CLOEXEC);
		if (p->nsfd[s] < 0)
			T_FAIL("open %s: %s", path, strerror(errno));
		netns_run("ip -n %s link set lo up", p->ns[s]);
	}
	if (kind == T_LINK_VETH)
		setup_veth(p);
	else
		setup_nsim(p);
	for (int s = 0; s < 2; s++) {
		snprintf(p->addr[s], sizeof(p->addr[s]), "198.18.0.%d", s + 1);
		if (netns_run("ip -n %s addr add %s/24 dev %s && ip -n %s link set %s up",
			      p->ns[s], p->addr[s], p->ifname[s], p->ns[s], p->ifname[s]))
			T_FAIL("cannot configure %s in %s", p->ifname[s], p->ns[s]);
		if (kind == T_LINK_VETH)
			p->ifindex[s] = netns_ifindex(p->nsfd[s], p->ifname[s]);
	}
}

void t_netpair_teardown(struct t_netpair *p)
{
	struct netns_guard g = { .fd = p->guardian_fd, .pid = p->guardian_pid };

	for (int s = 0; s < 2; s++) {
		if (p->nsfd[s] >= 0)
			close(p->nsfd[s]);
		p->nsfd[s] = -1;
	}
	netns_guard_stop(&g);
	p->guardian_fd = -1;
	p->guardian_pid = 0;
}

int t_netpair_enter(const struct t_netpair *p, int side)
{
	return netns_enter(p->nsfd[side]);
}

int t_netpair_exec(const struct t_netpair *p, int side, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return netns_run("ip netns exec %s sh -c '%s'", p->ns[side], cmd);
}
