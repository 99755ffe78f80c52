/* SPDX-License-Identifier: MIT */
/*
 * gpud-rxbench internals. One header for the tool's small modules; nothing
 * here is installed. The library is used only through <gpudirect/gpudirect.h>.
 *
 * A "run" is one measured receive over N flows, one thread per flow, in one
 * of four receive kinds: through gpud_rx (devmem or copy), plain recv() into
 * host memory (what iperf does), plain recv() followed by a host->device copy
 * (NCCL's socket transport path), or RDMA WRITEs by the peer into the same
 * buffer (rdma/, one RC queue pair per flow; its TCP connection is only the
 * side channel). --compare makes several runs one after another in the same
 * process, on the same path.
 */
#ifndef RXBENCH_H
#define RXBENCH_H

#include <gpudirect/gpudirect.h>

#include "bench_json.h"
#include "bench_netns.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RXB_SCHEMA		"gpud-rxbench/1"
#define RXB_DEFAULT_PORT	5301
#define RXB_DEFAULT_CHUNK	(128u << 10)	/* iperf3's default read/write size */
#define RXB_DEFAULT_SEED	0x67707564ull	/* "gpud" */
#define RXB_MAX_FLOWS		64
#define RXB_MAX_CPUS		256
#define RXB_PROC_STAT		"/proc/stat"
#define RXB_HIST_BUCKETS	33		/* [2^k, 2^(k+1)) for k = 0..32 */

/* Exit codes: 2 is "you asked for something this host cannot do as is". */
#define RXB_EXIT_OK		0
#define RXB_EXIT_FAIL		1
#define RXB_EXIT_USAGE		2

/* Set by SIGINT/SIGTERM: every loop ends early, cleanup still runs. */
extern volatile sig_atomic_t rxb_interrupted;

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

enum rxb_role {
	RXB_ROLE_RECV,
	RXB_ROLE_SEND,
	RXB_ROLE_DEMO,
};

struct rxb_opts {
	enum rxb_role role;
	const char *mem_spec;		/* "host", "cuda:N", "hip:N" */
	const char *ifname;		/* bind queues of this NIC (devmem) */
	unsigned int queues;		/* bind queues 1..queues; 0 = no binding */
	unsigned int flows;
	double duration;		/* seconds; 0 = no time limit */
	uint64_t bytes;			/* total over all flows; 0 = no byte limit */
	enum gpud_rx_mode mode;
	bool validate;
	bool json;
	bool progress;			/* force the progress line (also in -j mode) */
	bool compare;			/* any baseline run at all */
	bool cmp_plain;			/* plain (+ plain_h2d on GPU memory) */
	bool cmp_rdma;			/* the RDMA WRITE baseline */
	bool only_rdma;			/* --only rdma: no gpud run */
	bool duration_set, bytes_set, runs_set;
	const char *listen_addr;	/* receiver: address to listen on (NULL = any) */
	const char *host;		/* sender: peer address */
	unsigned int port;		/* first port; flow i of run r uses port + r*flows + i */
	unsigned int runs;		/* sender: consecutive runs (a --compare receiver wants 2-3) */
	uint64_t seed;
	size_t mem_size;		/* 0 = default for the mode */
	size_t chunk;			/* bytes per send()/recv() */
	bool verbose;
	bool inject;			/* testing the validator: the sender corrupts */
	uint64_t inject_at;		/* ... this stream offset of flow 0 */
	const char *rdma_dev;		/* RDMA device; NULL = the first one */
	int rdma_gid;			/* GID index; -1 = pick (see rdma/verbs.c) */
	bool rdma_send;			/* sender: one RDMA run after the TCP runs */
};

/* Parses argv; returns 0, or RXB_EXIT_USAGE after printing why. */
int rxb_parse_args(int argc, char **argv, struct rxb_opts *o);
void rxb_usage(FILE *f);
const char *rxb_mode_name(enum gpud_rx_mode m);

/* ------------------------------------------------------------------ */
/* Helpers: time, pattern, histogram, JSON writer, CPU accounting      */
/* ------------------------------------------------------------------ */

double rxb_now(void);

/*
 * Deterministic payload: byte i of flow stream with seed s is buf[i % period]
 * where buf is a splitmix sequence of s. The period is a prime near 1 MiB, so
 * a fragment delivered at the wrong page or in the wrong order is caught, and
 * the sender can send straight from the precomputed buffer (no per-byte cost).
 */
