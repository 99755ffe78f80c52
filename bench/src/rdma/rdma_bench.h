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
 * Verbs calls go through the libibverbs copy that libgpudirect loaded
 * (verbs.c), never a link-time dependency: like the library, gpud-rxbench
 * runs on a host without rdma-core, and needs only its headers to build.
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

/* ---- the exported libibverbs functions we call (verbs.c) ---- */

struct rxb_verbs {
	struct ibv_comp_channel *(*create_comp_channel)(struct ibv_context *);
	int (*destroy_comp_channel)(struct ibv_comp_channel *);
	struct ibv_cq *(*create_cq)(struct ibv_context *, int, void *, struct ibv_comp_channel *,
				    int);
	int (*destroy_cq)(struct ibv_cq *);
	struct ibv_qp *(*create_qp)(struct ibv_pd *, struct ibv_qp_init_attr *);
	int (*destroy_qp)(struct ibv_qp *);
	int (*modify_qp)(struct ibv_qp *, struct ibv_qp_attr *, int);
	int (*query_port)(struct ibv_context *, uint8_t, struct _compat_ibv_port_attr *);
	int (*query_gid)(struct ibv_context *, uint8_t, int, union ibv_gid *);
	int (*get_cq_event)(struct ibv_comp_channel *, struct ibv_cq **, void **);
	void (*ack_cq_events)(struct ibv_cq *, unsigned int);
	const char *(*wc_status_str)(enum ibv_wc_status);
	/* optional (rdma-core 32+): tells RoCE v1 from v2 GIDs */
	int (*query_gid_ex)(struct ibv_context *, uint32_t, uint32_t, struct ibv_gid_entry *,
			    uint32_t, size_t);
};

/*
 * The table, resolved once from the libibverbs libgpudirect has loaded
 * (call after a successful gpud_rdma_dev_open). 0, or -errno with @why.
 */
int rxb_verbs_get(const struct rxb_verbs **out, char *why, size_t len);

/* ---- one queue pair with its CQ and completion channel (verbs.c) ---- */

struct rxb_qp {
	const struct rxb_verbs *v;
	struct ibv_context *ctx;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_port_attr port;	/* port 1 */
	union ibv_gid gid;
	int gid_idx;
	bool grh;			/* RoCE, or IB with a GRH */
	unsigned int depth;		/* send and receive queue depth */
};

/* Port 1's state: 0, or -errno with the reason (down, no GID) in @why. */
int rxb_port_check(const struct rxb_verbs *v, struct gpud_rdma_dev *dev, char *why, size_t len);
/*
 * CQ (with a completion channel) and an RC QP in INIT on @dev, @depth deep,
 * its GID chosen for side channel @sk (see pick_gid); @gid_want >= 0 forces
 * an index. 0, or -errno with @why.
 */
int rxb_qp_create(struct rxb_qp *q, struct gpud_rdma_dev *dev, unsigned int depth, int sk,
		  int gid_want, char *why, size_t len);
/* INIT -> RTR -> RTS towards the peer's HELLO. 0, or -errno with @why. */
struct rxb_hello;
int rxb_qp_connect(struct rxb_qp *q, const struct rxb_hello *peer, uint32_t my_psn, char *why,
		   size_t len);
/* QP, CQ, channel. Safe on a partly created (or zeroed) one. */
void rxb_qp_destroy(struct rxb_qp *q);
/*
 * Sleeps until the CQ has an event or @sk is readable, at most @ms. The
 * caller armed the CQ (ibv_req_notify_cq) and polled it empty afterwards,
 * so no completion slips between the two. Returns 1 when it consumed (and
 * acked) a CQ event, 0 otherwise, -errno on failure.
 */
int rxb_qp_wait(struct rxb_qp *q, int sk, int ms);
/* MTU enum -> bytes. */
unsigned int rxb_mtu_bytes(enum ibv_mtu m);

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
struct rxb_hello {
	uint32_t qpn;
	uint32_t psn;
	uint32_t lid;
	uint32_t mtu;		/* enum ibv_mtu: the port's active MTU */
	uint32_t grh;		/* the sender of this HELLO routes with a GRH */
	uint8_t gid[16];
};

struct rxb_region {
	uint64_t addr;		/* iova of slot 0 */
	uint32_t rkey;
	uint32_t slot;		/* bytes per write */
	uint32_t nslots;
};

struct rxb_msg {
	enum rxb_wire_type type;
	union {
		struct rxb_hello hello;
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
	const struct rxb_verbs *v;
	size_t slice;			/* bytes of mem per flow */
	uint32_t slot;
	uint32_t nslots;
	struct rxb_rdma_info info;	/* run-wide part */
};

#endif /* RXB_RDMA_BENCH_H */
