// SPDX-License-Identifier: MIT
/*
 * A fake libcuda.so.1 (and libnvidia-ml.so.1) for GPU-less tests of the cuda
 * backend and of the NCCL plugin. It exports only cuGetProcAddress_v2, like a
 * driver whose other symbols we must not dlsym directly, and hands out its
 * own functions by name (the version argument is ignored).
 *
 * Controlled through the environment, read on every call:
 *   GPUD_FAKE_FAIL=cuName        that entry point fails ...
 *   GPUD_FAKE_FAIL_CODE=N        ... with CUresult N (default 999, UNKNOWN)
 *   GPUD_FAKE_MISSING=cuName     cuGetProcAddress_v2 does not know it
 *   GPUD_FAKE_DMABUF_ATTR=0      CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED is 0
 *   GPUD_FAKE_DEVICES=N          device count (default 1)
 *   GPUD_FAKE_COPY_DELAY_US=N    a stream op runs no earlier than N µs after
 *                                it was submitted (default 200)
 *   GPUD_FAKE_BLOCK_MS=N         a wait stuck behind the resident kernel
 *                                gives up after N ms (default 3000)
 * "Device memory" is malloc()ed, so a device pointer is a host address the
 * test can read; the "dma-buf" is a memfd. Counters for the test:
 * fake_cuda_live_allocs(), fake_cuda_ctx_refs(), fake_cuda_ctx_depth(),
 * fake_cuda_flushes(), fake_cuda_pcie_tries(), fake_cuda_reset_depth(),
 * fake_cuda_host_allocs().
 *
 * The NCCL plugin's entry points too (it loads the driver itself): pointer
 * context, cuCtxSetCurrent/GetCurrent/GetDevice (a thread starts with the
 * fake context current, as NCCL's proxy thread has its rank's), mapped host
 * memory (cuMemHostAlloc/GetDevicePointer/Register: the device address is
 * the host address), and modules: the only kernel that launches is
 * dm_unpack_kernel, run on the CPU; any other fails with 801.
 *
 * CUDA's concurrency, modelled so that CUDA-discipline bugs (STYLE.md rule
 * 16) fail tests without a GPU. The controls are in fake_cuda.h.
 *  - Streams and events (cuStream*, cuEvent*), async copies, memsets,
 *    cuLaunchHostFunc and the unpack kernel queue ops. One engine thread,
 *    started on first use, runs them no earlier than GPUD_FAKE_COPY_DELAY_US
 *    after submission, so a destination read before its event completed
 *    shows stale bytes. Copies read their source when they run, like DMA: a
 *    staging buffer reused too early corrupts the destination.
 *  - Order as CUDA defines it, one context: FIFO per stream; an op on the
 *    legacy default stream (NULL, CU_STREAM_LEGACY) waits for every earlier
 *    op on the blocking streams (user streams created without
 *    CU_STREAM_NON_BLOCKING, and CU_STREAM_PER_THREAD), and ops on those
 *    wait for every earlier legacy op; non-blocking streams wait for nobody.
 *  - A resident kernel (fake_cuda_resident_start) stands for NCCL's kernel
 *    spinning on our receive: it never ends until the test says so.
 *  - Waits: cuCtxSynchronize, cuMemFree and cuMemFreeHost wait for every op
 *    queued before them; the synchronous copies are legacy ops, waited for;
 *    cuStreamSynchronize and cuEventSynchronize wait for their stream or
 *    event. A wait still stuck behind the resident kernel after
 *    GPUD_FAKE_BLOCK_MS is a DEADLOCK: a line on stderr, a count, the
 *    caller's own op (a synchronous copy) cancelled, CUresult 702.
 *  - A log of which thread (its fake_cuda_thread_role or its name) made
 *    which synchronising call, and which async copies had pageable host
 *    memory (outside cuMemHostAlloc and cuMemHostRegister ranges).
 * Not modelled: pageable async copies being partly synchronous on a real
 * GPU, per-thread-default-stream entry points (_ptsz), multiple contexts.
 */
#define _GNU_SOURCE
#include "fake_cuda.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

#define CU_ENOMEM 2
#define CU_NOT_PERMITTED 800
#define CU_UNKNOWN 999

static int live_allocs, ctx_refs, ctx_depth, flushes, pcie_tries, host_allocs;
static char fake_ctx;	/* its address is the context handle */
static char unpack_fn;	/* its address is dm_unpack_kernel's function handle */
static __thread void *cur_ctx = &fake_ctx;	/* cuCtxSetCurrent/GetCurrent only */

EXPORT int fake_cuda_live_allocs(void) { return live_allocs; }
EXPORT int fake_cuda_ctx_refs(void) { return ctx_refs; }
EXPORT int fake_cuda_ctx_depth(void) { return ctx_depth; }
EXPORT int fake_cuda_flushes(void) { return flushes; }
EXPORT int fake_cuda_pcie_tries(void) { return pcie_tries; }
EXPORT int fake_cuda_host_allocs(void) { return host_allocs; }
/* After a simulated failed pop the context stays pushed; tests undo it. */
EXPORT void fake_cuda_reset_depth(void) { ctx_depth = 0; }

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : dflt;
}

/* Nonzero CUresult when the test asked @fn to fail. */
static CUresult fail(const char *fn)
{
	const char *v = getenv("GPUD_FAKE_FAIL");

	if (v && !strcmp(v, fn))
		return env_int("GPUD_FAKE_FAIL_CODE", CU_UNKNOWN);
	return 0;
}

#define FAIL_IF(fn)                        \
	do {                               \
		CUresult r_ = fail(fn);    \
		if (r_)                    \
			return r_;         \
	} while (0)

/* What the plugin's calls need: a context made current or pushed. */
static bool ctx_current(void)
{
	return cur_ctx || ctx_depth > 0;
}

/* ======================= the concurrency model ======================= */

enum fs_kind { FS_LEGACY, FS_PER_THREAD, FS_BLOCKING, FS_NONBLOCKING };

struct fstream {
	struct fstream *next;	/* every stream but the legacy one */
	enum fs_kind kind;
	bool destroyed;		/* reused once nothing is queued on it */
	unsigned int queued;	/* its ops not yet run */
	uint64_t gen;		/* scratch of one pass over the queue */
	bool stuck;		/* ditto: behind the resident kernel */
};

