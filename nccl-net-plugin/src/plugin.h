/* SPDX-License-Identifier: MIT */
/*
 * libnccl-net-devmem internals. The ABI edge (net.c, abi_v*.c) speaks
 * ncclResult_t; everything below it returns 0 or -errno and logs why.
 *
 * Threads: NCCL calls one comm from one proxy thread at a time, but we do not
 * rely on it: every comm entry point takes comm->api_lock. Data sockets are
 * driven by a small pool of progress threads (progress.c); a socket's task
 * queue is the only state both sides touch, under sock->lock.
 */
#ifndef DM_PLUGIN_H
#define DM_PLUGIN_H

#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ncclnet/net.h"
#include "ctrl.h"

#define DM_NAME "devmem"
#define DM_MAX_DEVS 16			/* interfaces (physical devices) */
#define DM_MAX_VDEVS 16			/* fused devices makeVDevice may add */
/* devices one fused NIC may hold: v12's NCCL_NET_MAX_DEVS_PER_NIC (v9..v11 have 4) */
#define DM_MAX_MEMBERS NCCL_NET_MAX_DEVS_PER_NIC_V12
#define DM_MAX_SOCKS 16
#define DM_MAX_RECVS 8			/* maxRecvs: subs in one multi-receive */
#define DM_MAX_REQS NCCL_NET_MAX_REQUESTS
#define DM_MIN_CHUNK (64u << 10)	/* below this striping costs more than it gains */
/* Messages up to this size are not striped: one chunk on one socket (stripe.c). */
#define DM_ONE_SOCK_MAX (2 * DM_MIN_CHUNK)
/*
 * Messages up to this size (one chunk on one socket, unless
 * NCCL_DEVMEM_CHUNK_SIZE is smaller) are moved by the API thread itself: handing them to a progress thread costs a wake-up and two
 * context switches per message, several times the copy, and far more on a
 * loaded machine where the worker waits for a core.
 */
#define DM_INLINE_MAX DM_ONE_SOCK_MAX

#define DM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DM_DIV_ROUND_UP(a, b) (((a) + (b) - 1) / (b))

