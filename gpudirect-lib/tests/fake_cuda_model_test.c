// SPDX-License-Identifier: MIT
/*
 * The fake libcuda's model of CUDA's concurrency (tests/fakes/fake_cuda.c)
 * checked against the rules it claims, with real threads: if the model is
 * wrong, the plugin tests that lean on it prove nothing. Each scenario runs
 * in its own child process, so a resident kernel or a queued op left by one
 * cannot leak into the next.
 */
#define _GNU_SOURCE
#include "mem_util.h"
#include "fakes/fake_cuda.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef void *CUstream;
typedef void *CUevent;

/* Stream ops run no earlier than this after submission (GPUD_FAKE_COPY_DELAY_US). */
#define DELAY_US 20000
#define DELAY_S (DELAY_US / 1e6)
#define BLOCK_MS 300
#define N 4096

static struct {
	CUresult (*ctx_retain)(void **ctx, int dev);
	CUresult (*ctx_push)(void *ctx);
	CUresult (*mem_alloc)(CUdeviceptr *p, size_t n);
	CUresult (*mem_free)(CUdeviceptr p);
	CUresult (*htod)(CUdeviceptr d, const void *s, size_t n);
	CUresult (*dtoh)(void *d, CUdeviceptr s, size_t n);
	CUresult (*dtod)(CUdeviceptr d, CUdeviceptr s, size_t n);
	CUresult (*ctx_sync)(void);
	CUresult (*host_alloc)(void **p, size_t n, unsigned int flags);
	CUresult (*free_host)(void *p);
	CUresult (*host_register)(void *p, size_t n, unsigned int flags);
	CUresult (*host_unregister)(void *p);
	CUresult (*stream_create)(CUstream *s, unsigned int flags);
	CUresult (*stream_destroy)(CUstream s);
	CUresult (*stream_destroy_v2)(CUstream s);
	CUresult (*stream_sync)(CUstream s);
	CUresult (*stream_query)(CUstream s);
	CUresult (*event_create)(CUevent *e, unsigned int flags);
	CUresult (*event_destroy)(CUevent e);
	CUresult (*event_record)(CUevent e, CUstream s);
	CUresult (*event_query)(CUevent e);
	CUresult (*event_sync)(CUevent e);
	CUresult (*htod_async)(CUdeviceptr d, const void *s, size_t n, CUstream st);
	CUresult (*dtoh_async)(void *d, CUdeviceptr s, size_t n, CUstream st);
	CUresult (*dtod_async)(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st);
	CUresult (*memset_async)(CUdeviceptr d, unsigned char v, size_t n, CUstream st);
	CUresult (*host_func)(CUstream st, void (*fn)(void *), void *data);
	CUresult (*mod_load)(void **mod, const void *image);
	CUresult (*mod_func)(void **fn, void *mod, const char *name);
	CUresult (*launch)(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
			   unsigned by, unsigned bz, unsigned shmem, CUstream st, void **params,
			   void **extra);
} cu;

static struct {
	__typeof__(fake_cuda_thread_role) *thread_role;
	__typeof__(fake_cuda_resident_start) *resident_start;
	__typeof__(fake_cuda_resident_finish) *resident_finish;
	__typeof__(fake_cuda_sync_calls) *sync_calls;
	__typeof__(fake_cuda_deadlocks) *deadlocks;
	__typeof__(fake_cuda_pageable_async) *pageable;
	__typeof__(fake_cuda_pending_ops) *pending;
	__typeof__(fake_cuda_model_reset) *reset;
	__typeof__(fake_cuda_live_allocs) *live_allocs;
	__typeof__(fake_cuda_host_allocs) *host_allocs;
} fk;

static void *lib;

static void *sym(const char *name)
{
	void *p = dlsym(lib, name);

	if (!p)
		T_FAIL("the fake exports no %s", name);
	return p;
}

