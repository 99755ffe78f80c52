/* SPDX-License-Identifier: MIT */
/*
 * The RDMA WRITE baseline, private to bench/src/rdma/.
 *
 * One RC queue pair per flow. The flow's TCP connection is the side channel:
 * HELLO both ways (QPN, PSN, GID, LID, MTU), then the receiver's REGION (the
 * flow's slice of the registered buffer: address, rkey, slot size, slots).
 * The sender writes the flow's pattern stream slot by slot into that ring
 * with RDMA WRITE WITH IMMEDIATE (immediate = the write's sequence number),
 * so each write also completes a receive on the receiver: it learns what
 * landed where, reads it back from the buffer when validating, and returns
 * the slot as a CREDIT. The receiver ends a timed run with STOP; the sender
 * ends with DONE (what it wrote) after its last completion.
 *
 * Queue pairs are the library's (gpud_rdma_qp: creation, GID choice, the
 * INIT -> RTR -> RTS bring-up); posting and polling are verbs.h's inlines,
 * which call through the context's ops of the libibverbs copy libgpudirect
 * loaded, never a link-time dependency: like the library, gpud-rxbench runs
 * on a host without rdma-core, and needs only its headers to build.
 */
#ifndef RXB_RDMA_BENCH_H
#define RXB_RDMA_BENCH_H

#include "rxbench.h"

#include <infiniband/verbs.h>

#define RXB_RDMA_MAX_SLOTS	128	/* ring slots per flow: written, not yet consumed */
/*
 * Writes posted and not yet completed, per queue pair. A few slots cover any
 * NIC's bandwidth-delay product; many more only make soft-RoCE on a slow
 * host retransmit whole windows.
 */
#define RXB_RDMA_WINDOW		16
#define RXB_RDMA_HANDSHAKE_S	20.0	/* the peer's HELLO/REGION (TCG VMs are slow) */
#define RXB_RDMA_END_S		10.0	/* the peer's DONE, once its writes are done */

/* The library's "no usable GID" message, with the flag that overrides its choice. */
static inline const char *rxb_rdma_gid_hint(int err)
{
	return err == -EADDRNOTAVAIL ? " (or pass --rdma-gid N)" : "";
}

/* ---- the side channel (wire.c) ---- */

#define RXB_WIRE_MAGIC		0x67647277u	/* "gdrw" */
#define RXB_WIRE_VERSION	1

enum rxb_wire_type {
	RXB_MSG_HELLO = 1,	/* both ways */
	RXB_MSG_REGION,		/* receiver -> sender */
	RXB_MSG_CREDIT,		/* receiver -> sender: slots free again */
	RXB_MSG_STOP,		/* receiver -> sender: the measured window is over */
	RXB_MSG_DONE,		/* sender -> receiver: all writes completed */
	RXB_MSG_ERROR,		/* either way: why this side gives up */
};

/* Decoded messages; on the wire every integer is little-endian. */
struct rxb_region {
	uint64_t addr;		/* iova of slot 0 */
	uint32_t rkey;
	uint32_t slot;		/* bytes per write */
	uint32_t nslots;
};

struct rxb_msg {
	enum rxb_wire_type type;
	union {
		struct gpud_rdma_ep hello;
		struct rxb_region region;
		uint32_t credits;
		struct {
			uint64_t bytes;
			uint64_t writes;
		} done;
		char error[200];
	} u;
};

int rxb_wire_send(int sk, const struct rxb_msg *m);
/*
 * Receives one message, waiting up to @wait_s (0: only if one is already
 * there; -EAGAIN then). -EPROTO for something that is not our protocol
 * (a TCP sender on an RDMA run's port), -ECONNRESET on EOF.
 */
int rxb_wire_recv(int sk, struct rxb_msg *m, double wait_s);
/* Sends an ERROR with @text; best effort. */
void rxb_wire_error(int sk, const char *text);

/* ---- receiver state kept for all runs (rx.c) ---- */

struct rxb_rdma_rx {
	struct gpud_rdma_dev *dev;
	struct gpud_rdma_mr *mr;
	struct gpud_mem *mem;		/* what the MR covers */
	struct gpud_mem *own_mem;	/* mem, when not the devmem-bound one */
	size_t slice;			/* bytes of mem per flow */
	uint32_t slot;
	uint32_t nslots;
	struct rxb_rdma_info info;	/* run-wide part */
};

#endif /* RXB_RDMA_BENCH_H */