/* ---- logging (log.c) ---- */
void dm_log_set(ncclDebugLogger_t fn);
void dm_log(ncclDebugLogLevel level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define DM_WARN(...) dm_log(NCCL_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define DM_INFO(...) dm_log(NCCL_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define DM_TRACE(...) dm_log(NCCL_LOG_TRACE, __FILE__, __LINE__, __VA_ARGS__)
/* -errno (or a plugin code below) → ncclResult_t at the ABI edge */
ncclResult_t dm_result(int err);
/* Errors that mean "the other side did something wrong", not our system. */
#define DM_EREMOTE 100000
double dm_now(void);

/* ---- addresses (addr.c): IPv4 and IPv6 alike ---- */
union dm_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};
socklen_t dm_addr_len(const union dm_addr *a);
uint16_t dm_addr_port(const union dm_addr *a);
void dm_addr_set_port(union dm_addr *a, uint16_t port);
/* @family's address from @bytes (4 or 16, network order) and @port (host order). */
void dm_addr_set(union dm_addr *a, int family, const uint8_t *bytes, uint16_t port);
const void *dm_addr_bytes(const union dm_addr *a, size_t *len);
bool dm_addr_same_host(const union dm_addr *a, const union dm_addr *b);
void dm_addr_str(const union dm_addr *a, char *buf, size_t len);
const char *dm_family_name(int family);

/* ---- configuration (env.c) ---- */
enum dm_mode { DM_MODE_AUTO = 0, DM_MODE_DEVMEM = 1, DM_MODE_COPY = 2 };
/* Who copies devmem fragments into NCCL's buffer (NCCL_DEVMEM_UNPACK). */
enum dm_unpack {
	DM_UNPACK_PLUGIN = 0,	/* we do (memcpy, or our CUDA kernel), before test() says done */
	DM_UNPACK_NCCL = 1,	/* NCCL's kernels do, from metadata we publish (devq.c) */
};

struct dm_config {
	char ifname[256];	/* NCCL_DEVMEM_IFNAME, comma list, "" = auto */
	int family;		/* NCCL_DEVMEM_FAMILY: AF_INET, AF_INET6, AF_UNSPEC = per interface */
	char queues[64];	/* NCCL_DEVMEM_QUEUES, e.g. "15" or "12-15" */
	int nsocks;		/* NCCL_DEVMEM_NSOCKS */
	int nthreads;		/* NCCL_DEVMEM_NTHREADS */
	enum dm_mode mode;	/* NCCL_DEVMEM_MODE */
	uint64_t pool_size;	/* NCCL_DEVMEM_POOL_SIZE */
	uint32_t chunk;		/* NCCL_DEVMEM_CHUNK_SIZE */
	int timeout_ms;		/* NCCL_DEVMEM_TIMEOUT_MS */
	enum dm_unpack unpack;	/* NCCL_DEVMEM_UNPACK */
	int unpack_hold;	/* NCCL_DEVMEM_UNPACK_HOLD: % of the pool NCCL's kernel may hold */
	char pool_mem[32];	/* NCCL_DEVMEM_POOL_MEM: "auto", "host", "cuda", "cuda:N" */
	bool test_emulate;	/* NCCL_DEVMEM_TEST_EMULATE: tests only (emu.c) */
};
extern struct dm_config dm_cfg;	/* written once in dm_global_init under its lock */
void dm_config_load(struct dm_config *cfg);
const char *dm_mode_name(enum dm_mode m);
const char *dm_unpack_name(enum dm_unpack u);
int dm_parse_size(const char *s, uint64_t *out);

/* ---- devices (props.c) ---- */
/*
 * An interface, or a fused device (makeVDevice) over up to DM_MAX_MEMBERS of
 * them: a comm on it stripes its data sockets over the members' links.
 */
struct dm_dev {
	char name[DM_MAX_MEMBERS * (IF_NAMESIZE + 1)];	/* "eth0", fused "eth0+eth1" */
	char pci_path[256];
	uint64_t guid;
	int speed_mbps;
	int ifindex;
	union dm_addr addr;		/* address we listen on / bind to (port 0) */
	int nmembers;			/* 1 for an interface */
	int members[DM_MAX_MEMBERS];	/* interface devices; [0] = itself for an interface */
};
int dm_devs_scan(const char *iflist, int family, struct dm_dev *devs, int max);
int dm_ndevs(void);
const struct dm_dev *dm_dev_get(int dev);
/* Member @i's interface of @dev (a fused device's members in turn, an interface itself). */
const struct dm_dev *dm_dev_member(int dev, int i);
void dm_props_fill(int dev, ncclNetProperties_v12_t *props);

/* ---- CUDA: the driver and the data path's GPU engine (gpu.h) ---- */
struct dm_gpu;
struct dm_lane;
struct dm_slot;

/* ---- memory registration (mr.c) ---- */
struct dm_mr {
	int type;		/* NCCL_PTR_HOST or NCCL_PTR_CUDA */
	char *base;
	size_t size;
	void *cuctx;		/* CUDA context owning base (CUDA only) */
	int dmabuf_fd;		/* -1 unless regMrDmaBuf; not owned */
};
int dm_mr_reg(void *data, size_t size, int type, int fd, struct dm_mr **out);
void dm_mr_dereg(struct dm_mr *mr);

/* ---- striping (stripe.c): identical on both ends, so no per-chunk headers ---- */
uint64_t dm_stripe_chunk(uint64_t size, unsigned nsocks, uint32_t max_chunk);
uint64_t dm_stripe_nchunks(uint64_t size, uint64_t chunk);

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
 * regMr of a CUDA buffer, or a devmem comm whose pool is GPU memory: the
 * comm's engine in @cuctx and a lane per data socket (API thread, setup).
 * A comm serves one context; another is -EINVAL with a WARN.
 */
int dm_comm_gpu_attach(struct dm_comm *c, void *cuctx);
int dm_comm_create(bool is_recv, int dev, int ctrl_fd, const int *data_fds, int nsocks,
		   uint32_t max_chunk, struct dm_comm **out);
void dm_comm_destroy(struct dm_comm *c);
/* deregMr: returns once no progress thread can touch @mr or its memory. */
void dm_comm_quiesce_mr(struct dm_comm *c, struct dm_mr *mr);
/* Records the comm's first error (logged once, WARN) and returns @err. */
int dm_comm_fail(struct dm_comm *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
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
void dm_progress_kick(struct dm_sock *s);
/* Another thread's turn at s's bytes (held: no worker or API move runs); unlock kicks the worker. */
void dm_sock_io_lock(struct dm_sock *s);
void dm_sock_io_unlock(struct dm_sock *s);
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

/* ---- connections (conn.c) ---- */
#define DM_HANDLE_MAGIC 0x444d4e48u	/* "DMNH" */
struct dm_connect_state;
struct dm_handle {
	uint32_t magic;
	uint16_t version;		/* DM_PROTO_VERSION */
	uint16_t nsocks;		/* data sockets the listener expects */
	union dm_addr addr;		/* control listener (member 0), network byte order */
	uint32_t max_chunk;		/* striping chunk the listener uses */
	uint32_t flags;
	uint64_t secret;		/* from getrandom(); proves the peer got the handle */
	/* connector-local: NCCL hands the same handle to every connect() call */
	struct dm_connect_state *stage;
	uint8_t reserved[32];
};
_Static_assert(sizeof(struct dm_handle) <= NCCL_NET_HANDLE_MAXSIZE,
	       "listen handle must fit in NCCL_NET_HANDLE_MAXSIZE");

struct dm_listen;
int dm_listen(int dev, struct dm_handle *h, struct dm_listen **out);
int dm_accept(struct dm_listen *l, struct dm_comm **out);
void dm_listen_close(struct dm_listen *l);
/* NCCL's traffic class (NCCL_NET_TRAFFIC_CLASS_UNDEF: leave the default). */
void dm_listen_set_tclass(struct dm_listen *l, int tclass);
int dm_listen_tclass(const struct dm_listen *l);
/* Applies @tclass (IP_TOS, IPV6_TCLASS) to every socket of @c; UNDEF does nothing. */
void dm_comm_set_tclass(struct dm_comm *c, int tclass);
int dm_connect(int dev, struct dm_handle *h, struct dm_comm **out);

/*
 * What EFAULT from a plain recv() means here: the kernel delivered the flow's
 * payload into a devmem-bound queue's dma-buf, which recv() cannot copy from.
 * Only a steering mistake puts a non-devmem flow there.
 */
#define DM_EFAULT_WHY(flow)                                                                \
	flow "'s packets landed on a devmem-bound RX queue (RSS or an n-tuple rule sent "  \
	"them there), so its payload is in device memory recv() cannot read; bound queues " \
	"must carry only steered data flows (check NCCL_DEVMEM_QUEUES, ethtool -x/-n IF)"

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

/* ---- devmem pool choice (pool.c): NCCL_DEVMEM_POOL_MEM ---- */
struct dm_pool_choice {
	int kind;		/* enum gpud_mem_kind: GPUD_MEM_HOST or GPUD_MEM_CUDA */
	int device;		/* CUDA device */
	char why[320];		/* the choice and its reason, or the error and its fix */
};
/* What the choice is made from, gathered by the caller (devmem.c). */
struct dm_pool_facts {
	bool cuda_ok;		/* the plugin can drive CUDA (dm_cuda_available()) */
	const char *cuda_why;	/* if not, why */
	int probe;		/* gpud_mem_probe(GPUD_MEM_CUDA, device): 0 or -errno */
	const char *probe_why;	/* its text */
	int cur_device;		/* device of the caller's current CUDA context, -1 if none */
};
/*
 * Parses @spec ("auto", "host", "cuda", "cuda:N"; "" = auto) and decides.
 * 0 with the choice; -EINVAL for a spec it cannot read; -ENODEV (or the
 * probe's error) when cuda was demanded and cannot work, with why naming the
 * fix. Pure: no I/O, no globals.
 */
int dm_pool_choose(const char *spec, const struct dm_pool_facts *f, struct dm_pool_choice *out);
/* Device dm_pool_choose() will probe for @spec (cuda:N, else the current context's, else 0). */
int dm_pool_device(const char *spec, int cur_device);
/* ---- global state (net.c) ---- */
int dm_global_init(ncclDebugLogger_t logger);

#endif /* DM_PLUGIN_H */