static void load(void)
{
	CUresult (*gpa)(const char *, void **, int, unsigned long long, int *);
	static const struct {
		const char *name;
		void **fn;
	} fns[] = {
		{ "cuDevicePrimaryCtxRetain", (void **)&cu.ctx_retain },
		{ "cuCtxPushCurrent", (void **)&cu.ctx_push },
		{ "cuMemAlloc", (void **)&cu.mem_alloc },
		{ "cuMemFree", (void **)&cu.mem_free },
		{ "cuMemcpyHtoD", (void **)&cu.htod },
		{ "cuMemcpyDtoH", (void **)&cu.dtoh },
		{ "cuMemcpyDtoD", (void **)&cu.dtod },
		{ "cuCtxSynchronize", (void **)&cu.ctx_sync },
		{ "cuMemHostAlloc", (void **)&cu.host_alloc },
		{ "cuMemFreeHost", (void **)&cu.free_host },
		{ "cuMemHostRegister", (void **)&cu.host_register },
		{ "cuMemHostUnregister", (void **)&cu.host_unregister },
		{ "cuStreamCreate", (void **)&cu.stream_create },
		{ "cuStreamDestroy", (void **)&cu.stream_destroy },
		{ "cuStreamDestroy_v2", (void **)&cu.stream_destroy_v2 },
		{ "cuStreamSynchronize", (void **)&cu.stream_sync },
		{ "cuStreamQuery", (void **)&cu.stream_query },
		{ "cuEventCreate", (void **)&cu.event_create },
		{ "cuEventDestroy", (void **)&cu.event_destroy },
		{ "cuEventRecord", (void **)&cu.event_record },
		{ "cuEventQuery", (void **)&cu.event_query },
		{ "cuEventSynchronize", (void **)&cu.event_sync },
		{ "cuMemcpyHtoDAsync", (void **)&cu.htod_async },
		{ "cuMemcpyDtoHAsync", (void **)&cu.dtoh_async },
		{ "cuMemcpyDtoDAsync", (void **)&cu.dtod_async },
		{ "cuMemsetD8Async", (void **)&cu.memset_async },
		{ "cuLaunchHostFunc", (void **)&cu.host_func },
		{ "cuModuleLoadData", (void **)&cu.mod_load },
		{ "cuModuleGetFunction", (void **)&cu.mod_func },
		{ "cuLaunchKernel", (void **)&cu.launch },
	};
	void *ctx;

	setenv("GPUD_FAKE_COPY_DELAY_US", "20000", 1);
	setenv("GPUD_FAKE_BLOCK_MS", "300", 1);
	lib = dlopen(FAKE_CUDA_PATH, RTLD_NOW);
	if (!lib)
		T_FAIL("dlopen %s: %s", FAKE_CUDA_PATH, dlerror());
	*(void **)&gpa = sym("cuGetProcAddress_v2");
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		int status = -1;

		if (gpa(fns[i].name, fns[i].fn, 13000, 0, &status) || status || !*fns[i].fn)
			T_FAIL("cuGetProcAddress_v2(%s) found nothing", fns[i].name);
	}
	*(void **)&fk.thread_role = sym("fake_cuda_thread_role");
	*(void **)&fk.resident_start = sym("fake_cuda_resident_start");
	*(void **)&fk.resident_finish = sym("fake_cuda_resident_finish");
	*(void **)&fk.sync_calls = sym("fake_cuda_sync_calls");
	*(void **)&fk.deadlocks = sym("fake_cuda_deadlocks");
	*(void **)&fk.pageable = sym("fake_cuda_pageable_async");
	*(void **)&fk.pending = sym("fake_cuda_pending_ops");
	*(void **)&fk.reset = sym("fake_cuda_model_reset");
	*(void **)&fk.live_allocs = sym("fake_cuda_live_allocs");
	*(void **)&fk.host_allocs = sym("fake_cuda_host_allocs");
	/* the synchronous copies and cuMemAlloc/Free want a pushed context */
	T_ASSERT_EQ(0, cu.ctx_retain(&ctx, 0));
	T_ASSERT_EQ(0, cu.ctx_push(ctx));
}

/* ---- helpers ---- */

/* What a scenario allocated, freed when it ends (LeakSanitizer checks). */
static struct {
	CUdeviceptr dev[8];
	void *host[8];
	int ndev, nhost;
} owned;

static CUdeviceptr dev_alloc(unsigned char fill)
{
	CUdeviceptr d = 0;

	T_ASSERT((size_t)owned.ndev < sizeof(owned.dev) / sizeof(owned.dev[0]));
	T_ASSERT_EQ(0, cu.mem_alloc(&d, N));
	memset((void *)(uintptr_t)d, fill, N);	/* device memory is host memory here */
	owned.dev[owned.ndev++] = d;
	return d;
}

static unsigned char *pinned(unsigned char fill)
{
	void *p = NULL;

	T_ASSERT((size_t)owned.nhost < sizeof(owned.host) / sizeof(owned.host[0]));
	T_ASSERT_EQ(0, cu.host_alloc(&p, N, 0));
	memset(p, fill, N);
	owned.host[owned.nhost++] = p;
	return p;
}

/* A scenario freed @d or @h itself. */
static void disown(CUdeviceptr d, void *h)
{
	for (int i = 0; i < owned.ndev; i++)
		if (d && owned.dev[i] == d)
			owned.dev[i] = 0;
	for (int i = 0; i < owned.nhost; i++)
		if (h && owned.host[i] == h)
			owned.host[i] = NULL;
}

/* Nothing may be left running: the frees synchronise, and must not deadlock. */
static void free_owned(void)
{
	for (int i = 0; i < owned.ndev; i++)
		if (owned.dev[i])
			T_ASSERT_EQ(0, cu.mem_free(owned.dev[i]));
	for (int i = 0; i < owned.nhost; i++)
		if (owned.host[i])
			T_ASSERT_EQ(0, cu.free_host(owned.host[i]));
	T_ASSERT_EQ(0, fk.live_allocs());
	T_ASSERT_EQ(0, fk.host_allocs());
	T_ASSERT_EQ(0, fk.pending());
}

static unsigned char *D(CUdeviceptr d)
{
	return (unsigned char *)(uintptr_t)d;
}