struct rxb_pattern {
	uint8_t *buf;		/* period + max_len bytes */
	size_t period;
	size_t max_len;		/* longest contiguous run one call may ask for */
};
int rxb_pattern_init(struct rxb_pattern *p, uint64_t seed, size_t max_len);
void rxb_pattern_free(struct rxb_pattern *p);
/* Contiguous pattern bytes for stream offset @off; valid for max_len bytes. */
static inline const uint8_t *rxb_pattern_at(const struct rxb_pattern *p, uint64_t off)
{
	return p->buf + (off % p->period);
}
/* Index of the first byte of @data that differs from the stream at @off, or -1. */
long rxb_pattern_check(const struct rxb_pattern *p, uint64_t off, const void *data, size_t len);

/* Fragment-size histogram, powers of two. */
struct rxb_hist {
	uint64_t count[RXB_HIST_BUCKETS];
	uint64_t n, sum, min, max;
};
void rxb_hist_init(struct rxb_hist *h);
void rxb_hist_add(struct rxb_hist *h, uint64_t v);
void rxb_hist_merge(struct rxb_hist *dst, const struct rxb_hist *src);
/* Bucket of @v: floor(log2(v)), 0 for 0 and 1. */
unsigned int rxb_hist_bucket(uint64_t v);

/* Histogram as a JSON array (hist.c). */
void rxb_json_hist(struct bench_json *j, const char *key, const struct rxb_hist *h);

/* System-wide per-core jiffies from /proc/stat. */
struct rxb_core_ticks {
	uint64_t user, nice, sys, idle, iowait, irq, softirq, steal;
};
struct rxb_cpustat {
	int ncpu;
	int err;			/* 0, or why rxb_cpustat_read() found no cores */
	struct rxb_core_ticks core[RXB_MAX_CPUS];
};
int rxb_cpustat_read(struct rxb_cpustat *s);

/* Per-core use over an interval, in percent of that core's time. */
struct rxb_core_use {
	int cpu;
	double user, sys, softirq, idle;	/* sys includes irq; softirq is separate */
};
struct rxb_cpu_use {
	int ncpu;
	struct rxb_core_use core[RXB_MAX_CPUS];
	double rx_user_s, rx_sys_s;	/* receiving threads (getrusage per thread) */
	double tx_user_s, tx_sys_s;	/* in-process sender threads, if any */
	char cores_why[160];		/* ncpu == 0: why there are no per-core rows */
};
void rxb_cpustat_delta(const struct rxb_cpustat *a, const struct rxb_cpustat *b,
		       struct rxb_cpu_use *u);
/* This thread's user and system seconds so far. */
void rxb_thread_cpu(double *user_s, double *sys_s);

/* ------------------------------------------------------------------ */
/* Sender                                                              */
/* ------------------------------------------------------------------ */

struct rxb_send_flow {
	struct rxb_send *s;
	unsigned int idx;
	pthread_t thr;
	bool started;
	int fd;
	uint64_t limit;			/* bytes; 0 = none */
	uint64_t sent;
	uint8_t *bounce;		/* --inject-error only */
	double user_s, sys_s;
	int err;			/* 0, or -errno of a real failure */
	double t_start, t_end;
};

struct rxb_send {
	const struct rxb_opts *o;
	bool rdma;			/* RDMA WRITE flows (rdma/tx.c), else send() */
	char host[64];
	unsigned int port;		/* port of flow 0 for this run */
	int nsfd;			/* namespace to create sockets in, -1 = current */
	double duration;		/* 0 = until stopped/limit */
	volatile int stop;
	unsigned int nflows;
	struct rxb_send_flow flow[RXB_MAX_FLOWS];
};

int rxb_send_start(struct rxb_send *s, const struct rxb_opts *o, const char *host,
		   unsigned int port, int nsfd, double duration, bool rdma);
/* Waits for every sender thread (stop=true first ends them now). */
void rxb_send_join(struct rxb_send *s, bool stop);
/* Standalone `--send`: all runs, summary printed. Returns an exit code. */
int rxb_send_main(const struct rxb_opts *o);

/* ------------------------------------------------------------------ */
/* Receiver                                                            */
/* ------------------------------------------------------------------ */

