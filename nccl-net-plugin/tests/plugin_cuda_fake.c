// SPDX-License-Identifier: MIT
/*
 * CUDA buffers through the plugin with NCCL's kernel running, on a machine
 * without a GPU: libgpudirect's fake libcuda models CUDA's streams (legacy,
 * blocking, non-blocking), copies that land later, and a "resident kernel"
 * standing for NCCL's collective kernel, which spins until our receive is
 * complete. A call that would wait for it (cuCtxSynchronize, legacy-stream
 * work, a synchronous copy, cuMemFree) makes the fake report a deadlock
 * naming the call and the thread, so the bug fails here in bounded time.
 *
 *   plugin_cuda_fake MODE STREAM UNPACK [seeded]
 *     MODE    copy (veth, netns) or devmem (the patched-kernel VM)
 *     STREAM  blocking or nonblocking: where the resident kernel runs
 *     UNPACK  NCCL_DEVMEM_UNPACK: plugin or nccl (NCCL's kernel unpacks;
 *             the CPU stand-in of tests/unpack_consumer.c reads the metadata)
 *   emulate: copy mode with NCCL_DEVMEM_TEST_EMULATE=1 (nccl only): chunks
 *   land in an emulated GPU pool and NCCL's kernel (the CPU stand-in) must
 *   unpack every piece it is given from there
 *   seeded: the plugin built with DM_SEED_CTX_SYNC (a cuCtxSynchronize
 *   after each GPU commit, the bug this test exists for) must be caught:
 *   the run passes only if the fake reported that deadlock on a progress
 *   thread.
 *
 * Both ranks' main threads call themselves "proxy" (they drive the plugin as
 * NCCL's proxy thread does); the plugin names its threads dm-progress-N.
 * Every received byte is read straight from the (fake) device buffer the
 * moment test() says done: a copy still in flight would show stale bytes.
 */
#include "harness.h"
#include "unpack_consumer.h"
#include "fake_cuda.h"
#include "fake_cuda_dl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SLACK 4096
#define TO 60.0
#define POOL (48u << 20)

static struct {
	void *lib;
	__typeof__(fake_cuda_thread_role) *role;
	__typeof__(fake_cuda_resident_start) *resident_start;
	__typeof__(fake_cuda_resident_finish) *resident_finish;
	__typeof__(fake_cuda_sync_calls) *sync_calls;
	__typeof__(fake_cuda_deadlocks) *deadlocks;
	__typeof__(fake_cuda_pageable_async) *pageable;
	int (*retain)(void **, int);
	int (*push)(void *);
	int (*pop)(void **);
	int (*alloc)(unsigned long long *, size_t);
	int (*free)(unsigned long long);
} F;

static bool seeded, nccl_unpack, devmem, emulate;
static struct h_pair *pair;
static ncclNetDeviceHandle_v11_t *dh;

static void fake_load(void)
{
	F.lib = dlopen(DM_FAKE_CUDA, RTLD_NOW | RTLD_GLOBAL);
	if (!F.lib)
		T_FAIL("dlopen %s: %s", DM_FAKE_CUDA, dlerror());
	F.role = fake_dl_sym(F.lib, "fake_cuda_thread_role");
	F.resident_start = fake_dl_sym(F.lib, "fake_cuda_resident_start");
	F.resident_finish = fake_dl_sym(F.lib, "fake_cuda_resident_finish");
	F.sync_calls = fake_dl_sym(F.lib, "fake_cuda_sync_calls");
	F.deadlocks = fake_dl_sym(F.lib, "fake_cuda_deadlocks");
	F.pageable = fake_dl_sym(F.lib, "fake_cuda_pageable_async");
	F.retain = fake_dl_cu(F.lib, "cuDevicePrimaryCtxRetain");
	F.push = fake_dl_cu(F.lib, "cuCtxPushCurrent");
	F.pop = fake_dl_cu(F.lib, "cuCtxPopCurrent");
	F.alloc = fake_dl_cu(F.lib, "cuMemAlloc");
	F.free = fake_dl_cu(F.lib, "cuMemFree");
}

/* As NCCL's proxy thread: the rank's primary context retained and current. */
static void proxy_context(void)
{
	int (*set)(void *) = fake_dl_cu(F.lib, "cuCtxSetCurrent");
	void *ctx;

	T_ASSERT_EQ(0, F.retain(&ctx, 0));
	T_ASSERT_EQ(0, set(ctx));
}