enum op_kind { OP_COPY, OP_MEMSET, OP_HOSTFN, OP_UNPACK, OP_RECORD, OP_RESIDENT };

struct op {
	struct op *prev, *next;	/* the queue: every op not yet run, oldest first */
	struct fstream *s;
	uint64_t seq;		/* submission order, over all streams */
	uint64_t not_before;	/* CLOCK_MONOTONIC ns */
	enum op_kind kind;
	bool running;		/* the engine runs it, outside the lock */
	bool released;		/* OP_RESIDENT: fake_cuda_resident_finish() came */
	union {
		struct { void *dst; const void *src; size_t n; } copy;
		struct { void *dst; unsigned char v; size_t n; } set;
		struct { void (*fn)(void *); void *data; } host;
		struct {
			const struct fake_cuda_unpack_entry *e;
			unsigned int n;
			const char *pool;
			char *dst;
		} unpack;
	} u;
};

struct fevent {
	struct fevent *next;
	struct fstream *s;	/* NULL until recorded */
	uint64_t seq;		/* its record op */
	bool sync_class;	/* recorded on the legacy or a blocking stream */
};

/* A page-locked host range: cuMemHostAlloc or cuMemHostRegister. */
struct pin {
	struct pin *next;
	uintptr_t start;
	size_t len;
};

/*
 * What a wait waits for: the ops numbered up to @seq on @s (for the legacy
 * stream, on the blocking streams too: the legacy op the caller would wait
 * behind waits for those), or on every stream when @s is NULL.
 */
struct target {
	struct fstream *s;
	uint64_t seq;
};

enum { LOG_SYNC, LOG_PAGEABLE };
#define LOG_MAX 512
#define DEADLOCK_KEEP 16

struct log_ent {
	int cls;
	pid_t tid;
	unsigned long times;
	char call[32];
	char thread[32];
};

static struct {
	pthread_mutex_t mu;	/* everything below */
	pthread_cond_t work;	/* to the engine: an op queued or released */
	pthread_cond_t done;	/* to waiters: an op ran or was cancelled */
	bool engine;		/* the engine thread runs in this process */
	void *self;		/* our NODELETE handle: the engine runs our code */
	struct op *head, *tail;
	uint64_t seq, gen;
	struct fstream legacy;
	struct fstream *streams;
	struct fevent *events;
	struct pin *pins;
	struct op *resident;
	struct log_ent log[LOG_MAX];
	int log_n;
	int deadlocks;
	char deadlock_text[DEADLOCK_KEEP][256];
} M = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.legacy = { .kind = FS_LEGACY },
};

static __thread char role[32];
static __thread bool in_engine;

static pthread_once_t model_once = PTHREAD_ONCE_INIT;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timespec ts_of(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / 1000000000u),
				  .tv_nsec = (long)(ns % 1000000000u) };
}

static void cond_init(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	/* deadlines are CLOCK_MONOTONIC: a test's clock change must not matter */
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

/* The mem tests fork a child per scenario: the lock must not be held then. */
static void atfork_prepare(void) { pthread_mutex_lock(&M.mu); }
static void atfork_parent(void) { pthread_mutex_unlock(&M.mu); }

static void atfork_child(void)
{
	struct op *op;

	/* Only the forking thread lives on: no engine, no waiters. An op the
	 * engine was running is run again by the child's engine.
	 */
	M.engine = false;
	for (op = M.head; op; op = op->next)
		op->running = false;
	cond_init(&M.work);
	cond_init(&M.done);
	pthread_mutex_unlock(&M.mu);
}

static void model_init(void)
{
	cond_init(&M.work);
	cond_init(&M.done);
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static void model_lock(void)
{
	pthread_once(&model_once, model_init);
	pthread_mutex_lock(&M.mu);
}

static void model_unlock(void)
{
	pthread_mutex_unlock(&M.mu);
}

static bool is_legacy(const struct fstream *s)
{
	return s->kind == FS_LEGACY;
}

static bool is_blocking(const struct fstream *s)
{
	return s->kind == FS_BLOCKING || s->kind == FS_PER_THREAD;
}

static uint64_t copy_delay_ns(void)
{
	int us = env_int("GPUD_FAKE_COPY_DELAY_US", 200);

	return us > 0 ? (uint64_t)us * 1000u : 0;
}

/* ---- who calls: the thread's role or name, its tid ---- */

static void thread_name(char *name, size_t len)
{
	if (role[0])
		snprintf(name, len, "%s", role);
	else if (pthread_getname_np(pthread_self(), name, len))
		snprintf(name, len, "?");
}

static pid_t tid_self(void)
{
	return (pid_t)syscall(SYS_gettid);
}

EXPORT void fake_cuda_thread_role(const char *r)
{
	snprintf(role, sizeof(role), "%s", r ? r : "");
}

/* Counts one call of @call by this thread in log class @cls. Locked. */
static void log_locked(int cls, const char *call)
{
	struct log_ent *e;
	pid_t tid = tid_self();
	char name[32];
	int i;

	thread_name(name, sizeof(name));
	for (i = 0; i < M.log_n; i++) {
		e = &M.log[i];
		if (e->cls == cls && e->tid == tid && !strcmp(e->call, call) &&
		    !strcmp(e->thread, name)) {
			e->times++;
			return;
		}
	}
	/* Full: the last line takes the rest, so that totals stay right. */
	e = &M.log[M.log_n < LOG_MAX ? M.log_n++ : LOG_MAX - 1];
	e->cls = cls;
	e->tid = tid;
	e->times++;
	snprintf(e->call, sizeof(e->call), "%s", call);
	snprintf(e->thread, sizeof(e->thread), "%s", name);
}

static void log_call(int cls, const char *call)
{
	model_lock();
	log_locked(cls, call);
	model_unlock();
}

/* snprintf at @off of @buf; past the end it only counts. */
__attribute__((format(printf, 4, 5)))
static size_t append(char *buf, size_t len, size_t off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!buf || off >= len)
		return off;
	va_start(ap, fmt);
	n = vsnprintf(buf + off, len - off, fmt, ap);
	va_end(ap);
	return n < 0 ? off : off + (size_t)n;
}

static int log_query(int cls, const char *prefix, char *buf, size_t len)
{
	size_t plen = prefix ? strlen(prefix) : 0, off = 0;
	int total = 0;

	if (buf && len)
		buf[0] = '\0';
	model_lock();
	for (int i = 0; i < M.log_n; i++) {
		const struct log_ent *e = &M.log[i];

		if (e->cls != cls || strncmp(e->thread, prefix ? prefix : "", plen))
			continue;
		total += (int)e->times;
		off = append(buf, len, off, "%s thread=\"%s\" tid=%d times=%lu\n", e->call,
			     e->thread, (int)e->tid, e->times);
	}
	model_unlock();
	return total;
}

EXPORT int fake_cuda_sync_calls(const char *thread_prefix, char *buf, size_t len)
{
	return log_query(LOG_SYNC, thread_prefix, buf, len);
}

EXPORT int fake_cuda_pageable_async(const char *thread_prefix, char *buf, size_t len)
{
	return log_query(LOG_PAGEABLE, thread_prefix, buf, len);
}

EXPORT int fake_cuda_deadlocks(char *buf, size_t len)
{
	size_t off = 0;
	int n;

	if (buf && len)
		buf[0] = '\0';
	model_lock();
	n = M.deadlocks;
	for (int i = 0; i < n && i < DEADLOCK_KEEP; i++)
		off = append(buf, len, off, "%s\n", M.deadlock_text[i]);
	model_unlock();
	return n;
}

EXPORT void fake_cuda_model_reset(void)
{
	model_lock();
	memset(M.log, 0, sizeof(M.log));
	M.log_n = 0;
	M.deadlocks = 0;
	model_unlock();
}

/* ---- page-locked host ranges ---- */

static bool pin_add(void *p, size_t len)
{
	struct pin *pn = malloc(sizeof(*pn));

	if (!pn)
		return false;
	pn->start = (uintptr_t)p;
	pn->len = len;
	model_lock();
	pn->next = M.pins;
	M.pins = pn;
	model_unlock();
	return true;
}

static void pin_del(void *p)
{
	struct pin **pp, *pn = NULL;

	model_lock();
	for (pp = &M.pins; *pp; pp = &(*pp)->next) {
		if ((*pp)->start == (uintptr_t)p) {
			pn = *pp;
			*pp = pn->next;
			break;
		}
	}
	model_unlock();
	free(pn);
}

static bool pinned_locked(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p;

	for (const struct pin *pn = M.pins; pn; pn = pn->next)
		if (a >= pn->start && a - pn->start <= pn->len && n <= pn->len - (a - pn->start))
			return true;
	return false;
}

/* ---- streams ---- */

/* A new stream, or a destroyed one nothing is queued on any more. Locked. */
static struct fstream *stream_new(enum fs_kind kind)
{
	struct fstream *s;

	for (s = M.streams; s; s = s->next)
		if (s->destroyed && !s->queued)
			break;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
		s->next = M.streams;
		M.streams = s;
	}
	s->kind = kind;
	s->destroyed = false;
	return s;
}