enum rxb_kind {
	RXB_KIND_GPUD,		/* gpud_rx: devmem or copy */
	RXB_KIND_PLAIN,		/* recv() into host memory */
	RXB_KIND_PLAIN_H2D,	/* recv() + host->device copy (gpud_mem_write) */
	RXB_KIND_RDMA,		/* the peer RDMA-writes into the buffer (rdma/) */
};
#define RXB_MAX_RUNS 4
const char *rxb_kind_name(enum rxb_kind k);
/*
 * The runs a receiver makes, in order (the gpud run first, rdma last, so that
 * the ports of the others do not depend on it). Returns how many.
 */
unsigned int rxb_plan_runs(const struct rxb_opts *o, bool host_mem,
			   enum rxb_kind kinds[RXB_MAX_RUNS]);

struct rxb_rdma_rx;	/* rdma/: device, registered buffer */

/* What the receive side set up once, shared by all runs. */
struct rxb_rxsetup {
	enum gpud_mem_kind mem_kind;
	struct gpud_mem_opts mem_opts;
	size_t mem_size;			/* bound memory */
	size_t copy_size;			/* each copy target */
	struct gpud_nic *nic;
	struct gpud_binding *binding;
	struct gpud_mem *bound_mem;		/* devmem: one mem for every flow */
	struct gpud_mem *flow_mem[RXB_MAX_FLOWS];	/* copy targets, one per flow */
	struct gpud_mem *h2d_mem[RXB_MAX_FLOWS];	/* plain_h2d targets */
	uint32_t rule_id[RXB_MAX_FLOWS];
	enum gpud_rx_mode mode;			/* what we will ask gpud_rx for */
	char reason[512];			/* why there is no binding */
	/* After binding: where the bound memory really is ("" = no binding). */
	char placement[16];			/* "vram", "system", "unknown" */
	char placement_why[320];
	bool have_reason;
	/* The RDMA baseline (rdma/): its device, buffer and registration. */
	struct rxb_rdma_rx *rdma;
	char rdma_skip[640];			/* why there is no rdma run ("" = none) */
	int rdma_skip_err;			/* ... as -errno */
};

int rxb_rxsetup_init(struct rxb_rxsetup *rs, const struct rxb_opts *o, unsigned int nruns);
void rxb_rxsetup_free(struct rxb_rxsetup *rs);

struct rxb_flow_res {
	uint64_t bytes;
	double seconds;
	double user_s, sys_s;
	struct gpud_rx_stats st;
	int err;
	char errmsg[256];
};

/* What an rdma run used and counted (rdma/). */
struct rxb_rdma_info {
	char device[64];
	char provider[32];
	char netdev[32];			/* soft-RoCE: the netdev under it */
	const char *registration;		/* "dmabuf" or "cpu-mapping" */
	char buffer[160];			/* which gpud_mem, in words */
	bool same_buffer;			/* the devmem-bound buffer itself */
	bool soft;				/* rxe/siw: the kernel copies each byte */
	uint64_t mem_bytes;			/* registered */
	uint32_t slot_bytes;			/* one RDMA WRITE */
	uint32_t slots;				/* per flow: the ring the peer writes */
	int gid_index;				/* flow 0's */
	unsigned int path_mtu;			/* bytes */
	uint64_t writes;			/* WRITE_WITH_IMM completions */
	uint64_t cq_events;			/* receiver wake-ups */
	uint64_t credit_msgs;			/* side-channel messages sent */
};

struct rxb_run {
	enum rxb_kind kind;
	enum gpud_rx_mode mode;		/* gpud kind: the mode gpud_rx ran in */
	char reason[640];
	unsigned int nflows;
	uint64_t bytes;
	double seconds;
	struct gpud_rx_stats st;	/* summed over flows (gpud kind) */
	double copies_per_byte;
	struct rxb_hist hist;
	struct rxb_cpu_use cpu;
	bool validate;			/* validation was on for this run */
	bool valid;			/* ... and every byte matched */
	bool bad;			/* a mismatch was found */
	unsigned int bad_flow;
	uint64_t bad_off;
	uint8_t bad_expected, bad_actual;
	uint64_t bytes_checked;
	bool interrupted;
	int err;			/* first error of any flow */
	char errmsg[512];
	struct rxb_rdma_info rdma;	/* rdma kind only */
	struct rxb_flow_res flow[RXB_MAX_FLOWS];
};