static CUstream stream(unsigned int flags)
{
	CUstream s = NULL;

	T_ASSERT_EQ(0, cu.stream_create(&s, flags));
	T_ASSERT(s != NULL);
	return s;
}

static CUevent record(CUstream s)
{
	CUevent e = NULL;

	T_ASSERT_EQ(0, cu.event_create(&e, 0));
	T_ASSERT_EQ(0, cu.event_record(e, s));
	return e;
}

/* Polls like a plugin's test(): the event must complete within 2 s. */
static void poll_event(CUevent e)
{
	double t0 = t_now();
	CUresult r;

	while ((r = cu.event_query(e)) == FAKE_CUDA_ERROR_NOT_READY) {
		if (t_now() - t0 > 2)
			T_FAIL("event still not ready after 2 s");
		usleep(1000);
	}
	T_ASSERT_EQ(0, r);
}

/* Ops get the delay several times over; what did not run by then waits. */
static void let_run(void)
{
	usleep(5 * DELAY_US);
}

/*
 * Whether we looked soon enough after submitting at @t0 for "not yet" to be
 * a promise of the model (the fake guarantees only "no earlier than").
 */
static bool early(double t0)
{
	return t_now() - t0 < DELAY_S * 0.8;
}

static void all_bytes(const unsigned char *p, unsigned char v, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			T_FAIL("%s: byte %zu: expected 0x%02x, got 0x%02x", what, i, v, p[i]);
}

static void has(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		T_FAIL("expected \"%s\" in:\n%s", needle, text);
}

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* Runs @fn on a new thread with role @role (NULL: none) and joins it. */
struct job {
	const char *role;
	void (*fn)(void *);
	void *arg;
};

static void *job_main(void *p)
{
	struct job *j = p;

	if (j->role)
		fk.thread_role(j->role);
	j->fn(j->arg);
	return NULL;
}

static void on_thread(const char *role, void (*fn)(void *), void *arg)
{
	struct job j = { role, fn, arg };
	pthread_t t;

	T_ASSERT_EQ(0, pthread_create(&t, NULL, job_main, &j));
	T_ASSERT_EQ(0, pthread_join(t, NULL));
}

/* A call that must deadlock: 702 at about GPUD_FAKE_BLOCK_MS. */
static void expect_deadlock(CUresult r, double t0, const char *call)
{
	double dt = t_now() - t0;

	if (r != FAKE_CUDA_ERROR_LAUNCH_TIMEOUT)
		T_FAIL("%s: expected 702 (deadlock), got %d after %.3f s", call, r, dt);
	if (dt < BLOCK_MS / 1e3 * 0.9 || dt > BLOCK_MS / 1e3 + 2)
		T_FAIL("%s: gave up after %.3f s, expected about %.3f s", call, dt, BLOCK_MS / 1e3);
}

/* ---- scenarios ---- */

static void async_lands_after_event(void)
{
	unsigned char *src = pinned(0x5a);
	CUdeviceptr dst = dev_alloc(0xaa);
	CUstream s = stream(FAKE_CU_STREAM_NON_BLOCKING);
	CUevent never, e;
	double t0;

	T_ASSERT_EQ(0, cu.event_create(&never, 0));
	T_ASSERT_EQ(0, cu.event_query(never));	/* never recorded: complete */
	t0 = t_now();
	T_ASSERT_EQ(0, cu.htod_async(dst, src, N, s));
	e = record(s);
	if (early(t0)) {
		T_ASSERT_EQ(0xaa, D(dst)[0]);	/* stale: the copy has not run */
		T_ASSERT_EQ(FAKE_CUDA_ERROR_NOT_READY, cu.event_query(e));
		T_ASSERT_EQ(FAKE_CUDA_ERROR_NOT_READY, cu.stream_query(s));
		T_ASSERT_EQ(2, fk.pending());
	} else {
		t_log("slow machine: stale-before-event checks skipped (%.3f s)", t_now() - t0);
	}
	poll_event(e);
	T_ASSERT(t_now() - t0 >= DELAY_S);	/* no earlier than the delay */
	all_bytes(D(dst), 0x5a, N, "destination once the event completed");
	T_ASSERT_EQ(0, cu.stream_query(s));
	T_ASSERT_EQ(0, fk.pending());
	T_ASSERT_EQ(0, cu.event_destroy(e));
	T_ASSERT_EQ(0, cu.event_destroy(never));
	T_ASSERT_EQ(0, cu.stream_destroy(s));
}

static void staging_read_at_dma_time(void)
{
	unsigned char *staging = pinned('A'), *back = pinned(0);
	CUdeviceptr dst = dev_alloc(0);
	CUstream s = stream(FAKE_CU_STREAM_NON_BLOCKING);
	double t0 = t_now();
	bool in_time;
	CUevent e;

	T_ASSERT_EQ(0, cu.htod_async(dst, staging, N, s));
	/* the bug: staging reused before the copy's event completed */
	memset(staging, 'B', N);
	in_time = early(t0);
	e = record(s);
	poll_event(e);
	if (in_time)
		all_bytes(D(dst), 'B', N, "destination of a copy whose staging was overwritten");
	else
		t_log("slow machine: staging reused after the delay, check skipped");

	/* the other way: the device source is read when the copy runs too */
	t0 = t_now();
	T_ASSERT_EQ(0, cu.dtoh_async(back, dst, N, s));
	memset(D(dst), 'C', N);
	in_time = early(t0);
	T_ASSERT_EQ(0, cu.event_record(e, s));
	T_ASSERT_EQ(0, cu.event_sync(e));
	if (in_time)
		all_bytes(back, 'C', N, "host destination of DtoH");
	T_ASSERT_EQ(0, cu.stream_destroy(s));
}

