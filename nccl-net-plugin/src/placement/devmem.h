/* SPDX-License-Identifier: MIT */
/*
 * Devmem internals shared by devmem.c (device and socket setup),
 * devmem_place.c (fragments into NCCL buffers, token return) and
 * unpack_nccl.c (NCCL's device-side unpack).
 */
#ifndef DM_DEVMEM_H
#define DM_DEVMEM_H

#include "placement/placement.h"

#include <gpudirect/gpudirect.h>

#define DM_MAX_QUEUES 16
#define DM_FRAG_BATCH 64

/* One NIC of a devmem device: its queues, and its part of the device's pool bound to them. */
struct dm_devmem_nic {
	struct gpud_nic *nic;
	struct gpud_binding *binding;
	struct gpud_mem *slice;		/* fused: its own part of the pool (NULL: the whole pool) */
	uint64_t slice_off;		/* where that part starts in the pool */
	unsigned int queues[DM_MAX_QUEUES];
	int nqueues;
	unsigned int next_queue;
};

/*
 * Per device (an interface, or a fused device over several), while any
 * devmem recv comm lives; fields under dm_devmem_lock. A fused device has
 * one pool, each member NIC bound to a disjoint slice of it (devmem.c says
 * why), so that every fragment of its comms is an offset in one memory.
 */
struct dm_devmem_dev {
	bool failed;		/* setup failed once: not retried, the reason is kept */
	int err;
	int users;		/* devmem recv comms holding nics/pool/bindings */
	char why[320];
	struct gpud_mem *pool;
	struct dm_devmem_nic nics[DM_MAX_MEMBERS];	/* [i]: member i (an interface: [0]) */
	int nnics;
	/* the pool as the data path sees it; constant while users > 0 */
	enum gpud_mem_kind pool_kind;
	char *pool_host;	/* CPU address, NULL for GPU memory */
	uint64_t pool_dev;	/* device address of GPU memory, else 0 */
	void *pool_ctx;		/* CUDA context of GPU memory */
	size_t pool_size;
	/* where NCCL's unpack kernel reads the pool (0 until a comm asks) */
	uint64_t bounce;
	bool registered;	/* host pool pinned into the GPU for that */
	atomic_bool dtoh_logged;
	/*
	 * Fragments whose tokens wait for NCCL's kernel, across the device's
	 * comms, and the most they may be (NCCL_DEVMEM_UNPACK_HOLD of the
	 * pool's pages): past it, pieces are copied by the plugin and their
	 * tokens go back at once, so unconsumed receives can never hold the
	 * whole pool while the receive NCCL waits for still needs buffers.
	 */
	atomic_uint held;
	unsigned int held_max;
	atomic_bool held_logged;
};

extern pthread_mutex_t dm_devmem_lock;
struct dm_devmem_dev *dm_devmem_dev(int dev);

/*
 * A fragment the socket received and has not given back, in stream order.
 * refs counts pieces of it published to NCCL's unpack and not yet consumed.
 */
struct dm_held {
	struct gpud_frag f;
	uint32_t refs;		/* counted in dm_devmem_dev.held while > 0 */
	bool released;
};

/*
 * One data socket's devmem receive. Fragments sit in a ring addressed by
 * stream sequence number: [head, next) are placed in full (their bytes all
 * assigned to receives), next has next_off bytes placed, [next, tail) wait.
 * A placed fragment goes back to the kernel once nothing refers to it. Used
 * under the socket's io lock only.
 */
struct dm_devmem_rx {
	struct gpud_rx *rx;
	int nic;		/* the dm_devmem_dev.nics[] its flow arrives on and is steered by */
	uint64_t pool_off;	/* that NIC's slice_off: the kernel's offsets are in the slice */
	uint32_t rule;
	bool has_rule;
	struct dm_held *ring;	/* power-of-two capacity */
	uint64_t cap;
	uint64_t head, next, tail;
	uint32_t next_off;
	/* the socket's GPU lane (NULL without one): its copies in flight pin fragments */
	struct dm_lane *lane;
};

/* A piece's tag in the metadata: which socket, which fragment. */
#define DM_REF(sock, seq) (((uint64_t)(sock) << 56) | (seq))
#define DM_REF_SOCK(ref) ((int)((ref) >> 56))
#define DM_REF_SEQ(ref) ((ref) & ((1ull << 56) - 1))

static inline struct dm_held *dm_held_at(const struct dm_devmem_rx *r, uint64_t seq)
{
	return &r->ring[seq & (r->cap - 1)];
}

/*
 * Gives back the placed, unreferenced fragments from @from up to r->next (or
 * to the first one a GPU copy in flight still reads) and drops them from the
 * ring's head. 0 or the library's error.
 */
int dm_held_release(struct dm_devmem_rx *r, uint64_t from);
/* Frees the ring; fragments still referenced leave the device's held count. */
void dm_held_free(struct dm_devmem_dev *d, struct dm_devmem_rx *r);

#endif /* DM_DEVMEM_H */
