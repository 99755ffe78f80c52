/* SPDX-License-Identifier: MIT */
/*
 * gpud-pluginbench internals. Two processes, one per namespace, run the same
 * sweep over message sizes through three transports in turn:
 *   plugin  libnccl-net-devmem.so through ncclNetPlugin_v11, driven the way
 *           NCCL's proxy drives it (listen/connect/accept polling, regMr,
 *           isend/irecv/test)
 *   raw1    plain TCP, one connection per direction
 *   rawN    plain TCP, N connections striped like the plugin's data sockets
 * By default each rank sends to and receives from the other at once, which is
 * what nccl-tests' sendrecv does with two ranks; --oneway sends 1 -> 0 only.
 * Nothing here is installed; the plugin is used only through its ABI table.
 */
#ifndef PLUGINBENCH_H
#define PLUGINBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PB_SCHEMA	"gpud-pluginbench/1"
#define PB_TOOL		"gpud-pluginbench"
#define PB_MAX_SIZES	48
#define PB_MAX_CONNS	16
#define PB_MAX_DEPTH	32
#define PB_TIMEOUT_S	30.0	/* connection setup, and one iteration */

/* Exit codes as gpud-rxbench's: 2 = this host cannot do what was asked. */
#define PB_EXIT_OK	0
#define PB_EXIT_FAIL	1
#define PB_EXIT_USAGE	2

enum pb_mem {
	PB_MEM_HOST,
	PB_MEM_CUDA,
};

enum pb_xport_kind {
	PB_XPORT_PLUGIN,
	PB_XPORT_RAW1,
	PB_XPORT_RAWN,
	PB_NXPORTS,
};

/* --op: none is the two-rank sendrecv sweep against raw_1 and raw_N (coll.h for the rest) */
enum pb_op {
	PB_OP_NONE,
	PB_OP_ALLREDUCE,
	PB_OP_ALLGATHER,
	PB_OP_REDUCESCATTER,
	PB_OP_SENDRECV,
};

struct pb_opts {
	const char *plugin_path;	/* NULL: next to our build tree, then the loader's path */
	uint64_t min_bytes, max_bytes;
	unsigned int factor;		/* size step: x2 (nccl-tests -f 2) or x4 */
	double budget_s;		/* measured time of the whole sweep, all transports */
	unsigned int warmup;		/* warmup iterations, fewer for large sizes */
	unsigned int min_iters;		/* floor per size, above the budget's share */
	unsigned int max_iters;
	unsigned int nsocks;		/* plugin data sockets = rawN connections */
	uint64_t chunk;			/* plugin: bytes per request (0 = whole message) */
	unsigned int depth;		/* plugin: requests in flight per direction */
	bool oneway;
	bool json;
	bool check;
	bool verbose;
	enum pb_mem mem;
	int cuda_dev;
	enum pb_op op;
	unsigned int ranks;		/* --op: 2..8 processes in a ring */
	unsigned int channels;		/* --op: comms per peer and direction */
	unsigned int rounds;		/* --op: alternating plugin/raw rounds per size */
};

int pb_parse_args(int argc, char **argv, struct pb_opts *o);

/* ---- the two ranks ---------------------------------------------------- */

/* What one rank knows about itself and its peer. */
struct pb_rank {
	int rank;			/* 0: parent, reports; 1: forked child */
	int ctl;			/* AF_UNIX stream to the other rank */
	const char *ifname, *addr;	/* ours, in our namespace */
	const char *peer_addr;
	bool do_send, do_recv;
};

/* Control channel: whole-buffer transfers and a barrier; 0 or -errno. */
int pb_ctl_write(int fd, const void *buf, size_t len);
int pb_ctl_read(int fd, void *buf, size_t len);
int pb_ctl_barrier(int fd);
/* Exchanges outcomes: @err, else -ECANCELED if the other rank failed, else 0. */
int pb_ctl_agree(int fd, int err);

/* ---- buffers ---------------------------------------------------------- */

struct pb_bufs {
	size_t len;
	uint8_t *host_send, *host_recv;	/* raw TCP, checking, staging */
	enum pb_mem mem;
	void *send, *recv;		/* what the plugin gets: host or cuMemAlloc'd */
};