/* How one run finds its peer. */
struct rxb_env {
	int rx_nsfd;			/* receiver namespace, -1 = current */
	int tx_nsfd;			/* in-process sender's namespace */
	bool in_process_sender;
	const char *peer_addr;		/* address the in-process sender connects to */
	const char *path;		/* words for the report: "veth (netns demo)" */
};

/* One measured run of @kind; its run index picks the ports. Returns 0 or -errno. */
int rxb_run_one(const struct rxb_opts *o, struct rxb_rxsetup *rs, const struct rxb_env *env,
		enum rxb_kind kind, unsigned int run_idx, struct rxb_run *res);
/* Receiver (and demo) main: setup, runs, report. Returns an exit code. */
int rxb_recv_main(const struct rxb_opts *o, const struct rxb_env *env);
int rxb_demo_main(struct rxb_opts *o);

/*
 * All flow threads start their clocks together when the gate opens, and the
 * gate opens only when every thread has finished its setup and arrived (an
 * RDMA flow's queue-pair handshake must not eat into the measured window).
 */
struct rxb_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int arrived;
	bool open;
};
void rxb_gate_wait(struct rxb_gate *g);

/* Per-flow receive loops (receiver.c, plain_rx.c). */
struct rxb_flow_ctx {
	const struct rxb_opts *o;
	struct rxb_rxsetup *rs;
	struct rxb_run *run;
	unsigned int idx;
	int fd;
	uint64_t limit;			/* bytes; 0 = none */
	double deadline;		/* rxb_now() value; 0 = none */
	uint64_t seed;
	volatile int *stop;
	struct rxb_gate *go;
	uint64_t bytes;			/* updated as it goes, read by the progress line */
	struct rxb_hist hist;
	bool bad;
	uint64_t bad_off;
	uint8_t bad_expected, bad_actual;
	uint64_t bytes_checked;
	enum gpud_rx_mode mode;
	char reason[640];
	struct rxb_flow_res res;
	struct rxb_rdma_info rdma;	/* rdma kind: this flow's part */
};
void *rxb_gpud_flow(void *arg);
void *rxb_plain_flow(void *arg);
/* Validates @len bytes at stream offset @off already in host memory @data. */
bool rxb_flow_check(struct rxb_flow_ctx *f, const struct rxb_pattern *p, uint64_t off,
		    const uint8_t *data, size_t len);
bool rxb_flow_done(const struct rxb_flow_ctx *f);

/* ------------------------------------------------------------------ */
/* RDMA baseline (rdma/; rdma/none.c where rdma-core's headers were     */
/* missing at build time, and every entry then says so)                */
/* ------------------------------------------------------------------ */

/*
 * Receiver: opens the RDMA device, picks the buffer (the devmem-bound
 * gpud_mem when there is one, else an exported one of the --mem kind) and
 * registers it. On failure fills rs->rdma_skip with the reason and the fix
 * and returns -errno; nothing is left behind.
 */
int rxb_rdma_rx_init(struct rxb_rxsetup *rs, const struct rxb_opts *o);
void rxb_rdma_rx_free(struct rxb_rxsetup *rs);
/* The run-wide part of rxb_rdma_info (device, registration, buffer). */
void rxb_rdma_rx_describe(const struct rxb_rxsetup *rs, struct rxb_rdma_info *info);
/* Receive flow thread (struct rxb_flow_ctx *), like rxb_gpud_flow. */
void *rxb_rdma_flow(void *arg);
/*
 * Sender flow body, on its connected side channel f->fd: opens the device,
 * connects a queue pair, writes until the limit, the deadline or the
 * receiver's STOP. Returns 0 or -errno (message on stderr).
 */
int rxb_rdma_send_flow(struct rxb_send_flow *f);

/* ------------------------------------------------------------------ */
/* Report                                                              */
/* ------------------------------------------------------------------ */

struct rxb_report {
	const struct rxb_opts *o;
	const struct rxb_env *env;
	const char *mem_desc;
	const char *placement;		/* NULL: nothing bound */
	const char *placement_why;
	unsigned int nruns;
	struct rxb_run *run;
	const char *rdma_skip;		/* rdma was asked for and could not run */
};
void rxb_report_table(FILE *f, const struct rxb_report *r);
void rxb_report_json(FILE *f, const struct rxb_report *r);
/* The run of @kind, or NULL. */
const struct rxb_run *rxb_report_find(const struct rxb_report *r, enum rxb_kind kind);

#endif /* RXBENCH_H */
