/* SPDX-License-Identifier: MIT */
/*
 * libnccl-net-devmem, layer 3 (engine): a comm's sockets, striping and
 * progress — comm.c (isend/irecv/test over the control socket), stripe.c,
 * progress.c (the progress threads), ctrl.c (the wire format). Includes
 * base/, gpu/ and placement/ only.
 *
 * Threads: NCCL calls one comm from one proxy thread at a time, but we do not
 * rely on it: every comm entry point takes comm->api_lock. Data sockets are
 * driven by a small pool of progress threads (progress.c); a socket's task
 * queue is the only state both sides touch, under sock->lock.
 */
#ifndef DM_ENGINE_H
#define DM_ENGINE_H

#include "base/base.h"
#include "placement/placement.h"
#include "engine/ctrl.h"

/* Messages up to this size are not striped: one chunk on one socket (stripe.c). */
#define DM_ONE_SOCK_MAX (2 * DM_MIN_CHUNK)
/*
 * Messages up to this size (one chunk on one socket, unless
 * NCCL_DEVMEM_CHUNK_SIZE is smaller) are moved by the API thread itself: handing them to a progress thread costs a wake-up and two
 * context switches per message, several times the copy, and far more on a
 * loaded machine where the worker waits for a core.
 */
#define DM_INLINE_MAX DM_ONE_SOCK_MAX

/* ---- striping (stripe.c): identical on both ends, so no per-chunk headers ---- */
uint64_t dm_stripe_chunk(uint64_t size, unsigned nsocks, uint32_t max_chunk);
uint64_t dm_stripe_nchunks(uint64_t size, uint64_t chunk);

/* ---- comms (comm.c) ---- */
int dm_comm_create(bool is_recv, int dev, int ctrl_fd, const int *data_fds, int nsocks,
		   uint32_t max_chunk, struct dm_comm **out);
void dm_comm_destroy(struct dm_comm *c);
/* deregMr: returns once no progress thread can touch @mr or its memory. */
void dm_comm_quiesce_mr(struct dm_comm *c, struct dm_mr *mr);
int dm_comm_isend(struct dm_comm *c, void *data, uint64_t size, int tag, struct dm_mr *mr,
		  struct dm_req **out);
/*
 * @optional: NCCL preset *request to NCCL_NET_OPTIONAL_RECV_COMPLETION (an
 * LL/LL128 receive, which NCCL's device unpack never reads): with device
 * unpack the plugin places its bytes itself.
 */
int dm_comm_irecv(struct dm_comm *c, int n, void **data, const uint64_t *sizes,
		  const int *tags, struct dm_mr **mrs, bool optional, struct dm_req **out);
/* NCCL's kernel is done with @r's data: its tokens and slot go back. */
int dm_comm_irecv_consumed(struct dm_comm *c, int n, struct dm_req *r);
int dm_comm_iflush(struct dm_comm *c, struct dm_req **out);
int dm_req_test(struct dm_req *r, int *done, int *sizes);

/* ---- progress threads (progress.c) ---- */
int dm_progress_get(void);		/* start the pool on first use (refcounted) */
void dm_progress_put(void);
void dm_progress_attach(struct dm_sock *s);
void dm_progress_detach(struct dm_sock *s);	/* returns once no thread touches s */
void dm_progress_barrier(struct dm_sock *s);	/* returns once s's current pass (if any) ended */
/*
 * API thread, api_lock held: moves the socket's small host-memory tasks
 * itself if no worker is busy with the socket; @kick: wake the worker for
 * what it could not finish (a task's first attempt). Retries from test() do
 * not kick: the worker was woken when the task was queued, and it (epoll
 * edge) or the next test() moves the bytes when they come.
 */
void dm_progress_inline(struct dm_sock *s, bool kick);
void dm_sock_enqueue(struct dm_sock *s, struct dm_task *t);
uint64_t dm_now_ms(void);

/*
 * What EFAULT from a plain recv() means here: the kernel delivered the flow's
 * payload into a devmem-bound queue's dma-buf, which recv() cannot copy from.
 * Only a steering mistake puts a non-devmem flow there.
 */
#define DM_EFAULT_WHY(flow)                                                                \
	flow "'s packets landed on a devmem-bound RX queue (RSS or an n-tuple rule sent "  \
	"them there), so its payload is in device memory recv() cannot read; bound queues " \
	"must carry only steered data flows (check NCCL_DEVMEM_QUEUES, ethtool -x/-n IF)"

#endif /* DM_ENGINE_H */