struct fifo_ctx {
	int order[8];
	int n;
	unsigned char seen[8];	/* dst[0] when each host function ran */
	const unsigned char *dst;
	pthread_t caller;
	bool on_caller;
	CUstream s;
	CUresult inner_sync;
};

static void fifo_mark(void *p)
{
	struct fifo_ctx *f = p;

	f->seen[f->n] = f->dst[0];
	f->order[f->n] = f->n + 1;
	f->n++;
	f->on_caller |= pthread_equal(pthread_self(), f->caller);
}

static void fifo_inner_sync(void *p)
{
	struct fifo_ctx *f = p;

	/* a host function must not wait for the stream that runs it */
	f->inner_sync = cu.stream_sync(f->s);
	fifo_mark(p);
}

static void fifo_and_host_funcs(void)
{
	unsigned char *a = pinned('a'), *b = pinned('b');
	CUdeviceptr dst = dev_alloc(0);
	struct fifo_ctx f = { .dst = D(dst), .caller = pthread_self() };
	CUstream s = stream(0), other = stream(FAKE_CU_STREAM_NON_BLOCKING);
	CUevent e;

	f.s = s;
	T_ASSERT_EQ(0, cu.host_func(s, fifo_mark, &f));		/* 1: before anything */
	T_ASSERT_EQ(0, cu.htod_async(dst, a, N, s));
	T_ASSERT_EQ(0, cu.host_func(s, fifo_mark, &f));		/* 2: after 'a' */
	T_ASSERT_EQ(0, cu.memset_async(dst, 'm', N, s));
	T_ASSERT_EQ(0, cu.host_func(s, fifo_inner_sync, &f));	/* 3: after 'm' */
	T_ASSERT_EQ(0, cu.htod_async(dst, b, 16, s));
	T_ASSERT_EQ(0, cu.memset_async(dst + 16, 'o', 16, other));	/* another stream */
	e = record(s);
	T_ASSERT_EQ(FAKE_CUDA_ERROR_INVALID_VALUE, cu.host_func(s, NULL, NULL));
	T_ASSERT_EQ(0, cu.stream_sync(s));
	T_ASSERT_EQ(0, cu.event_query(e));
	T_ASSERT_EQ(3, f.n);
	for (int i = 0; i < 3; i++)
		T_ASSERT_EQ(i + 1, f.order[i]);
	T_ASSERT_EQ(0, f.seen[0]);
	T_ASSERT_EQ('a', f.seen[1]);
	T_ASSERT_EQ('m', f.seen[2]);
	T_ASSERT(!f.on_caller);	/* they ran on the fake's engine thread */
	T_ASSERT_EQ(800, f.inner_sync);	/* CUDA_ERROR_NOT_PERMITTED */
	T_ASSERT_EQ(0, cu.stream_sync(other));
	all_bytes(D(dst), 'b', 16, "last copy in stream order");
	all_bytes(D(dst) + 16, 'o', 16, "the other stream's memset");
	all_bytes(D(dst) + 32, 'm', N - 32, "memset in stream order");
}

struct sync_try {
	CUresult r;
	double t0;
	CUdeviceptr d;
	void *h;
	const unsigned char *src;
	CUstream s;
};

static void try_htod(void *p)
{
	struct sync_try *t = p;

	t->t0 = t_now();
	t->r = cu.htod(t->d, t->src, N);
}

static void try_ctx_sync(void *p)
{
	struct sync_try *t = p;

	t->t0 = t_now();
	t->r = cu.ctx_sync();
}

static void try_mem_free(void *p)
{
	struct sync_try *t = p;

	t->t0 = t_now();
	t->r = cu.mem_free(t->d);
}

static void try_free_host(void *p)
{
	struct sync_try *t = p;

	t->t0 = t_now();
	t->r = cu.free_host(t->h);
}

static void try_stream_sync(void *p)
{
	struct sync_try *t = p;

	t->t0 = t_now();
	t->r = cu.stream_sync(t->s);
}