/* What the fake saw, on stderr: for every failure and at the end. */
static void fake_report(const char *when)
{
	char buf[4096];

	if (F.deadlocks(buf, sizeof(buf)))
		t_log("fake CUDA %s: deadlocks:\n%s", when, buf);
	if (F.sync_calls("", buf, sizeof(buf)))
		t_log("fake CUDA %s: synchronising calls:\n%s", when, buf);
}

static char *dev_alloc(size_t size)
{
	unsigned long long d = 0;
	void *ctx, *cur;

	T_ASSERT_EQ(0, F.retain(&ctx, 0));
	T_ASSERT_EQ(0, F.push(ctx));
	T_ASSERT_EQ(0, F.alloc(&d, size));
	T_ASSERT_EQ(0, F.pop(&cur));
	return (char *)(uintptr_t)d;	/* the fake's device memory is host memory */
}

static void dev_free(char *p)
{
	void *ctx, *cur;

	T_ASSERT_EQ(0, F.retain(&ctx, 0));
	T_ASSERT_EQ(0, F.push(ctx));
	T_ASSERT_EQ(0, F.free((unsigned long long)(uintptr_t)p));
	T_ASSERT_EQ(0, F.pop(&cur));
}

/* test() until done; on failure the fake's reports say which call hung. */
static int wait_req(struct h_plugin *p, void *req, int *got)
{
	double end = t_now() + TO;
	int done = 0;

	while (!done) {
		ncclResult_t r = h_test(p, req, &done, got);

		if (r != ncclSuccess)
			return -1;
		if (t_now() > end) {
			fake_report("at the timeout");
			T_FAIL("request not done in %.0f s", TO);
		}
	}
	return 0;
}

struct conn {
	void *listen, *comm, *mh;
	char *buf;
};

static void one(struct h_plugin *p, bool rx, struct conn *c, size_t size, uint64_t seed)
{
	void *req = NULL;
	int got = -1;

	if (!rx) {
		t_pattern_fill(seed, 0, c->buf, size);	/* "the app's kernel wrote it" */
		h_sync_send(pair);
		req = h_isend_wait(p, c->comm, c->buf, size, 1, c->mh);
		if (wait_req(p, req, &got) && !seeded)
			T_FAIL("send of %zu bytes failed: %s", size, h_last_warn);
		return;
	}
	{
		size_t max = size + SLACK;
		void *data = c->buf;
		int tag = 1;
		long bad;

		memset(c->buf, 0xee, max);
		h_sync_recv(pair);
		while (!req)
			T_ASSERT_EQ(ncclSuccess, h_irecv(p, c->comm, 1, &data, &max, &tag, &c->mh, &req));
		if (wait_req(p, req, &got)) {
			if (seeded)
				return;
			fake_report("after a failed receive");
			T_FAIL("receive of %zu bytes failed: %s", size, h_last_warn);
		}
		T_ASSERT_EQ(size, got);
		if (nccl_unpack) {
			struct h_unpack_step st;
			int err = h_unpack_consume(dh->handle, c->buf, max, POOL, &st);

			if (err)
				T_FAIL("NCCL's kernel would have read bad metadata: %s", strerror(-err));
			T_ASSERT_EQ(ncclSuccess, h_irecv_consumed(p, c->comm, 1, req));
			if (!devmem && !emulate)
				T_ASSERT_EQ(0, st.cnt);
			/* emulated: at most 2048 pieces of 4 KiB go to NCCL's kernel */
			if (emulate && size && st.bytes < (size < (8u << 20) ? size : 8u << 20))
				T_FAIL("emulated devmem: NCCL's kernel got %llu of %zu bytes",
				       (unsigned long long)st.bytes, size);
		}
		/* read at once: a copy not yet landed shows 0xee */
		bad = t_pattern_check(seed, 0, c->buf, size);
		if (bad >= 0)
			T_FAIL("%zu-byte receive: byte %ld differs right after test() said done (0x%02x): a GPU copy was still in flight",
			       size, bad, (unsigned char)c->buf[bad]);
		for (size_t i = size; i < size + SLACK; i++)
			if ((unsigned char)c->buf[i] != 0xee)
				T_FAIL("byte %zu past a %zu-byte message was written", i, size);
	}
}

