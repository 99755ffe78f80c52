// SPDX-License-Identifier: MIT
/*
 * A ring of N namespaces for gpud-pluginbench --ranks N > 2 (see
 * bench_netns.h). Each link has a guardian of its own (the guardian takes
 * two namespaces); deleting a namespace twice is harmless. A guardian
 * forked later holds the pipes of those before it, so they are stopped in
 * reverse order, each seeing EOF once the later ones are gone.
 */
#include "bench_netns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int start_guards(struct bench_ring *r)
{
	for (int k = 0; k < r->n; k++) {
		struct netns_guard_cfg gc = { 0 };
		int err;

		snprintf(gc.ns[0], sizeof(gc.ns[0]), "%s", r->ns[k]);
		snprintf(gc.ns[1], sizeof(gc.ns[1]), "%s", r->ns[(k + 1) % r->n]);
		err = netns_guard_start(&r->guard[k], &gc);
		if (err)
			return err;
	}
	return 0;
}

static int add_link(struct bench_ring *r, int k)
{
	int j = (k + 1) % r->n;

	if (netns_run("ip link add " BENCH_RING_TX_IF " netns %s type veth peer name "
		      BENCH_RING_RX_IF " netns %s", r->ns[k], r->ns[j]))
		return -EIO;
	/* RFC 2544 benchmarking range only */
	snprintf(r->tx_addr[k], sizeof(r->tx_addr[k]), "198.18.%u.1", (unsigned char)(110 + k));
	snprintf(r->rx_addr[j], sizeof(r->rx_addr[j]), "198.18.%u.2", (unsigned char)(110 + k));
	if (netns_run("ip -n %s addr add %s/24 dev " BENCH_RING_TX_IF " && ip -n %s link set "
		      BENCH_RING_TX_IF " up", r->ns[k], r->tx_addr[k], r->ns[k]) ||
	    netns_run("ip -n %s addr add %s/24 dev " BENCH_RING_RX_IF " && ip -n %s link set "
		      BENCH_RING_RX_IF " up", r->ns[j], r->rx_addr[j], r->ns[j]))
		return -EIO;
	return 0;
}

/* Rank j answers rank k = j - 1, whose connections come from k's rx address. */
static int add_return_route(struct bench_ring *r, int j)
{
	int k = (j + r->n - 1) % r->n;

	if (netns_run("ip -n %s route add %s/32 via %s dev " BENCH_RING_RX_IF, r->ns[j],
		      r->rx_addr[k], r->tx_addr[k]))
		return -EIO;
	return 0;
}

int bench_ring_setup(struct bench_ring *r, const char *tool, int n)
{
	struct bench_if ifs[2 * BENCH_RING_MAX];
	int err;

	memset(r, 0, sizeof(*r));
	r->n = n;
	r->tool = tool;
	r->orig_nsfd = -1;
	for (int k = 0; k < BENCH_RING_MAX; k++) {
		r->nsfd[k] = -1;
		r->guard[k].fd = -1;
	}
	if (n < 3 || n > BENCH_RING_MAX)
		return -EINVAL;
	for (int k = 0; k < n; k++)
		snprintf(r->ns[k], sizeof(r->ns[k]), "%s-%d-r%d", tool, (int)getpid(), k);
	r->orig_nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (r->orig_nsfd < 0)
		return -errno;
	/* the guardians exist before anything they have to remove */
	err = start_guards(r);
	if (err)
		return err;
	for (int k = 0; k < n; k++) {
		err = bench_ns_add(tool, r->ns[k], &r->nsfd[k]);
		if (err)
			return err;
	}
	for (int k = 0; k < n; k++) {
		err = add_link(r, k);
		if (err) {
			fprintf(stderr, "%s: cannot create veth link %d (%s -> %s)\n", tool, k,
				r->ns[k], r->ns[(k + 1) % n]);
			return err;
		}
	}
	for (int j = 0; j < n; j++) {
		err = add_return_route(r, j);
		if (err) {
			fprintf(stderr, "%s: cannot add the return route in %s\n", tool, r->ns[j]);
			return err;
		}
	}
	for (int k = 0; k < n; k++) {
		int j = (k + 1) % n;

		ifs[2 * k] = (struct bench_if){ .nsfd = r->nsfd[k], .ns = r->ns[k],
						.ifname = BENCH_RING_TX_IF, .peer_ns = r->ns[j],
						.peer_if = BENCH_RING_RX_IF };
		ifs[2 * k + 1] = (struct bench_if){ .nsfd = r->nsfd[j], .ns = r->ns[j],
						    .ifname = BENCH_RING_RX_IF, .peer_ns = r->ns[k],
						    .peer_if = BENCH_RING_TX_IF };
	}
	return bench_wait_running(tool, r->orig_nsfd, ifs, 2 * n, BENCH_LINK_WAIT_S);
}

void bench_ring_teardown(struct bench_ring *r)
{
	bench_ns_close(r->nsfd, BENCH_RING_MAX, &r->orig_nsfd);
	for (int k = BENCH_RING_MAX - 1; k >= 0; k--)
		netns_guard_stop(&r->guard[k]);
}