static void resident_on_blocking(void)
{
	unsigned char *src = pinned('s');
	CUdeviceptr d1 = dev_alloc(0), d2 = dev_alloc(0), d3 = dev_alloc(0), d4 = dev_alloc(0);
	CUstream sb = stream(0), sn = stream(FAKE_CU_STREAM_NON_BLOCKING);
	CUevent el, eb, ep, en;
	struct sync_try t = { .d = d4, .src = src };
	char text[2048];

	T_ASSERT_EQ(0, fk.resident_start(FAKE_STREAM_BLOCKING));
	T_ASSERT_EQ(-EBUSY, fk.resident_start(FAKE_STREAM_NONBLOCKING));
	T_ASSERT_EQ(-EINVAL, fk.resident_start(7));
	/* legacy op: waits for the earlier resident blocking stream */
	T_ASSERT_EQ(0, cu.memset_async(d1, 0x11, N, NULL));
	el = record(FAKE_CU_STREAM_LEGACY);
	/* later blocking-stream ops wait for that legacy op */
	T_ASSERT_EQ(0, cu.memset_async(d1, 0x22, 8, sb));
	eb = record(sb);
	T_ASSERT_EQ(0, cu.memset_async(d2, 0x44, N, FAKE_CU_STREAM_PER_THREAD));
	ep = record(FAKE_CU_STREAM_PER_THREAD);
	/* a non-blocking stream waits for nobody */
	T_ASSERT_EQ(0, cu.memset_async(d3, 0x33, N, sn));
	en = record(sn);
	poll_event(en);
	T_ASSERT_EQ(0, cu.event_sync(en));
	T_ASSERT_EQ(0, cu.stream_sync(sn));
	all_bytes(D(d3), 0x33, N, "non-blocking stream behind a blocking resident");
	let_run();
	T_ASSERT_EQ(FAKE_CUDA_ERROR_NOT_READY, cu.event_query(el));
	T_ASSERT_EQ(FAKE_CUDA_ERROR_NOT_READY, cu.event_query(eb));
	T_ASSERT_EQ(FAKE_CUDA_ERROR_NOT_READY, cu.event_query(ep));
	T_ASSERT_EQ(FAKE_CUDA_ERROR_NOT_READY, cu.stream_query(sb));
	T_ASSERT_EQ(FAKE_CUDA_ERROR_NOT_READY, cu.stream_query(NULL));
	all_bytes(D(d1), 0, N, "legacy memset behind a blocking resident");
	all_bytes(D(d2), 0, N, "per-thread memset behind the legacy stream");
	T_ASSERT_EQ(6, fk.pending());

	on_thread("dm-progress-1", try_htod, &t);
	expect_deadlock(t.r, t.t0, "cuMemcpyHtoD");
	on_thread("dm-progress-1", try_ctx_sync, &t);
	expect_deadlock(t.r, t.t0, "cuCtxSynchronize");
	T_ASSERT_EQ(2, fk.deadlocks(text, sizeof(text)));
	has(text, "fake-cuda: DEADLOCK: cuMemcpyHtoD on thread \"dm-progress-1\"");
	has(text, "cuCtxSynchronize on thread \"dm-progress-1\"");
	has(text, "behind the resident kernel on a blocking stream");
	T_ASSERT_EQ(6, fk.pending());	/* the synchronous copy was cancelled */

	fk.resident_finish();
	T_ASSERT_EQ(0, cu.ctx_sync());
	T_ASSERT_EQ(0, fk.pending());
	T_ASSERT_EQ(0, cu.event_query(el));
	T_ASSERT_EQ(0, cu.event_query(eb));
	T_ASSERT_EQ(0, cu.event_query(ep));
	all_bytes(D(d1), 0x22, 8, "blocking memset after the legacy one");
	all_bytes(D(d1) + 8, 0x11, N - 8, "legacy memset once drained");
	all_bytes(D(d2), 0x44, N, "per-thread memset once drained");
	all_bytes(D(d4), 0, N, "destination of the cancelled synchronous copy");
	T_ASSERT_EQ(2, fk.deadlocks(NULL, 0));
	/* and the resident slot is free again */
	T_ASSERT_EQ(0, fk.resident_start(FAKE_STREAM_BLOCKING));
	fk.resident_finish();
	T_ASSERT_EQ(0, cu.ctx_sync());
}