/* Eight 1 MiB receives in flight, tested newest first. */
static void pipelined(struct h_plugin *p, bool rx, struct conn *c)
{
	const size_t sz = 1 << 20, stride = sz + SLACK;
	void *req[8];
	int got;

	for (int i = 0; i < 8; i++) {
		char *b = c->buf + i * stride;

		req[i] = NULL;
		if (rx) {
			size_t max = sz;
			int tag = 5;
			void *data = b;

			while (!req[i])
				T_ASSERT_EQ(ncclSuccess,
					    h_irecv(p, c->comm, 1, &data, &max, &tag, &c->mh, &req[i]));
		} else {
			t_pattern_fill(200 + i, 0, b, sz);
			req[i] = h_isend_wait(p, c->comm, b, sz, 5, c->mh);
		}
	}
	for (int i = 7; i >= 0; i--) {
		if (wait_req(p, req[i], &got)) {
			fake_report("after a failed pipelined request");
			T_FAIL("pipelined request %d failed: %s", i, h_last_warn);
		}
		T_ASSERT_EQ(sz, got);
	}
	for (int i = 0; rx && i < 8; i++) {
		long bad;

		if (nccl_unpack) {
			struct h_unpack_step st;

			T_ASSERT_EQ(0, h_unpack_consume(dh->handle, c->buf + i * stride, sz, POOL, &st));
			T_ASSERT_EQ(ncclSuccess, h_irecv_consumed(p, c->comm, 1, req[i]));
		}
		bad = t_pattern_check(200 + i, 0, c->buf + i * stride, sz);
		if (bad >= 0)
			T_FAIL("pipelined receive %d: byte %ld differs", i, bad);
	}
}

static void connect_pair(struct h_plugin *p, bool rx, struct conn *c, size_t buflen)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE] = { 0 };
	double end = t_now() + TO;
	int type;

	if (rx) {
		T_ASSERT_EQ(ncclSuccess, h_listen(p, 0, handle, &c->listen));
		h_send_handle(pair, handle);
		if (!nccl_unpack) {
			c->comm = h_accept_wait(p, c->listen, TO);
		} else {
			dh = calloc(1, sizeof(*dh));
			T_ASSERT(dh != NULL);
			dh->netDeviceType = NCCL_NET_DEVICE_UNPACK;
			dh->netDeviceVersion = NCCL_NET_DEVICE_UNPACK_VERSION;
			while (!c->comm && t_now() < end) {
				if (h_accept_dev(p, c->listen, &c->comm, &dh) != ncclSuccess) {
					if (devmem)
						t_skip("devmem receive not available here: %s", h_last_warn);
					T_FAIL("accept failed: %s", h_last_warn);
				}
				usleep(100);
			}
			T_ASSERT(c->comm && dh->handle);
		}
	} else {
		h_recv_handle(pair, handle);
		c->comm = h_connect_wait(p, 0, handle, TO);
	}
	/* seeded: the sender sends host memory, so only the receiver is under test */
	type = rx || !seeded ? NCCL_PTR_CUDA : NCCL_PTR_HOST;
	c->buf = type == NCCL_PTR_CUDA ? dev_alloc(buflen) : h_alloc(buflen);
	T_ASSERT_EQ(ncclSuccess, p->v11->regMr(c->comm, c->buf, buflen, type, &c->mh));
}

static int resident_kind(const char *s)
{
	if (!strcmp(s, "blocking"))
		return FAKE_STREAM_BLOCKING;
	if (!strcmp(s, "nonblocking"))
		return FAKE_STREAM_NONBLOCKING;
	T_FAIL("STREAM must be blocking or nonblocking, not %s", s);
}

/* The seeded bug must have been caught: a deadlock on a progress thread. */
static void seeded_verdict(void)
{
	char buf[4096];
	int n = F.deadlocks(buf, sizeof(buf));

	if (!n || !strstr(buf, "cuCtxSynchronize") || !strstr(buf, "dm-progress")) {
		fake_report("at the end");
		T_FAIL("the seeded cuCtxSynchronize went unnoticed (%d deadlock report(s))", n);
	}
	t_log("seeded regression caught:\n%s", buf);
}