/* The stream handle @h stands for, NULL when it is none. Locked. */
static struct fstream *stream_of(void *h)
{
	static __thread struct fstream *per_thread;

	if (!h || h == FAKE_CU_STREAM_LEGACY)
		return &M.legacy;
	if (h == FAKE_CU_STREAM_PER_THREAD) {
		if (!per_thread)
			per_thread = stream_new(FS_PER_THREAD);
		return per_thread;
	}
	for (struct fstream *s = M.streams; s; s = s->next)
		if (s == h)
			return s->destroyed ? NULL : s;
	return NULL;
}

static bool event_known(const struct fevent *e)
{
	for (const struct fevent *x = M.events; x; x = x->next)
		if (x == e)
			return true;
	return false;
}

/* ---- the queue and the engine ---- */

static struct op *op_new(enum op_kind kind)
{
	struct op *op = calloc(1, sizeof(*op));

	if (op)
		op->kind = kind;
	return op;
}

static void op_unlink(struct op *op)
{
	if (op->prev)
		op->prev->next = op->next;
	else
		M.head = op->next;
	if (op->next)
		op->next->prev = op->prev;
	else
		M.tail = op->prev;
	op->s->queued--;
	if (op == M.resident)
		M.resident = NULL;
}

/*
 * The oldest op whose turn has come: first of its stream, nothing it must
 * wait for queued before it, and its delay over. Else NULL, and *@wake is
 * when the next delay ends (0: none pending). Locked.
 */
static struct op *op_runnable(uint64_t now, uint64_t *wake)
{
	bool legacy_before = false, blocking_before = false;
	uint64_t gen = ++M.gen;

	*wake = 0;
	for (struct op *op = M.head; op; op = op->next) {
		struct fstream *s = op->s;
		bool first = s->gen != gen;

		s->gen = gen;
		if (first && !(is_legacy(s) && blocking_before) &&
		    !(is_blocking(s) && legacy_before)) {
			if (op->kind == OP_RESIDENT) {
				if (op->released)
					return op;
			} else if (op->not_before <= now) {
				return op;
			} else if (!*wake || op->not_before < *wake) {
				*wake = op->not_before;
			}
		}
		legacy_before |= is_legacy(s);
		blocking_before |= is_blocking(s);
	}
	return NULL;
}

/* What the GPU would do; outside the lock, the op still queued. */
static void op_run(const struct op *op)
{
	switch (op->kind) {
	case OP_COPY:
		/* the source is read now, not at submission: DMA */
		if (op->u.copy.n)
			memmove(op->u.copy.dst, op->u.copy.src, op->u.copy.n);
		break;
	case OP_MEMSET:
		if (op->u.set.n)
			memset(op->u.set.dst, op->u.set.v, op->u.set.n);
		break;
	case OP_HOSTFN:
		op->u.host.fn(op->u.host.data);
		break;
	case OP_UNPACK:
		/* entries and pool bytes are read when the kernel runs */
		for (unsigned int i = 0; i < op->u.unpack.n; i++) {
			struct fake_cuda_unpack_entry e = op->u.unpack.e[i];

			if (e.len)
				memcpy(op->u.unpack.dst + e.dst_off, op->u.unpack.pool + e.src_off,
				       e.len);
		}
		break;
	case OP_RECORD:
	case OP_RESIDENT:
		break;
	}
}