static void resident_on_nonblocking(void)
{
	unsigned char *src = pinned('s'), *host = pinned(0);
	CUdeviceptr d1 = dev_alloc(0), d2 = dev_alloc(0), d3 = dev_alloc(0);
	CUstream sb = stream(0);
	struct sync_try t = { .d = d3, .h = host };
	int live, hosts;
	char text[2048];
	CUevent el, eb;

	T_ASSERT_EQ(0, fk.resident_start(FAKE_STREAM_NONBLOCKING));
	T_ASSERT_EQ(0, cu.htod(d1, src, N));	/* legacy work does not wait for it */
	all_bytes(D(d1), 's', N, "synchronous copy beside a non-blocking resident");
	T_ASSERT_EQ(0, cu.memset_async(d2, 0x77, N, NULL));
	el = record(NULL);
	T_ASSERT_EQ(0, cu.memset_async(d2, 0x78, 8, sb));
	eb = record(sb);
	poll_event(el);
	poll_event(eb);
	T_ASSERT_EQ(0, cu.stream_sync(NULL));
	all_bytes(D(d2), 0x78, 8, "blocking stream beside a non-blocking resident");
	all_bytes(D(d2) + 8, 0x77, N - 8, "legacy stream beside a non-blocking resident");

	live = fk.live_allocs();
	hosts = fk.host_allocs();
	on_thread("dm-progress-0", try_ctx_sync, &t);
	expect_deadlock(t.r, t.t0, "cuCtxSynchronize");
	on_thread("dm-progress-0", try_mem_free, &t);
	expect_deadlock(t.r, t.t0, "cuMemFree");
	on_thread("dm-progress-0", try_free_host, &t);
	expect_deadlock(t.r, t.t0, "cuMemFreeHost");
	T_ASSERT_EQ(live, fk.live_allocs());	/* nothing freed under running work */
	T_ASSERT_EQ(hosts, fk.host_allocs());
	T_ASSERT_EQ(3, fk.deadlocks(text, sizeof(text)));
	has(text, "cuCtxSynchronize on thread \"dm-progress-0\"");
	has(text, "cuMemFree on thread \"dm-progress-0\"");
	has(text, "cuMemFreeHost on thread \"dm-progress-0\"");
	has(text, "on a non-blocking stream");

	fk.resident_finish();
	T_ASSERT_EQ(0, cu.mem_free(d3));
	T_ASSERT_EQ(live - 1, fk.live_allocs());
	T_ASSERT_EQ(0, cu.free_host(host));
	T_ASSERT_EQ(hosts - 1, fk.host_allocs());
	disown(d3, host);
	T_ASSERT_EQ(0, fk.pending());
}

static void resident_on_legacy(void)
{
	CUdeviceptr d1 = dev_alloc(0), d2 = dev_alloc(0);
	CUstream sb = stream(0), sn = stream(FAKE_CU_STREAM_NON_BLOCKING);
	struct sync_try t = { .s = sb };
	char text[1024];
	CUevent eb, en;

	T_ASSERT_EQ(0, fk.resident_start(FAKE_STREAM_LEGACY));
	T_ASSERT_EQ(0, cu.memset_async(d1, 0x55, N, sb));
	eb = record(sb);
	T_ASSERT_EQ(0, cu.memset_async(d2, 0x66, N, sn));
	en = record(sn);
	poll_event(en);
	all_bytes(D(d2), 0x66, N, "non-blocking stream beside a legacy resident");
	let_run();
	T_ASSERT_EQ(FAKE_CUDA_ERROR_NOT_READY, cu.event_query(eb));
	on_thread("proxy", try_stream_sync, &t);
	expect_deadlock(t.r, t.t0, "cuStreamSynchronize");
	T_ASSERT_EQ(1, fk.deadlocks(text, sizeof(text)));
	has(text, "cuStreamSynchronize on thread \"proxy\"");
	has(text, "on the legacy stream");
	fk.resident_finish();
	T_ASSERT_EQ(0, cu.stream_sync(sb));
	all_bytes(D(d1), 0x55, N, "blocking stream once the legacy resident ended");
}

struct log_ctx {
	CUstream sn, sb;
	CUdeviceptr d;
	unsigned char *src;
	pid_t tid;
};

/* What a proxy thread may do: nothing in it waits for others. */
static void proxy_work(void *p)
{
	struct log_ctx *c = p;
	CUevent e;

	T_ASSERT_EQ(0, cu.htod_async(c->d, c->src, N, c->sn));
	e = record(c->sn);
	poll_event(e);
	T_ASSERT_EQ(0, cu.stream_sync(c->sn));
	T_ASSERT_EQ(0, cu.event_sync(e));
	T_ASSERT_EQ(0, cu.event_destroy(e));
}

/* Six synchronising calls, and two that are not. */
static void progress_work(void *p)
{
	struct log_ctx *c = p;
	CUevent e;

	c->tid = gettid_();
	T_ASSERT_EQ(0, cu.ctx_sync());
	T_ASSERT_EQ(0, cu.htod(c->d, c->src, N));
	T_ASSERT_EQ(0, cu.memset_async(c->d, 0, N, NULL));
	T_ASSERT_EQ(0, cu.stream_sync(c->sb));
	T_ASSERT_EQ(0, cu.event_create(&e, 0));
	T_ASSERT_EQ(0, cu.event_record(e, NULL));
	T_ASSERT_EQ(0, cu.event_sync(e));
	T_ASSERT_EQ(0, cu.event_record(e, c->sn));	/* non-blocking: not counted */
	T_ASSERT_EQ(0, cu.event_sync(e));		/* ditto */
	T_ASSERT_EQ(0, cu.event_destroy(e));
}

static void unnamed_work(void *p)
{
	pthread_setname_np(pthread_self(), "wrk-plain");
	T_ASSERT_EQ(0, cu.stream_sync(FAKE_CU_STREAM_PER_THREAD));
}

