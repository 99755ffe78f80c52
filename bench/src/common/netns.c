// SPDX-License-Identifier: MIT
/*
 * The benches' own network (gpud-rxbench --demo, gpud-pluginbench): two
 * namespaces joined by a veth pair (stock kernel) or by two linked netdevsim
 * ports (patched-kernel VM), on gpudirect-lib/tools/netns/. The tools may shell out to
 * `ip`; the library never does.
 *
 * Cleanup has to survive every way the tool can end (return from main, exit
 * on error, SIGINT/SIGTERM, even SIGKILL), so the guardian does it.
 */
#include "bench_netns.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>


bool bench_in_vm(void)
{
	const char *v = getenv("GPUD_IN_VM");

	return v && !strcmp(v, "1") && !access("/sys/bus/netdevsim", F_OK);
}

int bench_netns_enter(int nsfd)
{
	return netns_enter(nsfd);
}

static int setup_nsim(struct bench_netns *n)
{
	char why[160];
	int idx[2], err;

	for (int s = 0; s < 2; s++) {
		snprintf(n->ifname[s], sizeof(n->ifname[s]), "nsim%d", s);
		/* one port, 4 queues: queue 0 keeps RSS, queue 1 is bound */
		err = netns_nsim_add(n->nsim_id[s], 4, n->ns[s], n->ifname[s], why, sizeof(why));
		if (err) {
			fprintf(stderr, "%s: %s\n", n->tool, why);
			return err;
		}
	}
	/* ifindexes are per namespace */
	for (int s = 0; s < 2; s++) {
		idx[s] = netns_ifindex(n->nsfd[s], n->ifname[s]);
		if (idx[s] < 0)
			return idx[s];
	}
	err = netns_nsim_link(n->nsfd, idx, why, sizeof(why));
	if (err)
		fprintf(stderr, "%s: %s\n", n->tool, why);
	return err;
}

static int setup_veth(struct bench_netns *n)
{
	snprintf(n->ifname[0], sizeof(n->ifname[0]), "rxb-tx");
	snprintf(n->ifname[1], sizeof(n->ifname[1]), "rxb-rx");
	if (netns_run("ip link add %s netns %s type veth peer name %s netns %s", n->ifname[0],
		      n->ns[0], n->ifname[1], n->ns[1]))
		return -EIO;
	return 0;
}