static void *engine_main(void *arg)
{
	struct timespec ts;
	struct op *op;
	uint64_t wake;

	in_engine = true;
	pthread_mutex_lock(&M.mu);
	for (;;) {
		op = op_runnable(now_ns(), &wake);
		if (!op) {
			ts = ts_of(wake);
			if (wake)
				pthread_cond_timedwait(&M.work, &M.mu, &ts);
			else
				pthread_cond_wait(&M.work, &M.mu);
			continue;
		}
		op->running = true;
		pthread_mutex_unlock(&M.mu);
		op_run(op);
		pthread_mutex_lock(&M.mu);
		op_unlink(op);
		free(op);
		pthread_cond_broadcast(&M.done);
	}
	return NULL;
}

/* Starts the engine thread unless it runs. Locked; 0 or -errno. */
static int engine_ensure(void)
{
	sigset_t all, old;
	pthread_attr_t a;
	pthread_t t;
	Dl_info di;
	int err;

	if (M.engine)
		return 0;
	/* the engine runs our code: a dlclose must not unmap it */
	if (!M.self && dladdr((void *)engine_main, &di) && di.dli_fname)
		M.self = dlopen(di.dli_fname, RTLD_NOW | RTLD_NODELETE);
	pthread_attr_init(&a);
	/* detached, and exit() does not wait for it: it never keeps a process alive */
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	/* signals go to the test's threads, not to the engine */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&t, &a, engine_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	if (err)
		return -err;
	pthread_setname_np(t, "fake-cuda-gpu");
	M.engine = true;
	return 0;
}

/* Queues @op on @s to run after @delay ns. Locked; the caller keeps @op on error. */
static CUresult op_enqueue(struct op *op, struct fstream *s, uint64_t delay)
{
	if (engine_ensure())
		return CU_UNKNOWN;
	op->s = s;
	op->seq = ++M.seq;
	op->not_before = now_ns() + delay;
	op->prev = M.tail;
	op->next = NULL;
	if (M.tail)
		M.tail->next = op;
	else
		M.head = op;
	M.tail = op;
	s->queued++;
	pthread_cond_signal(&M.work);
	return 0;
}

static void op_cancel(uint64_t seq)
{
	for (struct op *op = M.head; op && op->seq <= seq; op = op->next) {
		if (op->seq == seq && !op->running) {
			op_unlink(op);
			free(op);
			pthread_cond_broadcast(&M.done);
			return;
		}
	}
}

EXPORT int fake_cuda_pending_ops(void)
{
	int n = 0;

	model_lock();
	for (struct op *op = M.head; op; op = op->next)
		n += op->kind != OP_RESIDENT;
	model_unlock();
	return n;
}

/* ---- waits ---- */

static bool op_in_target(const struct op *op, const struct target *t)
{
	return op->seq <= t->seq &&
	       (!t->s || op->s == t->s || (is_legacy(t->s) && is_blocking(op->s)));
}

static bool target_done(const struct target *t)
{
	for (const struct op *op = M.head; op && op->seq <= t->seq; op = op->next)
		if (op_in_target(op, t))
			return false;
	return true;
}

/*
 * Whether some op of @t can never run while the resident kernel does: it is
 * the resident op, or waits (directly or through others) for one that is.
 * Every wait points at older ops, so one pass in submission order does.
 */
static bool target_stuck(const struct target *t)
{
	bool legacy_stuck = false, blocking_stuck = false;
	uint64_t gen = ++M.gen;

	for (struct op *op = M.head; op && op->seq <= t->seq; op = op->next) {
		struct fstream *s = op->s;
		bool stuck;

		if (s->gen != gen) {
			s->gen = gen;
			s->stuck = false;
		}
		stuck = (op->kind == OP_RESIDENT && !op->released) || s->stuck ||
			(is_legacy(s) && blocking_stuck) || (is_blocking(s) && legacy_stuck);
		if (!stuck)
			continue;
		if (op_in_target(op, t))
			return true;
		s->stuck = true;
		legacy_stuck |= is_legacy(s);
		blocking_stuck |= is_blocking(s);
	}
	return false;
}

static const char *resident_where(void)
{
	if (!M.resident)
		return "no stream (finished meanwhile)";
	switch (M.resident->s->kind) {
	case FS_LEGACY: return "the legacy stream";
	case FS_NONBLOCKING: return "a non-blocking stream";
	default: return "a blocking stream";
	}
}

static void deadlock_record(const char *call, uint64_t ms)
{
	char name[32], line[256];

	thread_name(name, sizeof(name));
	snprintf(line, sizeof(line),
		 "fake-cuda: DEADLOCK: %s on thread \"%s\" (tid %d) waited %llu ms behind the resident kernel on %s",
		 call, name, (int)tid_self(), (unsigned long long)ms, resident_where());
	/* stderr: the process under test may have no other channel to the test */
	fprintf(stderr, "%s\n", line);
	if (M.deadlocks < DEADLOCK_KEEP)
		memcpy(M.deadlock_text[M.deadlocks], line, sizeof(line));
	M.deadlocks++;
}

/*
 * Blocks until @t is done. A wait still stuck behind the resident kernel at
 * GPUD_FAKE_BLOCK_MS is a deadlock: recorded, the caller's own op @mine (0:
 * none) cancelled, 702. Work not behind the resident always ends, so other
 * waits just go on. Locked.
 */
static CUresult wait_for(const struct target *t, const char *call, uint64_t mine)
{
	uint64_t block = (uint64_t)env_int("GPUD_FAKE_BLOCK_MS", 3000) * 1000000u;
	uint64_t start = now_ns(), deadline = start + block, now;
	struct timespec ts;

	if (target_done(t))
		return 0;
	/* a host function waiting for the engine that runs it: CUDA forbids it too */
	if (in_engine)
		return CU_NOT_PERMITTED;
	if (engine_ensure())	/* a forked child inherits ops, not the engine */
		return CU_UNKNOWN;
	while (!target_done(t)) {
		now = now_ns();
		if (now >= deadline) {
			if (target_stuck(t)) {
				deadlock_record(call, (now - start) / 1000000u);
				if (mine)
					op_cancel(mine);
				return FAKE_CUDA_ERROR_LAUNCH_TIMEOUT;
			}
			deadline = now + block;
		}
		ts = ts_of(deadline);
		pthread_cond_timedwait(&M.done, &M.mu, &ts);
	}
	return 0;
}