int pb_bufs_alloc(struct pb_bufs *b, const struct pb_opts *o, char *why, size_t wlen);
void pb_bufs_free(struct pb_bufs *b);
/* Fills @size bytes of the send buffer(s) with rank @from's pattern. */
int pb_bufs_fill(struct pb_bufs *b, size_t size, int from);
/* Zeroes the receive buffer(s), so a message that never lands is caught. */
int pb_bufs_clear(struct pb_bufs *b, size_t size);
/* -1 if @size bytes received from rank @from match, else the first bad offset. */
long pb_bufs_check(struct pb_bufs *b, size_t size, int from, bool plugin_buf);

/* CUDA driver, loaded with dlopen (cuda.c). */
int pb_cuda_init(int dev, char *why, size_t wlen);
int pb_cuda_alloc(void **p, size_t len);
void pb_cuda_free(void *p);
int pb_cuda_htod(void *dst, const void *src, size_t len);
int pb_cuda_dtoh(void *dst, const void *src, size_t len);

/* ---- transports ------------------------------------------------------- */

struct pb_xport;

struct pb_xport_ops {
	/* Connects both ways (or the one way of --oneway). */
	int (*open)(struct pb_xport *x);
	/* One iteration: @size bytes each way; returns when both are done. */
	int (*sendrecv)(struct pb_xport *x, size_t size);
	void (*close)(struct pb_xport *x);
};

struct pb_xport {
	enum pb_xport_kind kind;
	const char *name;		/* "plugin", "raw1", "rawN" */
	const struct pb_xport_ops *ops;
	const struct pb_opts *o;
	const struct pb_rank *r;
	struct pb_bufs *b;
	unsigned int nconns;		/* raw: connections per direction */
	char desc[256];			/* for the report: what it actually ran */
	char mode[256];			/* plugin: the receive mode it chose, and why */
	char err[256];			/* why it failed */
	void *priv;
};

extern const struct pb_xport_ops pb_plugin_ops;
extern const struct pb_xport_ops pb_raw_ops;

/* Where the plugin is looked for when --plugin is not given. */
const char *pb_plugin_default(char *buf, size_t len);

/* ---- the sweep and its report ----------------------------------------- */

struct pb_point {
	uint64_t bytes;
	unsigned int warmup, iters;
	double time_us;			/* per iteration, averaged over both ranks */
	double min_us, max_us, stddev_us;	/* spread of single iterations */
	double algbw;			/* GB/s = bytes / time (nccl-tests' algbw) */
	bool checked, ok;
};

struct pb_series {
	const char *name;		/* JSON key: "plugin", "raw_1", "raw_n" */
	unsigned int conns;
	char desc[256];
	char mode[256];
	double first_us;		/* the untimed first exchange (lazy set-up) */
	bool ran;
	int err;
	char errmsg[256];
	struct pb_point pt[PB_MAX_SIZES];
};

struct pb_result {
	const struct pb_opts *o;
	int nsizes;
	uint64_t sizes[PB_MAX_SIZES];
	struct pb_series s[PB_NXPORTS];
	double loadavg[3];		/* at start: others' load skews the numbers */
	double wall_s;
	char plugin_path[512];
	char link[96];
	int interrupted;		/* the signal, or 0 */
	int exit_code;
};

int pb_sizes(const struct pb_opts *o, uint64_t *sizes, int max);
/* Warmup iterations: the option's count, but no more than ~64 MiB of them. */
unsigned int pb_warmups(const struct pb_opts *o, uint64_t size);
/* How many timed iterations fill @budget, given a warmup of @tw s each. */
uint32_t pb_pick_iters(const struct pb_opts *o, double budget, double tw);
/* Runs every size through @x; both ranks call it. Rank 0 fills @s. */
int pb_sweep(struct pb_xport *x, const uint64_t *sizes, int nsizes, double budget_per_point,
	     struct pb_series *s);

void pb_report_table(FILE *f, const struct pb_result *res);
void pb_report_json(FILE *f, const struct pb_result *res);
struct bench_json;
/* The sweep's settings both reports share (sizes, budget, iterations, sockets). */
void pb_json_sweep_config(struct bench_json *j, const struct pb_opts *o);

double pb_now(void);

/* Set by SIGINT/SIGTERM: loops end early, cleanup still runs. */
#include <signal.h>
extern volatile sig_atomic_t pb_interrupted;

#endif /* PLUGINBENCH_H */