/* @ifname's flags in namespace @nsfd: 0 and *flags, or -errno. */
static int link_flags(int nsfd, int orig_nsfd, const char *ifname, short *flags)
{
	struct ifreq ifr = { 0 };
	int fd, err;

	err = netns_enter(nsfd);
	if (err)
		return err;
	/* a socket belongs to the namespace it is created in */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	err = fd < 0 ? -errno : 0;
	if (!err) {
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
		err = ioctl(fd, SIOCGIFFLAGS, &ifr) ? -errno : 0;
		close(fd);
	}
	if (netns_enter(orig_nsfd) && !err)
		err = -EIO;
	if (!err)
		*flags = ifr.ifr_flags;
	return err;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * "ip link set up" returns before the link runs: IFF_RUNNING (operstate up)
 * follows the carrier through the kernel's linkwatch, up to a second later.
 * A plugin that probes its interfaces at init (a libfabric provider, say)
 * skips one that is not running yet, so the ranks start only once both are.
 */
int bench_wait_running(const char *tool, int orig_nsfd, const struct bench_if *ifs, int n,
		       double timeout_s)
{
	double end = mono_now() + timeout_s;
	short flags = 0;
	int err;

	for (int s = 0; s < n; s++) {
		const struct bench_if *f = &ifs[s];

		for (;;) {
			err = link_flags(f->nsfd, orig_nsfd, f->ifname, &flags);
			if (err) {
				fprintf(stderr, "%s: cannot read the flags of %s in namespace %s: %s\n",
					tool, f->ifname, f->ns, strerror(-err));
				return err;
			}
			if (flags & IFF_RUNNING)
				break;
			if (mono_now() > end) {
				fprintf(stderr, "%s: link %s in namespace %s is not running (no "
					"IFF_RUNNING) %.0f s after it was set up; it is %s: no "
					"carrier from its peer %s in %s?\n",
					tool, f->ifname, f->ns, timeout_s,
					flags & IFF_UP ? "UP" : "not even UP", f->peer_if, f->peer_ns);
				return -ETIMEDOUT;
			}
			usleep(10000);
		}
	}
	return 0;
}

static int wait_running(struct bench_netns *n, double timeout_s)
{
	struct bench_if ifs[2];

	for (int s = 0; s < 2; s++)
		ifs[s] = (struct bench_if){ .nsfd = n->nsfd[s], .ns = n->ns[s],
					    .ifname = n->ifname[s], .peer_ns = n->ns[!s],
					    .peer_if = n->ifname[!s] };
	return bench_wait_running(n->tool, n->orig_nsfd, ifs, 2, timeout_s);
}

static int start_guard(struct bench_netns *n)
{
	struct netns_guard_cfg gc = { .nsim = n->link == BENCH_LINK_NSIM };

	for (int s = 0; s < 2; s++) {
		snprintf(gc.ns[s], sizeof(gc.ns[s]), "%s", n->ns[s]);
		gc.nsim_id[s] = n->nsim_id[s];
	}
	return netns_guard_start(&n->guard, &gc);
}

int bench_ns_add(const char *tool, const char *ns, int *nsfd)
{
	char path[96];

	if (netns_run("ip netns add %s", ns)) {
		fprintf(stderr, "%s: ip netns add %s failed\n", tool, ns);
		return -EIO;
	}
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	*nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (*nsfd < 0)
		return -errno;
	netns_run("ip -n %s link set lo up", ns);
	return 0;
}

int bench_netns_setup(struct bench_netns *n, const char *tool, enum bench_link link)
{
	pid_t me = getpid();
	int err;

	memset(n, 0, sizeof(*n));
	n->link = link;
	n->tool = tool;
	n->nsfd[0] = n->nsfd[1] = n->orig_nsfd = n->guard.fd = -1;
	snprintf(n->ns[0], sizeof(n->ns[0]), "%s-%d-tx", tool, (int)me);
	snprintf(n->ns[1], sizeof(n->ns[1]), "%s-%d-rx", tool, (int)me);
	for (int s = 0; s < 2; s++)
		n->nsim_id[s] = 900000u + (unsigned int)(me % 50000) * 2 + (unsigned int)s;

	n->orig_nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (n->orig_nsfd < 0)
		return -errno;
	/* The guardian exists before anything it has to remove. */
	err = start_guard(n);
	if (err)
		return err;
	for (int s = 0; s < 2; s++) {
		err = bench_ns_add(tool, n->ns[s], &n->nsfd[s]);
		if (err)
			return err;
	}
	err = link == BENCH_LINK_VETH ? setup_veth(n) : setup_nsim(n);
	if (err) {
		fprintf(stderr, "%s: cannot create the %s link\n", tool,
			link == BENCH_LINK_VETH ? "veth" : "netdevsim");
		return err;
	}
	for (int s = 0; s < 2; s++) {
		/* RFC 2544 benchmarking range only. */
		snprintf(n->addr[s], sizeof(n->addr[s]), "198.18.%d.%d", 100, s + 1);
		if (netns_run("ip -n %s addr add %s/24 dev %s && ip -n %s link set %s up",
			      n->ns[s], n->addr[s], n->ifname[s], n->ns[s], n->ifname[s]))
			return -EIO;
	}
	return wait_running(n, BENCH_LINK_WAIT_S);
}

void bench_ns_close(int *nsfd, int n, int *orig_nsfd)
{
	for (int s = 0; s < n; s++) {
		if (nsfd[s] >= 0)
			close(nsfd[s]);
		nsfd[s] = -1;
	}
	if (*orig_nsfd >= 0) {
		netns_enter(*orig_nsfd);
		close(*orig_nsfd);
		*orig_nsfd = -1;
	}
}

void bench_netns_teardown(struct bench_netns *n)
{
	bench_ns_close(n->nsfd, 2, &n->orig_nsfd);
	netns_guard_stop(&n->guard);
}