/* cuCtxSynchronize, and what cuMemFree/cuMemFreeHost do implicitly. */
static CUresult ctx_sync(const char *call)
{
	struct target t = { NULL, 0 };
	CUresult r;

	model_lock();
	t.seq = M.seq;
	r = wait_for(&t, call, 0);
	model_unlock();
	return r;
}

/* A synchronous copy: a legacy-stream op, waited for. */
static CUresult copy_sync(const char *call, void *dst, const void *src, size_t n)
{
	struct op *op = op_new(OP_COPY);
	struct target t = { &M.legacy, 0 };
	CUresult r;

	if (!op)
		return CU_ENOMEM;
	op->u.copy.dst = dst;
	op->u.copy.src = src;
	op->u.copy.n = n;
	model_lock();
	r = op_enqueue(op, &M.legacy, copy_delay_ns());
	if (r) {
		free(op);
	} else {
		t.seq = op->seq;
		r = wait_for(&t, call, t.seq);
	}
	model_unlock();
	return r;
}

/*
 * Queues @op on the stream @h stands for, for the entry point @call (the log
 * and GPUD_FAKE_FAIL name). @host, @n: a copy's host side, checked for page
 * locking. @ev: the event this op records. Takes @op.
 */
static CUresult submit(const char *call, void *h, struct op *op, const void *host, size_t n,
		       struct fevent *ev)
{
	struct fstream *s;
	CUresult r = 0;

	if (!op)
		return CU_ENOMEM;
	model_lock();
	s = stream_of(h);
	if (!s || (ev && !event_known(ev)))
		r = FAKE_CUDA_ERROR_INVALID_HANDLE;
	/* logged whether or not it then fails: the call was made */
	if (s && is_legacy(s))
		log_locked(LOG_SYNC, call);
	if (!r && host && !pinned_locked(host, n))
		log_locked(LOG_PAGEABLE, call);
	if (!r)
		r = fail(call);
	if (!r && !ctx_current())
		r = FAKE_CUDA_ERROR_INVALID_CONTEXT;
	if (!r)
		r = op_enqueue(op, s, copy_delay_ns());
	if (r) {
		free(op);
	} else if (ev) {
		ev->s = s;
		ev->seq = op->seq;
		ev->sync_class = s->kind != FS_NONBLOCKING;
	}
	model_unlock();
	return r;
}

/* ---- the resident kernel ---- */

EXPORT int fake_cuda_resident_start(int kind)
{
	static const enum fs_kind kinds[] = { FS_LEGACY, FS_BLOCKING, FS_NONBLOCKING };
	struct op *op = op_new(OP_RESIDENT);
	struct fstream *s = NULL;
	int err = 0;

	if (kind < FAKE_STREAM_LEGACY || kind > FAKE_STREAM_NONBLOCKING) {
		free(op);
		return -EINVAL;
	}
	if (!op)
		return -ENOMEM;
	model_lock();
	if (M.resident)
		err = -EBUSY;
	else if (kind == FAKE_STREAM_LEGACY)
		s = &M.legacy;
	else if (!(s = stream_new(kinds[kind])))
		err = -ENOMEM;
	if (!err && op_enqueue(op, s, 0))
		err = -EAGAIN;
	if (s && s != &M.legacy)
		s->destroyed = true;	/* nobody holds its handle; reused once drained */
	if (!err)
		M.resident = op;
	model_unlock();
	if (err)
		free(op);
	return err;
}

EXPORT void fake_cuda_resident_finish(void)
{
	model_lock();
	if (M.resident) {
		M.resident->released = true;
		engine_ensure();
		pthread_cond_signal(&M.work);
	}
	model_unlock();
}

/* ======================= driver entry points ======================= */

static CUresult f_GetErrorName(CUresult r, const char **s)
{
	static char buf[48];

	switch (r) {
	case 1: *s = "CUDA_ERROR_INVALID_VALUE"; break;
	case 2: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
	case 100: *s = "CUDA_ERROR_NO_DEVICE"; break;
	case 201: *s = "CUDA_ERROR_INVALID_CONTEXT"; break;
	case 400: *s = "CUDA_ERROR_INVALID_HANDLE"; break;
	case 600: *s = "CUDA_ERROR_NOT_READY"; break;
	case 702: *s = "CUDA_ERROR_LAUNCH_TIMEOUT"; break;
	case 800: *s = "CUDA_ERROR_NOT_PERMITTED"; break;
	case 801: *s = "CUDA_ERROR_NOT_SUPPORTED"; break;
	case 999: *s = "CUDA_ERROR_UNKNOWN"; break;
	default:
		strcpy(buf, "CUDA_ERROR_FAKE");
		*s = buf;
	}
	return 0;
}

static CUresult f_GetErrorString(CUresult r, const char **s)
{
	switch (r) {
	case 201:
		*s = "fake: no usable context (cuCtxPushCurrent needs a retained primary context; cuMemAlloc, cuMemFree and the synchronous copies a pushed one)";
		break;
	case 400:
		*s = "fake: not a live stream or event handle";
		break;
	case 702:
		*s = "fake: the wait deadlocked behind the resident kernel (see stderr)";
		break;
	case 801:
		*s = "fake: only dm_unpack_kernel runs here";
		break;
	default:
		*s = "fake driver failure as requested";
	}
	return 0;
}

static CUresult f_Init(unsigned int flags) { FAIL_IF("cuInit"); return 0; }

static CUresult f_DeviceGetCount(int *n)
{
	FAIL_IF("cuDeviceGetCount");
	*n = env_int("GPUD_FAKE_DEVICES", 1);
	return 0;
}

static CUresult f_DeviceGet(int *dev, int ord)
{
	FAIL_IF("cuDeviceGet");
	if (ord >= env_int("GPUD_FAKE_DEVICES", 1))
		return 101;
	*dev = ord;
	return 0;
}

static CUresult f_DeviceGetName(char *name, int len, int dev)
{
	FAIL_IF("cuDeviceGetName");
	strncpy(name, "Fake GPU", (size_t)len);
	return 0;
}