static void call_log_names_threads(void)
{
	struct log_ctx c = { .d = dev_alloc(0), .src = pinned('x') };
	char text[2048], tid[32];

	c.sn = stream(FAKE_CU_STREAM_NON_BLOCKING);
	c.sb = stream(0);
	fk.reset();
	on_thread("proxy", proxy_work, &c);
	on_thread("dm-progress-1", progress_work, &c);
	on_thread(NULL, unnamed_work, NULL);
	T_ASSERT_EQ(0, fk.sync_calls("proxy", text, sizeof(text)));
	T_ASSERT_STREQ("", text);
	T_ASSERT_EQ(6, fk.sync_calls("dm-progress", text, sizeof(text)));
	has(text, "cuCtxSynchronize thread=\"dm-progress-1\"");
	has(text, "cuMemcpyHtoD thread=\"dm-progress-1\"");
	has(text, "cuMemsetD8Async thread=\"dm-progress-1\"");
	has(text, "cuStreamSynchronize thread=\"dm-progress-1\"");
	has(text, "cuEventRecord thread=\"dm-progress-1\"");
	has(text, "cuEventSynchronize thread=\"dm-progress-1\"");
	snprintf(tid, sizeof(tid), "tid=%d times=1", (int)c.tid);
	has(text, tid);
	T_ASSERT_EQ(0, fk.sync_calls("dm-progress-0", NULL, 0));
	T_ASSERT_EQ(1, fk.sync_calls("wrk", text, sizeof(text)));
	has(text, "cuStreamSynchronize thread=\"wrk-plain\"");
	T_ASSERT_EQ(7, fk.sync_calls("", NULL, 0));
	/* a short buffer is cut, still terminated */
	T_ASSERT_EQ(7, fk.sync_calls("", text, 10));
	T_ASSERT_EQ(9, (long long)strlen(text));
	fk.reset();
	T_ASSERT_EQ(0, fk.sync_calls("", NULL, 0));
}

static void pageable_vs_pinned(void)
{
	unsigned char *pin = pinned(1), *pageable = malloc(N), *reg = malloc(2 * N);
	CUdeviceptr d = dev_alloc(0);
	CUstream s = stream(FAKE_CU_STREAM_NON_BLOCKING);
	char text[1024];

	T_ASSERT(pageable && reg);
	memset(pageable, 2, N);
	fk.thread_role("proxy");
	fk.reset();
	T_ASSERT_EQ(0, cu.htod_async(d, pageable, N, s));
	T_ASSERT_EQ(1, fk.pageable("proxy", text, sizeof(text)));
	has(text, "cuMemcpyHtoDAsync thread=\"proxy\"");
	T_ASSERT_EQ(0, cu.htod_async(d, pin + 100, N - 100, s));	/* inside cuMemHostAlloc */
	T_ASSERT_EQ(0, cu.dtoh_async(pin, d, N, s));
	T_ASSERT_EQ(1, fk.pageable("", NULL, 0));
	T_ASSERT_EQ(0, cu.host_register(reg, N, 0));
	T_ASSERT_EQ(0, cu.htod_async(d, reg, N, s));
	T_ASSERT_EQ(0, cu.dtoh_async(reg + N - 16, d, 16, s));
	T_ASSERT_EQ(1, fk.pageable("", NULL, 0));
	T_ASSERT_EQ(0, cu.dtoh_async(reg + N - 8, d, 16, s));	/* runs past the range */
	T_ASSERT_EQ(2, fk.pageable("", NULL, 0));
	T_ASSERT_EQ(0, cu.stream_sync(s));
	T_ASSERT_EQ(0, cu.host_unregister(reg));
	T_ASSERT_EQ(0, cu.dtoh_async(reg, d, N, s));
	T_ASSERT_EQ(3, fk.pageable("", text, sizeof(text)));
	has(text, "cuMemcpyDtoHAsync thread=\"proxy\"");
	T_ASSERT_EQ(0, cu.dtod_async(d, d + 16, 16, s));	/* no host side */
	T_ASSERT_EQ(3, fk.pageable("proxy", NULL, 0));
	T_ASSERT_EQ(0, fk.pageable("dm-", NULL, 0));
	T_ASSERT_EQ(0, fk.sync_calls("", NULL, 0));	/* nothing here synchronises */
	T_ASSERT_EQ(0, cu.stream_sync(s));
	free(pageable);
	free(reg);
}

