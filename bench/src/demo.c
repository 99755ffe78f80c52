// SPDX-License-Identifier: MIT
/*
 * --demo: the whole thing in one command. Two namespaces joined by a veth
 * pair, sender threads in one, receiver in the other, every byte checked.
 * On a stock kernel that is copy mode (and the report says why); inside the
 * patched-kernel VM it is netdevsim with header split and devmem, a udmabuf
 * host buffer bound to queue 1, the flows steered there by n-tuple rules.
 */
#include "rxbench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_can_run(void)
{
	if (geteuid() != 0) {
		fprintf(stderr,
			"gpud-rxbench --demo creates two network namespaces and a veth pair, which\n"
			"needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN). Run it as:\n"
			"    sudo gpud-rxbench --demo\n"
			"Everything it creates is removed when it exits, ^C included.\n");
		return RXB_EXIT_USAGE;
	}
	if (system("command -v ip >/dev/null 2>&1")) {
		fprintf(stderr, "gpud-rxbench --demo needs the `ip` tool: apt-get install iproute2\n");
		return RXB_EXIT_USAGE;
	}
	return 0;
}

int rxb_demo_main(struct rxb_opts *o)
{
	struct rxb_env env = { .in_process_sender = true };
	enum bench_link link = bench_in_vm() ? BENCH_LINK_NSIM : BENCH_LINK_VETH;
	struct bench_netns *n;
	int rc, err;

	rc = check_can_run();
	if (rc)
		return rc;
	n = calloc(1, sizeof(*n));
	if (!n)
		return RXB_EXIT_FAIL;
	err = bench_netns_setup(n, "gpud-rxbench", link);
	if (err) {
		fprintf(stderr, "gpud-rxbench: demo network setup failed: %s\n", strerror(-err));
		rc = RXB_EXIT_FAIL;
		goto out_teardown;
	}
	env.tx_nsfd = n->nsfd[0];
	env.rx_nsfd = n->nsfd[1];
	env.peer_addr = n->addr[1];
	o->listen_addr = n->addr[1];
	/*
	 * Always try the devmem path on the receiving link: on the host it stops
	 * at the first step this machine cannot do, and that is the reason shown.
	 */
	o->ifname = n->ifname[1];
	if (!o->queues)
		o->queues = 1;
	if (link == BENCH_LINK_NSIM) {
		env.path = "two linked netdevsim ports in two namespaces (test VM)";
		if (o->mode == GPUD_RX_AUTO)
			o->mode = GPUD_RX_DEVMEM;
	} else {
		env.path = "a veth pair between two namespaces";
	}
	if (!o->json)
		fprintf(stderr, "gpud-rxbench: demo over %s (%s %s -> %s %s)\n", env.path, n->ns[0],
			n->addr[0], n->ns[1], n->addr[1]);
	rc = rxb_recv_main(o, &env);
out_teardown:
	bench_netns_teardown(n);
	free(n);
	return rc;
}