static CUresult f_DeviceGetAttribute(int *v, int attr, int dev)
{
	FAIL_IF("cuDeviceGetAttribute");
	if (attr == 124)
		*v = env_int("GPUD_FAKE_DMABUF_ATTR", 1);
	else if (attr == 118)
		*v = 0;	/* no native ordering: reads must flush */
	else
		*v = 0;
	return 0;
}

static CUresult f_DeviceGetPCIBusId(char *bus, int len, int dev)
{
	FAIL_IF("cuDeviceGetPCIBusId");
	strncpy(bus, "0000:01:00.0", (size_t)len);
	return 0;
}

static CUresult f_DevicePrimaryCtxRetain(void **ctx, int dev)
{
	FAIL_IF("cuDevicePrimaryCtxRetain");
	ctx_refs++;
	*ctx = &fake_ctx;
	return 0;
}

static CUresult f_DevicePrimaryCtxRelease(int dev)
{
	FAIL_IF("cuDevicePrimaryCtxRelease");
	if (ctx_refs <= 0)
		return 201;
	ctx_refs--;
	return 0;
}

static CUresult f_CtxPushCurrent(void *ctx)
{
	FAIL_IF("cuCtxPushCurrent");
	if (ctx != &fake_ctx || ctx_refs <= 0)
		return 201;	/* CUDA_ERROR_INVALID_CONTEXT */
	ctx_depth++;
	return 0;
}

static CUresult f_CtxPopCurrent(void **ctx)
{
	FAIL_IF("cuCtxPopCurrent");
	if (ctx_depth <= 0)
		return 201;
	ctx_depth--;
	*ctx = &fake_ctx;
	return 0;
}

static CUresult f_MemAlloc(CUdeviceptr *p, size_t size)
{
	void *m;

	FAIL_IF("cuMemAlloc");
	if (ctx_depth <= 0)
		return 201;
	/* 2 MiB aligned like a GPU page; posix_memalign: size need not be a multiple */
	if (posix_memalign(&m, 2u << 20, size ? size : 1))
		return 2;
	live_allocs++;
	*p = (CUdeviceptr)(uintptr_t)m;
	return 0;
}

/* Synchronises like cuCtxSynchronize first: queued ops may still use it. */
static CUresult f_MemFree(CUdeviceptr p)
{
	CUresult r;

	log_call(LOG_SYNC, "cuMemFree");
	FAIL_IF("cuMemFree");
	if (ctx_depth <= 0)
		return 201;
	r = ctx_sync("cuMemFree");
	if (r)
		return r;	/* deadlocked: the memory stays allocated */
	free((void *)(uintptr_t)p);
	live_allocs--;
	return 0;
}

static CUresult f_PointerSetAttribute(const void *v, int attr, CUdeviceptr p)
{
	FAIL_IF("cuPointerSetAttribute");
	return attr == 6 && *(const unsigned int *)v == 1 ? 0 : 1;
}

static CUresult f_MemGetHandleForAddressRange(void *handle, CUdeviceptr p, size_t size, int type,
					       unsigned long long flags)
{
	int fd;

	FAIL_IF("cuMemGetHandleForAddressRange");
	if (type != 1)
		return 1;
	/* Like a PCIe host that is not cache-coherent: the PCIe type is refused. */
	if (flags == 1) {
		pcie_tries++;
		return 1;
	}
	fd = memfd_create("fake-cuda-dmabuf", MFD_CLOEXEC);
	if (fd < 0)
		return 304;
	if (ftruncate(fd, (off_t)size)) {
		close(fd);
		return 304;
	}
	*(int *)handle = fd;
	return 0;
}

static CUresult f_MemcpyHtoD(CUdeviceptr d, const void *s, size_t n)
{
	log_call(LOG_SYNC, "cuMemcpyHtoD");
	FAIL_IF("cuMemcpyHtoD");
	if (ctx_depth <= 0)
		return 201;
	return copy_sync("cuMemcpyHtoD", (void *)(uintptr_t)d, s, n);
}

static CUresult f_MemcpyDtoH(void *d, CUdeviceptr s, size_t n)
{
	log_call(LOG_SYNC, "cuMemcpyDtoH");
	FAIL_IF("cuMemcpyDtoH");
	if (ctx_depth <= 0)
		return 201;
	return copy_sync("cuMemcpyDtoH", d, (const void *)(uintptr_t)s, n);
}

static CUresult f_MemcpyDtoD(CUdeviceptr d, CUdeviceptr s, size_t n)
{
	log_call(LOG_SYNC, "cuMemcpyDtoD");
	FAIL_IF("cuMemcpyDtoD");
	if (!ctx_current())
		return 201;
	return copy_sync("cuMemcpyDtoD", (void *)(uintptr_t)d, (const void *)(uintptr_t)s, n);
}

static CUresult f_FlushGPUDirectRDMAWrites(int target, int scope)
{
	FAIL_IF("cuFlushGPUDirectRDMAWrites");
	flushes++;
	return target == 0 && scope == 100 ? 0 : 1;
}

/* ---- what the NCCL plugin uses besides ---- */
static CUresult f_PointerGetAttribute(void *data, int attr, CUdeviceptr p)
{
	FAIL_IF("cuPointerGetAttribute");
	if (attr != 1)	/* CU_POINTER_ATTRIBUTE_CONTEXT */
		return 1;
	*(void **)data = &fake_ctx;
	return 0;
}

static CUresult f_CtxSetCurrent(void *ctx)
{
	FAIL_IF("cuCtxSetCurrent");
	if (ctx && ctx != &fake_ctx)
		return 201;
	cur_ctx = ctx;
	return 0;
}

static CUresult f_CtxGetCurrent(void **ctx)
{
	FAIL_IF("cuCtxGetCurrent");
	*ctx = cur_ctx;
	return 0;
}

static CUresult f_CtxGetDevice(int *dev)
{
	FAIL_IF("cuCtxGetDevice");
	if (!cur_ctx)
		return 201;
	*dev = 0;
	return 0;
}

static CUresult f_CtxSynchronize(void)
{
	log_call(LOG_SYNC, "cuCtxSynchronize");
	FAIL_IF("cuCtxSynchronize");
	return ctx_sync("cuCtxSynchronize");
}

