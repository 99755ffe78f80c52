/* SPDX-License-Identifier: MIT */
/*
 * Devmem TCP test fixture for the patched-kernel VM, shared by
 * rx_devmem_e2e and the fault tests in kernel-patches/tests/: a netdevsim
 * pair (T_LINK_NSIM) whose side a steers one TCP flow to a queue and binds a
 * dma-buf to it, a pattern sender in side b, fragment checks, and the checks
 * that the kernel let go of everything afterwards. Links gpudirect.
 *
 * Side a (namespace np.ns[0], address np.addr[0]) receives on port @port,
 * RX queue @rxq; side b sends.
 */
#ifndef GPUD_DEVMEM_TEST_H
#define GPUD_DEVMEM_TEST_H

#include "gpud_test.h"

#include <gpudirect/gpudirect.h>

#include <sys/types.h>

struct t_devmem {
	struct t_netpair np;
	unsigned int rxq;	/* the bound RX queue of side a */
	uint16_t port;		/* TCP port the flow goes to, host order */
	struct gpud_nic *nic;	/* side a, configured by t_devmem_nic_setup() */
	int ifindex;		/* of side a's port, in namespace a */
	struct gpud_mem *mem;	/* the dma-buf's memory, t_devmem_mem_create() */
	uint32_t dmabuf_id;	/* last binding's id, kept after it is freed */
};

/* Netdevsim pair, fields set; skips outside the VM. The caller stays in the
 * namespace it was in.
 */
void t_devmem_setup(struct t_devmem *d, unsigned int rxq, uint16_t port);

/*
 * In the calling thread's namespace (side a): header split on (skips when the
 * VM kernel has no header split unless GPUD_REQUIRE_DEVMEM=1), RSS kept off
 * queues >= rxq, an n-tuple rule sending addr[0]:port to rxq.
 */
void t_devmem_nic_setup(struct t_devmem *d);

/* @size bytes of GPUD_E2E_MEM (default "host") memory, exported. */
void t_devmem_mem_create(struct t_devmem *d, size_t size);

/* Binds d->mem to d->rxq of d->ifindex; checks the queue and its pool. */
struct gpud_binding *t_devmem_bind(struct t_devmem *d);

/* Listening socket on addr[0]:port in the calling thread's namespace. */
int t_devmem_listen(const struct t_devmem *d);

/*
 * Forks a sender: pinned to CPU 1 (its CPU runs the receiving NAPI, see
 * t_pin_cpu()), in namespace b, it connects to addr[0]:port and sends @total
 * bytes of pattern @seed (UINT64_MAX: until an error). It closes every other
 * fd it inherited (a binding's netlink socket among them). Exit status 0 when
 * all was sent, 3 when it could not connect, 4 on a send error.
 */
pid_t t_devmem_sender(struct t_devmem *d, uint64_t seed, uint64_t total);

/* Checks @f (stream offset @off) against pattern @seed, byte for byte. */
void t_devmem_check_frag(struct gpud_rx *rx, struct gpud_mem *bound,
			 const struct gpud_frag *f, uint64_t seed, uint64_t off);

/*
 * One gpud_rx_recv() of up to @max fragments with @flags, each checked and
 * counted in *off. Returns what gpud_rx_recv() returned.
 */
int t_devmem_recv(struct gpud_rx *rx, struct gpud_mem *bound, struct gpud_frag *f,
		  size_t max, int flags, uint64_t seed, uint64_t *off);

/*
 * Receives, checks and releases until EOF, continuing the stream at offset
 * @off; fails on an error. Returns the offset reached.
 */
uint64_t t_devmem_recv_to_eof(struct gpud_rx *rx, struct gpud_mem *bound, uint64_t seed,
			      uint64_t off);

/* The page pools (any device if @ifindex is 0) of dma-buf @id visible in
 * the calling thread's namespace: how many, and their inflight sum.
 */
int t_devmem_pools(int ifindex, uint32_t id, uint64_t *inflight);

/* Devices attached to the dma-buf behind @fd (debugfs dma_buf/bufinfo), or
 * -errno (-ENOENT: debugfs not there).
 */
int t_dmabuf_attachments(int fd);

/*
 * Waits up to @timeout_s, flushing the CPUs' deferred skb lists before each
 * look, until no page pool of dma-buf @id is visible with net_iovs in flight
 * in the calling thread's namespace and no device is attached to d->mem's
 * dma-buf any more (the kernel freed the binding: every net_iov came back).
 * Fails naming what is still held. Logs how long it took.
 */
void t_devmem_wait_released(const struct t_devmem *d, uint32_t id, double timeout_s);

/*
 * Ends a receive as an application would: frees @rx (outstanding tokens go
 * back), closes the connection and the listener, unbinds, then
 * t_devmem_wait_released() and restores the NIC (gpud_nic_free()).
 */
void t_devmem_close(struct t_devmem *d, struct gpud_rx *rx, int cfd, int lfd,
		    struct gpud_binding *b, double timeout_s);

/* rx_dropped of side a's port (ip -s link). */
long long t_devmem_rx_dropped(const struct t_devmem *d);

#endif /* GPUD_DEVMEM_TEST_H */