static void unpack_kernel_emulated(void)
{
	struct fake_cuda_unpack_entry *e = (void *)pinned(0);	/* metadata, GPU-mapped */
	CUdeviceptr pool = dev_alloc(0), dst = dev_alloc(0);
	CUstream s = stream(FAKE_CU_STREAM_NON_BLOCKING);
	void *mod, *fn, *other, *args[4];
	unsigned int n = 3;
	char *pool_p, *dst_p;
	const void *meta = e;
	double t0;
	CUevent ev;

	for (int i = 0; i < N; i++)
		D(pool)[i] = (unsigned char)i;
	e[0] = (struct fake_cuda_unpack_entry){ .src_off = 0, .len = 100, .dst_off = 1000 };
	e[1] = (struct fake_cuda_unpack_entry){ .src_off = 200, .len = 50, .dst_off = 0 };
	e[2] = (struct fake_cuda_unpack_entry){ .src_off = 300, .len = 10, .dst_off = 2000 };
	e[3] = (struct fake_cuda_unpack_entry){ .src_off = 400, .len = 10, .dst_off = 3000 };
	T_ASSERT_EQ(0, cu.mod_load(&mod, "fatbin"));
	T_ASSERT_EQ(0, cu.mod_func(&other, mod, "some_other_kernel"));
	T_ASSERT_EQ(0, cu.mod_func(&fn, mod, FAKE_CUDA_UNPACK_KERNEL));
	pool_p = (char *)D(pool);
	dst_p = (char *)D(dst);
	args[0] = &meta;
	args[1] = &n;
	args[2] = &pool_p;
	args[3] = &dst_p;
	T_ASSERT_EQ(FAKE_CUDA_ERROR_NOT_SUPPORTED,
		    cu.launch(other, 1, 1, 1, 256, 1, 1, 0, s, args, NULL));
	T_ASSERT_EQ(FAKE_CUDA_ERROR_INVALID_VALUE,
		    cu.launch(fn, 1, 1, 1, 256, 1, 1, 0, s, NULL, NULL));
	t0 = t_now();
	T_ASSERT_EQ(0, cu.launch(fn, n, 1, 1, 256, 1, 1, 0, s, args, NULL));
	/* argument values were taken at launch ... */
	n = 4;
	dst_p = NULL;
	/* ... entries and pool bytes are read when the kernel runs */
	e[2].len = 20;
	memset(pool_p + 200, 0xee, 50);
	ev = record(s);
	if (early(t0)) {
		all_bytes(D(dst), 0, N, "unpack destination before the kernel ran");
		T_ASSERT_EQ(FAKE_CUDA_ERROR_NOT_READY, cu.event_query(ev));
	}
	poll_event(ev);
	for (int i = 0; i < 100; i++)
		T_ASSERT_EQ((unsigned char)i, D(dst)[1000 + i]);
	all_bytes(D(dst), 0xee, 50, "entry 1 (pool changed before the kernel ran)");
	for (int i = 0; i < 20; i++)
		T_ASSERT_EQ((unsigned char)(300 + i), D(dst)[2000 + i]);
	all_bytes(D(dst) + 50, 0, 950, "between entries");
	all_bytes(D(dst) + 2020, 0, N - 2020, "past the 3 entries launched (e[3] not copied)");
}

static void fail_and_handles(void)
{
	CUstream s = NULL, gone;
	CUevent e;
	CUdeviceptr d = dev_alloc(0);
	unsigned char *src = pinned(3);

	setenv("GPUD_FAKE_FAIL", "cuStreamCreate", 1);
	T_ASSERT_EQ(999, cu.stream_create(&s, 0));
	T_ASSERT(s == NULL);
	setenv("GPUD_FAKE_FAIL_CODE", "2", 1);
	T_ASSERT_EQ(2, cu.stream_create(&s, 0));
	unsetenv("GPUD_FAKE_FAIL_CODE");
	setenv("GPUD_FAKE_FAIL", "cuMemcpyHtoDAsync", 1);
	T_ASSERT_EQ(999, cu.htod_async(d, src, N, NULL));
	T_ASSERT_EQ(0, fk.pending());
	unsetenv("GPUD_FAKE_FAIL");
	gone = stream(0);
	T_ASSERT_EQ(0, cu.stream_destroy_v2(gone));
	T_ASSERT_EQ(FAKE_CUDA_ERROR_INVALID_HANDLE, cu.stream_destroy(gone));
	T_ASSERT_EQ(FAKE_CUDA_ERROR_INVALID_HANDLE, cu.stream_destroy(NULL));
	T_ASSERT_EQ(FAKE_CUDA_ERROR_INVALID_HANDLE, cu.htod_async(d, src, N, (CUstream)&e));
	T_ASSERT_EQ(0, cu.event_create(&e, 0));
	T_ASSERT_EQ(0, cu.event_destroy(e));
	T_ASSERT_EQ(FAKE_CUDA_ERROR_INVALID_HANDLE, cu.event_query(e));
	T_ASSERT_EQ(0, cu.dtod(d, d + 8, 8));
	T_ASSERT_EQ(0, fk.pending());
}

static void (*scenario)(void);

/* In the scenario's child: the fake loaded there, fresh. */
static void loaded(void)
{
	load();
	scenario();
	free_owned();
}

static void run(const char *name, void (*fn)(void))
{
	scenario = fn;
	t_scenario(name, loaded);
}

int main(void)
{
	double t0 = t_now();

	run("async HtoD lands only after its event", async_lands_after_event);
	run("copies read their source when they run", staging_read_at_dma_time);
	run("FIFO per stream, host functions in order", fifo_and_host_funcs);
	run("resident on a blocking stream", resident_on_blocking);
	run("resident on a non-blocking stream", resident_on_nonblocking);
	run("resident on the legacy stream", resident_on_legacy);
	run("the call log names threads", call_log_names_threads);
	run("pageable vs pinned async copies", pageable_vs_pinned);
	run("dm_unpack_kernel emulation", unpack_kernel_emulated);
	run("GPUD_FAKE_FAIL and handles", fail_and_handles);
	t_log("PASS in %.2f s", t_now() - t0);
	return T_EXIT_PASS;
}