static CUresult f_MemHostAlloc(void **p, size_t size, unsigned int flags)
{
	size_t len = (size + 4095) & ~(size_t)4095;
	void *m;

	FAIL_IF("cuMemHostAlloc");
	if (!cur_ctx && ctx_depth <= 0)
		return 201;
	m = aligned_alloc(4096, len);
	if (!m)
		return 2;
	if (!pin_add(m, len)) {
		free(m);
		return 2;
	}
	host_allocs++;
	*p = m;
	return 0;
}

/* Synchronises like cuCtxSynchronize first, as the driver does. */
static CUresult f_MemFreeHost(void *p)
{
	CUresult r;

	log_call(LOG_SYNC, "cuMemFreeHost");
	FAIL_IF("cuMemFreeHost");
	r = ctx_sync("cuMemFreeHost");
	if (r)
		return r;	/* deadlocked: the memory stays allocated */
	pin_del(p);
	free(p);
	host_allocs--;
	return 0;
}

static CUresult f_MemHostGetDevicePointer(CUdeviceptr *d, void *p, unsigned int flags)
{
	FAIL_IF("cuMemHostGetDevicePointer");
	*d = (CUdeviceptr)(uintptr_t)p;
	return 0;
}

static CUresult f_MemHostRegister(void *p, size_t size, unsigned int flags)
{
	FAIL_IF("cuMemHostRegister");
	return pin_add(p, size) ? 0 : 2;
}

static CUresult f_MemHostUnregister(void *p)
{
	FAIL_IF("cuMemHostUnregister");
	pin_del(p);
	return 0;
}

static CUresult f_ModuleLoadData(void **mod, const void *image)
{
	FAIL_IF("cuModuleLoadData");
	*mod = &fake_ctx;
	return 0;
}

static CUresult f_ModuleGetFunction(void **fn, void *mod, const char *name)
{
	FAIL_IF("cuModuleGetFunction");
	*fn = !strcmp(name, FAKE_CUDA_UNPACK_KERNEL) ? (void *)&unpack_fn : (void *)&fake_ctx;
	return 0;
}

/*
 * dm_unpack_kernel runs as a CPU op: its arguments are read now, as the
 * driver copies them at launch; its entries and pool bytes when it runs.
 */
static CUresult f_LaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
			       unsigned by, unsigned bz, unsigned shmem, void *stream,
			       void **params, void **extra)
{
	struct op *op;

	if (fn != &unpack_fn)
		return FAKE_CUDA_ERROR_NOT_SUPPORTED;	/* no other GPU code runs here */
	if (!params || !params[0] || !params[1] || !params[2] || !params[3])
		return FAKE_CUDA_ERROR_INVALID_VALUE;
	op = op_new(OP_UNPACK);
	if (op) {
		op->u.unpack.e = *(const struct fake_cuda_unpack_entry *const *)params[0];
		op->u.unpack.n = *(const unsigned int *)params[1];
		op->u.unpack.pool = *(const char *const *)params[2];
		op->u.unpack.dst = *(char *const *)params[3];
	}
	return submit("cuLaunchKernel", stream, op, NULL, 0, NULL);
}

/* ---- streams, events and async work ---- */

static CUresult f_StreamCreate(void **out, unsigned int flags)
{
	struct fstream *s;

	FAIL_IF("cuStreamCreate");
	if (!out)
		return FAKE_CUDA_ERROR_INVALID_VALUE;
	if (!ctx_current())
		return FAKE_CUDA_ERROR_INVALID_CONTEXT;
	model_lock();
	s = stream_new(flags & FAKE_CU_STREAM_NON_BLOCKING ? FS_NONBLOCKING : FS_BLOCKING);
	model_unlock();
	if (!s)
		return CU_ENOMEM;
	*out = s;
	return 0;
}

/* Queued work still runs, as on a GPU; the stream is reused after. */
static CUresult f_StreamDestroy(void *h)
{
	struct fstream *s = NULL;

	FAIL_IF("cuStreamDestroy");
	model_lock();
	if (h && h != FAKE_CU_STREAM_LEGACY && h != FAKE_CU_STREAM_PER_THREAD)
		s = stream_of(h);
	if (s)
		s->destroyed = true;
	model_unlock();
	return s ? 0 : FAKE_CUDA_ERROR_INVALID_HANDLE;
}

static CUresult f_StreamSynchronize(void *h)
{
	struct target t;
	CUresult r;

	model_lock();
	t.s = stream_of(h);
	t.seq = M.seq;
	if (t.s && t.s->kind != FS_NONBLOCKING)
		log_locked(LOG_SYNC, "cuStreamSynchronize");
	r = t.s ? fail("cuStreamSynchronize") : FAKE_CUDA_ERROR_INVALID_HANDLE;
	if (!r)
		r = wait_for(&t, "cuStreamSynchronize", 0);
	model_unlock();
	return r;
}

static CUresult f_StreamQuery(void *h)
{
	struct target t;
	CUresult r;

	FAIL_IF("cuStreamQuery");
	model_lock();
	t.s = stream_of(h);
	t.seq = M.seq;
	if (!t.s)
		r = FAKE_CUDA_ERROR_INVALID_HANDLE;
	else
		r = target_done(&t) ? 0 : FAKE_CUDA_ERROR_NOT_READY;
	model_unlock();
	return r;
}

static CUresult f_EventCreate(void **out, unsigned int flags)
{
	struct fevent *e;

	FAIL_IF("cuEventCreate");
	if (!out)
		return FAKE_CUDA_ERROR_INVALID_VALUE;
	if (!ctx_current())
		return FAKE_CUDA_ERROR_INVALID_CONTEXT;
	e = calloc(1, sizeof(*e));
	if (!e)
		return CU_ENOMEM;
	model_lock();
	e->next = M.events;
	M.events = e;
	model_unlock();
	*out = e;
	return 0;
}

static CUresult f_EventDestroy(void *h)
{
	struct fevent **pp, *e = NULL;

	FAIL_IF("cuEventDestroy");
	model_lock();
	for (pp = &M.events; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			e = *pp;
			*pp = e->next;
			break;
		}
	}
	model_unlock();
	free(e);
	return e ? 0 : FAKE_CUDA_ERROR_INVALID_HANDLE;
}

