/* SPDX-License-Identifier: MIT */
/*
 * Shared setup for the devmem recycling tests (recycle_*.c), inside the
 * patched-kernel VM: a linked netdevsim pair (namespace a receives on nsim0,
 * namespace b sends), header split on, RSS kept on queue 0, an n-tuple rule
 * steering dst 198.18.0.1:PORT to queue RC_RXQ, host memory exported through
 * udmabuf and bound to that queue, a listener, and a sender process that
 * opens N flows (source port RC_SPORT_BASE + i, pattern seed SEED + i).
 *
 * Each test adds one hazard on top (a packet tap, netem, a tiny receive
 * buffer, token storms), receives, and ends with rc_check_closed() (the
 * bound pool's inflight back to 0 once the sockets are gone) and
 * rc_teardown() (unbind; the devmem pool destroyed). vm-run.sh fails the run
 * on any WARN/BUG/lockdep/leak line in the guest's log.
 */
#ifndef RECYCLE_COMMON_H
#define RECYCLE_COMMON_H

#include "gpud_devmem_test.h"

#include <sys/types.h>

#define RC_RXQ 1
#define RC_SPORT_BASE 41000
/*
 * What the bound queue's page pool may keep cached while bound: its ptr_ring
 * (netdevsim's pool_size, NSIM_RING_SIZE 256) plus the alloc cache
 * (PP_ALLOC_CACHE_SIZE 128), 6.12.
 */
#define RC_POOL_CACHE (256 + 128)

/* The shared devmem fixture (tests/common/gpud_devmem_test.h), bound. */
struct rc_env {
	struct t_devmem d;	/* pair, NIC (side a), memory, dmabuf_id */
	struct gpud_binding *b;
	int lfd;
};

struct rc_send {
	int nflows;		/* connections, each from its own child */
	uint64_t bytes;		/* per flow */
	uint64_t seed;		/* flow i sends the pattern of seed + i */
	size_t chunk;		/* bytes per send() (default 256 KiB) */
	int first_flow;		/* index of flow 0: later runs take new ports */
};

/* Everything up to the listener; the calling thread ends up in namespace a. */
void rc_setup(struct rc_env *e, uint16_t port, size_t mem_size);
/*
 * Forks the sender (namespace b); returns its pid for rc_sender_wait(). Flow
 * i has index first_flow + i: source port RC_SPORT_BASE + index, pattern
 * seed + index (a closed flow's port stays in TIME_WAIT on the sender).
 */
pid_t rc_sender_start(struct rc_env *e, const struct rc_send *s);
/* Fails the test unless the sender and all its flows exited 0. */
void rc_sender_wait(pid_t pid);
/* Accepts one flow; *flow = its index (from the peer's source port). */
int rc_accept(struct rc_env *e, int *flow);

/* Checks @len bytes at @off of the bound memory against stream @seed at @pos. */
void rc_check_mem(struct gpud_mem *m, uint64_t off, uint32_t len, uint64_t seed, uint64_t pos);

/* Receive one flow with libgpudirect (DEVMEM mode), validating every byte. */
struct rc_recv {
	size_t max_frags;	/* per gpud_rx_recv (default 256) */
	unsigned int delay_us;	/* sleep before each recv: a slow reader */
	size_t copy_chunk;	/* gpud_rx_opts.copy_chunk (0: default) */
	/* Called before each recv with the socket and the call count. */
	void (*each)(int fd, unsigned long calls);
};
uint64_t rc_recv_flow(struct rc_env *e, int fd, uint64_t seed, const struct rc_recv *r,
		      struct gpud_rx_stats *st);
/* Logs a stats line: "@what: N bytes in T s, F fragments, ..." */
void rc_log_stats(const char *what, const struct gpud_rx_stats *st, double secs);

/* After every devmem socket is closed: inflight back into the pool (<= RC_POOL_CACHE). */
void rc_check_closed(struct rc_env *e);
/* Unbind; the devmem pool must be destroyed. Restores the NIC, frees all. */
void rc_teardown(struct rc_env *e);

/* A counter of /proc/net/netstat or /proc/net/snmp ("TcpExt", "PruneCalled"). */
long long rc_netstat(const char *group, const char *name);
/* TcpExt counters @names[0..n) into @vals (the calling thread's namespace). */
void rc_tcpext_snap(const char *const *names, size_t n, long long *vals);
/* @vals becomes the change since the snapshot in it; logs "NAME delta" pairs. */
void rc_tcpext_delta(const char *const *names, size_t n, long long *vals);

#endif /* RECYCLE_COMMON_H */
