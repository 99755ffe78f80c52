/* SPDX-License-Identifier: MIT */
/*
 * libnccl-net-devmem, layer 2 (placement): where received bytes go — copy
 * mode (copy.c), devmem fragments (devmem.c, devmem_place.c), NCCL's device
 * unpack (unpack_nccl.c, devq.c), the test-only emulation (emu.c).
 *
 * The comm, its sockets, tasks and requests are defined here, the lowest
 * layer that touches them: the engine above (engine/) queues tasks and runs
 * the steps below; placement fills NCCL's buffers and records a comm's
 * failure (comm_state.c). Includes base/ and gpu/ only.
 */
#ifndef DM_PLACEMENT_H
#define DM_PLACEMENT_H

#include "base/base.h"
#include "gpu/gpu.h"

#define DM_MAX_RECVS 8			/* maxRecvs: subs in one multi-receive */
#define DM_MAX_REQS NCCL_NET_MAX_REQUESTS

/* ---- a registered buffer (api/mr.c registers it) ---- */
struct dm_mr {
	int type;		/* NCCL_PTR_HOST or NCCL_PTR_CUDA */
	char *base;
	size_t size;
	void *cuctx;		/* CUDA context owning base (CUDA only) */
	int dmabuf_fd;		/* -1 unless regMrDmaBuf; not owned */
};

/* ---- comms ---- */
struct dm_comm;
struct dm_req;
struct dm_sock;
struct dm_devmem_rx;

/* One message's share of chunks on one data socket: chunks first, first+step, ... */
struct dm_task {
	struct dm_task *next;
	struct dm_req *req;
	char *base;		/* message start (NCCL buffer) */
	struct dm_mr *mr;
	uint64_t size;		/* whole message */
	uint64_t chunk;
	uint64_t k;		/* current chunk index */
	uint64_t step;		/* = nsocks */
	uint64_t pos;		/* bytes of chunk k already moved */
	bool staged;		/* CUDA send: chunk k's device-to-host copy issued */
	struct dm_slot *slot;	/* CUDA: the lane slot chunk k is staged in */
	uint64_t tag;		/* CUDA: lane commit the task's bytes wait for */
};

struct dm_sock {
	int fd;
	int idx;
	struct dm_comm *comm;
	struct dm_worker *worker;
	pthread_mutex_t lock;		/* guards head/tail */
	pthread_mutex_t io;		/* held by whoever moves bytes: worker or API thread */
	struct dm_task *head, *tail;
	_Atomic uint64_t last_ms;	/* last byte moved or task queued (stall timeout) */
	struct dm_lane *lane;		/* GPU work in flight (comm has a GPU engine) */
	struct dm_devmem_rx *dmrx;	/* devmem receive state, NULL in copy mode */
	bool dead;			/* worker saw an error: no more I/O */
};

/*
 * CONSUME: a receive test() reported done on a comm whose data NCCL's kernel
 * unpacks; it keeps its fragments (tokens) and metadata slot until NCCL
 * calls irecvConsumed with it.
 */
enum dm_req_kind { DM_REQ_FREE = 0, DM_REQ_SEND, DM_REQ_RECV, DM_REQ_FLUSH, DM_REQ_CONSUME };

struct dm_sub {
	char *data;
	uint64_t max;		/* posted size (recv) or message size (send) */
	uint64_t size;		/* actual size */
	int tag;
	bool matched;
	struct dm_mr *mr;
};

struct dm_req {
	struct dm_comm *comm;
	enum dm_req_kind kind;
	uint64_t post_seq;
	int n;
	int nmatched;
	atomic_int tasks_left;
	uint64_t hdr_end;	/* send: done once comm->ctx_sent reaches this */
	int64_t unpack_seq;	/* recv: its device-unpack slot's sequence, -1 for none */
	uint64_t emu_end[DM_MAX_SOCKS];	/* test emulation: pool held until consumed */
	struct dm_sub sub[DM_MAX_RECVS];
	struct dm_task *tasks;	/* DM_MAX_RECVS * nsocks, from the comm */
};

struct dm_devq;