/* Nothing NCCL drives waited for work it does not own. */
static void clean_verdict(void)
{
	char buf[4096];
	int n;

	if (F.deadlocks(buf, sizeof(buf))) {
		fake_report("at the end");
		T_FAIL("deadlock(s) reported:\n%s", buf);
	}
	n = F.sync_calls("dm-progress", buf, sizeof(buf));
	if (n)
		T_FAIL("%d synchronising CUDA call(s) on progress threads:\n%s", n, buf);
	n = F.sync_calls("proxy", buf, sizeof(buf));
	if (n)
		T_FAIL("%d synchronising CUDA call(s) on the proxy thread:\n%s", n, buf);
	n = F.pageable("dm-progress", buf, sizeof(buf));
	if (n)
		T_FAIL("%d async copies from pageable memory on progress threads:\n%s", n, buf);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 0, 1, 4096, 64 << 10, (128 << 10) + 3, 1 << 20,
					(4 << 20) + 17, 16 << 20 };
	struct h_plugin p;
	struct h_pair hp;
	struct conn c = { 0 };
	bool cuda_buf;
	int kind;
	bool rx;

	if (argc < 4)
		T_FAIL("usage: %s copy|devmem blocking|nonblocking plugin|nccl [seeded]", argv[0]);
	devmem = !strcmp(argv[1], "devmem");
	kind = resident_kind(argv[2]);
	nccl_unpack = !strcmp(argv[3], "nccl");
	seeded = argc > 4 && !strcmp(argv[4], "seeded");
	emulate = argc > 4 && !strcmp(argv[4], "emulate");
	if (emulate)
		setenv("NCCL_DEVMEM_TEST_EMULATE", "1", 1);
	setenv("NCCL_DEVMEM_UNPACK", nccl_unpack ? "nccl" : "plugin", 1);
	t_require_root();
	if (devmem && !t_in_vm())
		t_skip("devmem mode needs the patched-kernel VM (veth has no queue management API)");
	setenv("GPUD_LIBCUDA", DM_FAKE_CUDA, 1);
	/* bounded: a wait behind the resident kernel is a deadlock after 2 s */
	setenv("GPUD_FAKE_BLOCK_MS", "2000", 0);
	setenv("NCCL_DEVMEM_MODE", devmem ? "devmem" : "copy", 1);
	setenv("NCCL_DEVMEM_POOL_SIZE", "48M", 1);
	/* the fake's "GPU memory" is no dma-buf: a udmabuf pool, CUDA buffers */
	setenv("NCCL_DEVMEM_POOL_MEM", "host", 1);
	if (seeded)
		setenv("DM_PLUGIN", DM_PLUGIN_SEEDED, 1);
	h_keep_loaded = true;	/* the driver table outlives a dlclose */
	rx = h_pair_start(&hp) == 0;
	pair = &hp;
	fake_load();
	F.role("proxy");
	proxy_context();
	T_ASSERT_EQ(0, F.resident_start(kind));
	h_load(&p, 11);
	connect_pair(&p, rx, &c, 8 * ((1 << 20) + SLACK) + (16 << 20) + SLACK);
	if (seeded) {
		one(&p, rx, &c, 1 << 20, 1);
	} else {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			one(&p, rx, &c, sizes[i], 1 + i);
		pipelined(&p, rx, &c);
	}
	if (seeded && rx)
		seeded_verdict();
	else if (!seeded)
		clean_verdict();
	/* NCCL's kernel ends once its receives are in; teardown may synchronise */
	F.resident_finish();
	if (rx)
		h_sync_recv(&hp);
	else
		h_sync_send(&hp);
	T_ASSERT_EQ(ncclSuccess, p.v11->deregMr(c.comm, c.mh));
	cuda_buf = rx || !seeded;
	if (rx) {
		T_ASSERT_EQ(ncclSuccess, h_close_recv(&p, c.comm));
		T_ASSERT_EQ(ncclSuccess, h_close_listen(&p, c.listen));
	} else {
		T_ASSERT_EQ(ncclSuccess, h_close_send(&p, c.comm));
	}
	free(dh);
	h_unload(&p);
	if (!rx)
		_exit(0);
	if (cuda_buf)	/* after close: cuMemFree synchronises, NCCL's kernel is gone */
		dev_free(c.buf);
	h_pair_join(&hp, TO);
	if (!seeded)	/* emulation says, once, that it is on */
		T_ASSERT_EQ(emulate ? 1 : 0, h_warns);
	t_log("PASS %s, resident kernel on a %s stream, NCCL_DEVMEM_UNPACK=%s%s", argv[1], argv[2],
	      nccl_unpack ? "nccl" : "plugin",
	      seeded ? ", seeded bug caught" : emulate ? ", emulated devmem" : "");
	return T_EXIT_PASS;
}
