/* SPDX-License-Identifier: MIT */
/*
 * gpud-pluginbench --op: NCCL-shaped collectives over N ranks in a ring.
 *
 *   grp.c         the ranks' control star (rank 0 = parent): allgather, barrier
 *   ring.c        NCCL's ring algorithm as a per-channel plan of slices, run
 *                 pipelined over a transport: irecv -> reduce on the CPU -> isend
 *   link_plugin.c the transport through the plugin's v11 table
 *   link_raw.c    the same over plain TCP sockets (the baseline)
 *   coll.c        the ranks, the sweep in alternating rounds, medians
 *   coll_report.c table and JSON
 *
 * Every rank sends to rank + 1 and receives from rank - 1 (mod N), on
 * --channels channels, each with its own comm (connection) per direction, as
 * NCCL's proxy opens one comm per channel and peer.
 */
#ifndef PB_COLL_H
#define PB_COLL_H

#include "pluginbench.h"

#define PB_MAX_RANKS	8
#define PB_MAX_CHANNELS	8
#define PB_FIFO_STEPS	8		/* NCCL_STEPS: slots per channel and direction */
#define PB_SLICE	(512u << 10)	/* 4 MiB buffer / 8 steps */
#define PB_P2P_CHUNK	(128u << 10)	/* NCCL_P2P_NET_CHUNKSIZE */
#define PB_MAX_ROUNDS	15

/* ---- the control star -------------------------------------------------- */

struct pb_grp {
	int rank, nranks;
	int fd[PB_MAX_RANKS];	/* rank 0: fd[i] to rank i; others: fd[0] to rank 0 */
};

/* Every rank's @len bytes, in rank order, into @all (nranks * len). 0 or -errno. */
int pb_grp_allgather(const struct pb_grp *g, const void *mine, void *all, size_t len);
int pb_grp_barrier(const struct pb_grp *g);
/* @err, else -ECANCELED if any other rank failed, else 0; -EPIPE if one is gone. */
int pb_grp_agree(const struct pb_grp *g, int err);
/* Rank 0's @len bytes to all. */
int pb_grp_bcast(const struct pb_grp *g, void *buf, size_t len);

/* ---- the transport interface -------------------------------------------- */

struct pb_link;

/*
 * What the ring needs from a transport, and no more: per channel one
 * connection to the next rank and one from the previous, and non-blocking
 * requests on the channel's FIFO slots. isend/irecv answer -EAGAIN when the
 * transport has no room yet (the plugin's NULL request); test() never blocks.
 */
struct pb_link_ops {
	int (*open)(struct pb_link *l);
	int (*isend)(struct pb_link *l, unsigned int ch, unsigned int slot, size_t len, void **req);
	int (*irecv)(struct pb_link *l, unsigned int ch, unsigned int slot, size_t len, void **req);
	/* *done = 1 once complete; for a receive *got = its bytes */
	int (*test)(struct pb_link *l, unsigned int ch, void *req, int *done, size_t *got);
	/*
	 * Optional: nothing moved in a whole pass, so sleep until something can
	 * (raw TCP: poll() on the sockets with work). NULL: sched_yield(), as
	 * NCCL's proxy thread does while the plugin's own threads move the data.
	 */
	int (*wait)(struct pb_link *l);
	void (*close)(struct pb_link *l);
};

struct pb_link {
	const char *name;		/* "plugin", "raw" */
	const struct pb_link_ops *ops;
	const struct pb_opts *o;
	const struct pb_grp *g;
	const char *ifname, *addr;	/* ours: where we receive from rank - 1 */
	unsigned int nch;
	size_t slot_bytes;		/* one FIFO slot */
	uint8_t *sfifo[PB_MAX_CHANNELS], *rfifo[PB_MAX_CHANNELS];	/* PB_FIFO_STEPS slots */
	unsigned int conns;		/* connections per direction, all channels */
	char desc[256], mode[256], err[256];
	void *priv;
};

extern const struct pb_link_ops pb_link_plugin_ops;
extern const struct pb_link_ops pb_link_raw_ops;

/* ---- the ring ---------------------------------------------------------- */

/* One collective's buffers on this rank; counts in floats. */
struct pb_coll {
	enum pb_op op;
	int rank, nranks;
	size_t count;			/* nccl-tests' count: per rank for allgather/reducescatter */
	float *in, *out;
	size_t in_count, out_count;
};

struct pb_plan;

/* The slices each channel moves for @c, cut to @slot_bytes. NULL + errno. */
struct pb_plan *pb_plan_build(const struct pb_coll *c, unsigned int nch, size_t slot_bytes);
void pb_plan_free(struct pb_plan *p);
/* One collective: returns when every slice of every channel is done. */
int pb_ring_run(struct pb_link *l, const struct pb_plan *p, const struct pb_coll *c);

/* nccl-tests' bus bandwidth factor (doc/PERFORMANCE.md). */
double pb_busbw_factor(enum pb_op op, int nranks);
const char *pb_op_name(enum pb_op op);
/* Bytes and floats of each buffer for nccl-tests' size @bytes; count 0: too small. */
void pb_coll_sizes(enum pb_op op, int nranks, uint64_t bytes, struct pb_coll *c);

/* Deterministic inputs (small integers: float sums are exact). */
void pb_coll_fill(const struct pb_coll *c);
/* -1 if every output element is right, else the first wrong index (@want, @got). */
long pb_coll_check(const struct pb_coll *c, float *want, float *got);

/* ---- the tool -------------------------------------------------------------- */

#define PB_COLL_SCHEMA	"gpud-pluginbench-coll/1"
enum { PB_L_PLUGIN, PB_L_RAW, PB_NLINKS };

struct pb_cseries {
	double round_us[PB_MAX_ROUNDS];	/* per iteration, averaged over the ranks */
	double time_us;			/* median of the rounds */
	double algbw, busbw;		/* GB/s, from the median */
	uint32_t iters;
	bool ran;			/* this transport ran this size */
	bool ok;			/* every rank's every output element right */
};

struct pb_cpoint {
	uint64_t bytes;			/* nccl-tests' size (whole array) */
	uint64_t count;			/* its count (per rank for allgather/reducescatter) */
	uint32_t warmup;
	bool ran, checked;
	struct pb_cseries s[PB_NLINKS];
	char bad[160];			/* the first wrong element, where one was */
};

struct pb_cresult {
	const struct pb_opts *o;
	int nsizes;
	struct pb_cpoint pt[PB_MAX_SIZES];
	char name[PB_NLINKS][16], desc[PB_NLINKS][256], mode[256];
	unsigned int conns[PB_NLINKS];
	bool up[PB_NLINKS];		/* connected on every rank */
	double first_us[PB_NLINKS];	/* untimed first collective: lazy set-up */
	double loadavg[3], loadavg_end[3];
	double wall_s;
	char net[160];
	char plugin_path[512];
	char err[256];
	int interrupted, exit_code;
};

int pb_coll_main(struct pb_opts *o);
void pb_coll_report_table(FILE *f, const struct pb_cresult *res);
void pb_coll_report_json(FILE *f, const struct pb_cresult *res);

#endif /* PB_COLL_H */