struct dm_comm {
	bool is_recv;
	int dev;
	int ctrl_fd;
	int nsocks;
	uint32_t max_chunk;
	enum dm_mode mode;		/* DEVMEM or COPY: what this comm does */
	char mode_reason[400];
	/* NCCL unpacks this comm's receives on the GPU (device handle given at accept) */
	struct dm_devq *devq;
	bool overflow_logged;
	/* the comm's CUDA context and non-blocking stream, once it touches GPU memory */
	struct dm_gpu *gpu;
	bool gpu_pool;			/* devmem into GPU memory: receives need the GPU */
	struct dm_emu *emu;		/* NCCL_DEVMEM_TEST_EMULATE only (emu.c) */
	pthread_mutex_t api_lock;	/* serialises NCCL entry points on this comm */
	struct dm_sock socks[DM_MAX_SOCKS];
	struct dm_req reqs[DM_MAX_REQS];
	struct dm_task *task_mem;
	uint64_t post_seq;		/* requests posted so far */
	uint64_t msg_seq;		/* messages announced (send) / matched (recv) */
	unsigned stripe_start;		/* socket of the next message's first chunk */
	bool peer_closed;
	char peer[80];			/* "peer ADDR:PORT" of the control connection */
	/* control socket buffers (caller thread only) */
	uint8_t crx[4096];
	size_t crx_len;
	double crx_partial_since;
	uint8_t ctx[4096];
	size_t ctx_len;
	uint64_t ctx_queued;		/* bytes ever queued / sent on ctrl: header flush tracking */
	uint64_t ctx_sent;
	bool err_sent;
	/* first error wins; later calls return it without logging again */
	atomic_int err;
	char errmsg[256];
	pthread_mutex_t err_lock;
};

/*
 * A progress thread (engine/progress.c runs it). Defined here because
 * dm_sock_io_unlock() below wakes the socket's thread through evfd.
 */
struct dm_worker {
	pthread_t th;
	int idx;
	int epfd;
	int evfd;
	pthread_mutex_t mu;	/* held for a whole pass; attach/detach wait on it */
	struct dm_sock **socks;
	int nsocks, cap;
	atomic_bool stop;
};

/* ---- the comm state both the engine and placement touch (comm_state.c) ---- */
/*
 * regMr of a CUDA buffer, or a devmem comm whose pool is GPU memory: the
 * comm's engine in @cuctx and a lane per data socket (API thread, setup).
 * A comm serves one context; another is -EINVAL with a WARN.
 */
int dm_comm_gpu_attach(struct dm_comm *c, void *cuctx);
/* Records the comm's first error (logged once, WARN) and returns @err. */
int dm_comm_fail(struct dm_comm *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Another thread's turn at s's bytes (held: no worker or API move runs); unlock kicks the worker. */
void dm_sock_io_lock(struct dm_sock *s);
void dm_sock_io_unlock(struct dm_sock *s);
void dm_progress_kick(struct dm_sock *s);
/* @s's first queued task, or NULL (takes s->lock). */
static inline struct dm_task *dm_sock_head(struct dm_sock *s)
{
	struct dm_task *t;

	pthread_mutex_lock(&s->lock);
	t = s->head;
	pthread_mutex_unlock(&s->lock);
	return t;
}

/* ---- the steps a progress thread runs on a socket's head task ---- */
/*
 * Worker steps: 1 = task finished, 2 = progressed, 3 = waiting for the GPU
 * (poll again soon: no socket event will come for it), 4 = progressed and
 * the socket has no more for now (a short read or write: the next call
 * would block), 0 = would block on the socket, <0 = -errno (comm failed).
 */
#define DM_STEP_DONE 1
#define DM_STEP_MORE 2
#define DM_STEP_GPU 3
#define DM_STEP_DRAINED 4
int dm_copy_step(struct dm_sock *s, struct dm_task *t);

/* ---- receive mode selection and devmem (devmem.c) ---- */
/* Decides the recv comm's mode (and sets up steering for devmem). */
int dm_devmem_setup_comm(struct dm_comm *c);
void dm_devmem_teardown_comm(struct dm_comm *c);
int dm_devmem_step(struct dm_sock *s, struct dm_task *t);
/*
 * accept() with a device handle from NCCL (type UNPACK): builds the comm's
 * metadata queue and fills the handle. 0, or -errno with a WARN.
 */
int dm_devmem_unpack_attach(struct dm_comm *c, ncclNetDeviceHandle_v12_t *dh);
/* Receive @seq's tokens go back (its entries were consumed) and its slot is freed. */
void dm_devmem_consumed(struct dm_comm *c, int64_t seq);
void dm_devmem_unpack_detach(struct dm_comm *c);

/*
 * ---- test-only devmem emulation (emu.c): NCCL_DEVMEM_TEST_EMULATE=1 ----
 * A copy-mode comm NCCL unpacks lands chunks in a GPU pool of its own and
 * publishes them as devmem fragments, so NCCL's kernel unpacks on a GPU
 * machine without a devmem NIC.
 */
struct dm_emu;
int dm_emu_attach(struct dm_comm *c, uint64_t *bounce);
void dm_emu_detach(struct dm_comm *c);
int dm_emu_step(struct dm_sock *s, struct dm_task *t, uint64_t off, uint64_t len);
void dm_emu_consumed(struct dm_comm *c, struct dm_req *r);

#endif /* DM_PLACEMENT_H */
