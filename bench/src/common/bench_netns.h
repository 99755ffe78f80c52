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
/* Link up to IFF_RUNNING: veth is ms; netdevsim under TCG on a loaded host, more. */
#define BENCH_LINK_WAIT_S	10.0

/* `ip netns add @ns`, its fd in *nsfd, loopback up; 0 or -errno after printing why. */
int bench_ns_add(const char *tool, const char *ns, int *nsfd);

/* Closes @n namespace fds (-1 skipped, set to -1) and goes back to *orig_nsfd, closing it. */
void bench_ns_close(int *nsfd, int n, int *orig_nsfd);

/* One end of a link, for bench_wait_running(). */
struct bench_if {
	int nsfd;
	const char *ns, *ifname;
	const char *peer_ns, *peer_if;	/* the other end, to name it when it stays down */
};

/*
 * "ip link set up" returns before the link runs: waits until every @ifs
 * has IFF_RUNNING, bounded by @timeout_s; 0 or -errno after printing why.
 */
int bench_wait_running(const char *tool, int orig_nsfd, const struct bench_if *ifs, int n,
		       double timeout_s);

/*
 * gpud-pluginbench --ranks N > 2: namespaces "<tool>-<pid>-rK" in a ring,
 * rank K's "pbr-tx" joined by a veth pair to rank K+1's "pbr-rx" (link K,
 * 198.18.(110+K).0/24: .1 at K, .2 at K+1). Rank K listens on its rx
 * address; a /32 route sends replies to rank K-1's rx address back over
 * link K-1, because a connection bound to that address leaves through tx.
 */
#define BENCH_RING_MAX	8

struct bench_ring {
	int n;
	const char *tool;
	char ns[BENCH_RING_MAX][48];
	char rx_addr[BENCH_RING_MAX][16], tx_addr[BENCH_RING_MAX][16];
	int nsfd[BENCH_RING_MAX];
	int orig_nsfd;
	struct netns_guard guard[BENCH_RING_MAX];	/* one per link; forks close all */
};

#define BENCH_RING_RX_IF	"pbr-rx"
#define BENCH_RING_TX_IF	"pbr-tx"

int bench_ring_setup(struct bench_ring *r, const char *tool, int n);
void bench_ring_teardown(struct bench_ring *r);

/* Is this the patched-kernel VM with netdevsim? */
bool bench_in_vm(void);

#endif /* BENCH_NETNS_H */
