/* SPDX-License-Identifier: MIT */
/*
 * Two network namespaces joined by one link, created by a bench tool for its
 * own run and removed however the tool ends (a guardian child does it). Shared
 * by gpud-rxbench --demo and gpud-pluginbench; the plumbing under it is
 * gpudirect-lib/tools/netns/, which the test fixture (t_netpair) uses too.
 */
#ifndef BENCH_NETNS_H
#define BENCH_NETNS_H

#include "netns.h"

#include <stdbool.h>
#include <sys/types.h>

enum bench_link {
	BENCH_LINK_VETH,
	BENCH_LINK_NSIM,
};

struct bench_netns {
	enum bench_link link;
	const char *tool;	/* names the namespaces "<tool>-<pid>-tx|rx" */
	char ns[2][48];		/* [0] sender side, [1] receiver side */
	char ifname[2][16];
	char addr[2][16];	/* 198.18.100.1 and .2 (RFC 2544 range) */
	int nsfd[2];
	int orig_nsfd;		/* the namespace we started in */
	unsigned int nsim_id[2];
	struct netns_guard guard;	/* a forked child closes guard.fd */
};

/*
 * Creates both namespaces and the link, and returns once the link runs
 * (IFF_RUNNING) on both sides, bounded; 0 or -errno after printing why.
 */
int bench_netns_setup(struct bench_netns *n, const char *tool, enum bench_link link);
/* Removes them now and waits for it; safe to call twice. */
void bench_netns_teardown(struct bench_netns *n);
/* Moves the calling thread into namespace @nsfd (-1: stay). */
int bench_netns_enter(int nsfd);
/* Is this the patched-kernel VM with netdevsim? */
bool bench_in_vm(void);

#endif /* BENCH_NETNS_H */