static CUresult f_EventRecord(void *e, void *h)
{
	return submit("cuEventRecord", h, op_new(OP_RECORD), NULL, 0, e);
}

static CUresult f_EventQuery(void *h)
{
	struct fevent *e = h;
	struct target t;
	CUresult r = 0;

	FAIL_IF("cuEventQuery");
	model_lock();
	if (!event_known(e)) {
		r = FAKE_CUDA_ERROR_INVALID_HANDLE;
	} else if (e->s) {
		t = (struct target){ e->s, e->seq };
		r = target_done(&t) ? 0 : FAKE_CUDA_ERROR_NOT_READY;
	}
	model_unlock();
	return r;
}

static CUresult f_EventSynchronize(void *h)
{
	struct fevent *e = h;
	struct target t;
	CUresult r;

	model_lock();
	if (!event_known(e)) {
		r = FAKE_CUDA_ERROR_INVALID_HANDLE;
	} else {
		if (e->s && e->sync_class)
			log_locked(LOG_SYNC, "cuEventSynchronize");
		r = fail("cuEventSynchronize");
	}
	if (!r && e->s) {
		t = (struct target){ e->s, e->seq };
		r = wait_for(&t, "cuEventSynchronize", 0);
	}
	model_unlock();
	return r;
}

static struct op *copy_op(void *dst, const void *src, size_t n)
{
	struct op *op = op_new(OP_COPY);

	if (op) {
		op->u.copy.dst = dst;
		op->u.copy.src = src;
		op->u.copy.n = n;
	}
	return op;
}

static CUresult f_MemcpyHtoDAsync(CUdeviceptr d, const void *s, size_t n, void *h)
{
	return submit("cuMemcpyHtoDAsync", h, copy_op((void *)(uintptr_t)d, s, n), s, n, NULL);
}

static CUresult f_MemcpyDtoHAsync(void *d, CUdeviceptr s, size_t n, void *h)
{
	return submit("cuMemcpyDtoHAsync", h, copy_op(d, (const void *)(uintptr_t)s, n), d, n,
		      NULL);
}

static CUresult f_MemcpyDtoDAsync(CUdeviceptr d, CUdeviceptr s, size_t n, void *h)
{
	return submit("cuMemcpyDtoDAsync", h,
		      copy_op((void *)(uintptr_t)d, (const void *)(uintptr_t)s, n), NULL, 0, NULL);
}

static CUresult f_MemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, void *h)
{
	struct op *op = op_new(OP_MEMSET);

	if (op) {
		op->u.set.dst = (void *)(uintptr_t)d;
		op->u.set.v = v;
		op->u.set.n = n;
	}
	return submit("cuMemsetD8Async", h, op, NULL, 0, NULL);
}

static CUresult f_LaunchHostFunc(void *h, void (*fn)(void *), void *data)
{
	struct op *op;

	if (!fn)
		return FAKE_CUDA_ERROR_INVALID_VALUE;
	op = op_new(OP_HOSTFN);
	if (op) {
		op->u.host.fn = fn;
		op->u.host.data = data;
	}
	return submit("cuLaunchHostFunc", h, op, NULL, 0, NULL);
}

static const struct {
	const char *name;
	void *fn;
} table[] = {
#define E(n) { "cu" #n, (void *)f_##n }
	E(GetErrorName), E(GetErrorString), E(Init), E(DeviceGetCount), E(DeviceGet),
	E(DeviceGetName), E(DeviceGetAttribute), E(DeviceGetPCIBusId),
	E(DevicePrimaryCtxRetain), E(DevicePrimaryCtxRelease), E(CtxPushCurrent),
	E(CtxPopCurrent), E(MemAlloc), E(MemFree), E(PointerSetAttribute),
	E(MemGetHandleForAddressRange), E(MemcpyHtoD), E(MemcpyDtoH),
	E(FlushGPUDirectRDMAWrites),
	E(PointerGetAttribute), E(CtxSetCurrent), E(CtxGetCurrent), E(CtxGetDevice),
	E(CtxSynchronize), E(MemHostAlloc), E(MemFreeHost), E(MemHostGetDevicePointer),
	E(MemHostRegister), E(MemHostUnregister), E(ModuleLoadData), E(ModuleGetFunction),
	E(LaunchKernel),
	E(StreamCreate), E(StreamDestroy), E(StreamSynchronize), E(StreamQuery),
	E(EventCreate), E(EventDestroy), E(EventRecord), E(EventQuery), E(EventSynchronize),
	E(MemcpyHtoDAsync), E(MemcpyDtoHAsync), E(MemcpyDtoDAsync), E(MemcpyDtoD),
	E(MemsetD8Async), E(LaunchHostFunc),
	/* the names cuda.h's macros give when dlsym'ed directly */
	{ "cuStreamDestroy_v2", (void *)f_StreamDestroy },
	{ "cuEventDestroy_v2", (void *)f_EventDestroy },
#undef E
};

EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version,
				    unsigned long long flags, int *status)
{
	const char *missing = getenv("GPUD_FAKE_MISSING");

	*pfn = NULL;
	if (missing && !strcmp(missing, symbol)) {
		if (status)
			*status = 1;	/* CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND */
		return 500;		/* CUDA_ERROR_NOT_FOUND */
	}
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (!strcmp(table[i].name, symbol)) {
			*pfn = table[i].fn;
			if (status)
				*status = 0;
			return 0;
		}
	}
	if (status)
		*status = 1;
	return 500;
}

/* ---- NVML, for the BAR1 headroom text ---- */
struct bar1 {
	unsigned long long total, free, used;
};
static int nvml_refs;

EXPORT int nvmlInit_v2(void) { nvml_refs++; return 0; }
EXPORT int nvmlShutdown(void) { nvml_refs--; return 0; }
EXPORT int nvmlDeviceGetHandleByPciBusId_v2(const char *bus, void **dev)
{
	*dev = &fake_ctx;
	return strcmp(bus, "0000:01:00.0") ? 6 : 0;
}
EXPORT int nvmlDeviceGetBAR1MemoryInfo(void *dev, struct bar1 *b)
{
	b->total = 256ull << 20;
	b->used = 32ull << 20;
	b->free = b->total - b->used;
	return 0;
}
