// SPDX-License-Identifier: MIT
/*
 * The plugin's GPU engine (src/gpu/gpu.c) against the fake libcuda's model, with
 * a resident kernel (NCCL's) on a blocking stream the whole time: copies
 * land only after their event, a slot is not handed out again while its copy
 * is in flight, the unpack kernel scatters its entries, tags complete in
 * order, and neither the data path nor the drain waits for the resident
 * kernel (no synchronising call on this thread, which plays a progress
 * thread).
 */
#include "gpud_test.h"
#include "fake_cuda.h"
#include "fake_cuda_dl.h"
#include "gpu/gpu.h"
#include "base/base.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *lib;

static void logger(ncclDebugLogLevel level, unsigned long flags, const char *file, int line,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Reaps until @tag is done; fails after 2 s. */
static void wait_tag(struct dm_lane *l, uint64_t tag)
{
	double end = t_now() + 2;

	while (!dm_lane_done(l, tag)) {
		T_ASSERT_EQ(0, dm_lane_reap(l));
		if (t_now() > end)
			T_FAIL("tag %llu not done in 2 s", (unsigned long long)tag);
		usleep(100);
	}
}

int main(void)
{
	const size_t slot = 256 << 10;
	int (*retain)(void **, int), (*alloc)(unsigned long long *, size_t);
	int (*mfree)(unsigned long long);
	int (*push)(void *), (*pop)(void **);
	__typeof__(fake_cuda_sync_calls) *sync_calls;
	__typeof__(fake_cuda_deadlocks) *deadlocks;
	__typeof__(fake_cuda_thread_role) *role;
	__typeof__(fake_cuda_resident_start) *resident_start;
	__typeof__(fake_cuda_resident_finish) *resident_finish;
	struct dm_slot *sl[DM_LANE_SLOTS + 1];
	unsigned long long dev, pool;
	char buf[2048], *dst, *src;
	struct dm_gpu *g;
	struct dm_lane *l;
	void *ctx, *cur;
	uint64_t tag;

	setenv("GPUD_LIBCUDA", DM_FAKE_CUDA, 1);
	/* long enough that "right after the call" is reliably before the copy */
	setenv("GPUD_FAKE_COPY_DELAY_US", "20000", 1);
	setenv("GPUD_FAKE_BLOCK_MS", "1000", 1);
	dm_log_set(logger);
	lib = dlopen(DM_FAKE_CUDA, RTLD_NOW | RTLD_GLOBAL);
	if (!lib)
		T_FAIL("dlopen %s: %s", DM_FAKE_CUDA, dlerror());
	retain = fake_dl_cu(lib, "cuDevicePrimaryCtxRetain");
	push = fake_dl_cu(lib, "cuCtxPushCurrent");
	pop = fake_dl_cu(lib, "cuCtxPopCurrent");
	alloc = fake_dl_cu(lib, "cuMemAlloc");
	mfree = fake_dl_cu(lib, "cuMemFree");
	sync_calls = fake_dl_sym(lib, "fake_cuda_sync_calls");
	deadlocks = fake_dl_sym(lib, "fake_cuda_deadlocks");
	role = fake_dl_sym(lib, "fake_cuda_thread_role");
	resident_start = fake_dl_sym(lib, "fake_cuda_resident_start");
	resident_finish = fake_dl_sym(lib, "fake_cuda_resident_finish");
	role("dm-progress-0");
	if (!dm_cuda_available())
		T_FAIL("the plugin cannot drive the fake: %s", dm_cuda_why());

	T_ASSERT_EQ(0, retain(&ctx, 0));
	T_ASSERT_EQ(0, push(ctx));
	T_ASSERT_EQ(0, alloc(&dev, 4 << 20));
	T_ASSERT_EQ(0, alloc(&pool, 4 << 20));
	T_ASSERT_EQ(0, pop(&cur));
	dst = (char *)(uintptr_t)dev;
	src = (char *)(uintptr_t)pool;
	T_ASSERT_EQ(0, resident_start(FAKE_STREAM_BLOCKING));

	T_ASSERT_EQ(0, dm_gpu_create(ctx, &g));
	T_ASSERT_EQ(0, dm_lane_create(g, slot, &l));
	T_ASSERT_EQ(slot, dm_lane_slot_bytes(l));

	/* a copy lands after its event, not at the call */
	memset(dst, 0xee, slot);
	sl[0] = dm_lane_take(l);
	T_ASSERT(sl[0] != NULL);
	t_pattern_fill(1, 0, sl[0]->host, slot);
	T_ASSERT_EQ(0, dm_lane_htod(l, dst, sl[0]->host, slot));
	sl[0]->first = 10;
	T_ASSERT_EQ(0, dm_lane_commit(l, sl[0], false));
	tag = sl[0]->tag;
	T_ASSERT_EQ(0, dm_lane_reap(l));
	T_ASSERT(!dm_lane_done(l, tag));
	T_ASSERT_EQ(10, dm_lane_pending_first(l));
	T_ASSERT_EQ(0xee, (unsigned char)dst[0]);
	wait_tag(l, tag);
	T_ASSERT_EQ(-1, t_pattern_check(1, 0, dst, slot));
	T_ASSERT_EQ(UINT64_MAX, dm_lane_pending_first(l));

	/* every slot in flight: none to take until one completes; tags in order */
	for (int i = 0; i < DM_LANE_SLOTS; i++) {
		sl[i] = dm_lane_take(l);
		T_ASSERT(sl[i] != NULL);
		t_pattern_fill(20 + i, 0, sl[i]->host, slot);
		T_ASSERT_EQ(0, dm_lane_htod(l, dst + i * slot, sl[i]->host, slot));
		sl[i]->first = 100 + i;
		T_ASSERT_EQ(0, dm_lane_commit(l, sl[i], false));
		T_ASSERT_EQ(tag + 1 + i, sl[i]->tag);
	}
	T_ASSERT(dm_lane_take(l) == NULL);
	T_ASSERT_EQ(100, dm_lane_pending_first(l));
	wait_tag(l, sl[DM_LANE_SLOTS - 1]->tag);
	for (int i = 0; i < DM_LANE_SLOTS; i++)
		T_ASSERT_EQ(-1, t_pattern_check(20 + i, 0, dst + i * slot, slot));

	/* a kept slot (a send's staging) stays taken after its copy is done */
	sl[0] = dm_lane_take(l);
	T_ASSERT_EQ(0, dm_lane_dtoh(l, sl[0]->host, dst, 4096));
	T_ASSERT_EQ(0, dm_lane_commit(l, sl[0], true));
	wait_tag(l, sl[0]->tag);
	T_ASSERT_EQ(-1, t_pattern_check(20, 0, sl[0]->host, 4096));
	for (int i = 0; i < DM_LANE_SLOTS - 1; i++)
		T_ASSERT((sl[1 + i] = dm_lane_take(l)) != NULL);
	T_ASSERT(dm_lane_take(l) == NULL);
	for (int i = 0; i < DM_LANE_SLOTS; i++)
		dm_lane_put(l, sl[i]);

	/* the unpack kernel: entries in the slot's GPU-mapped metadata */
#ifdef DM_HAVE_UNPACK_FATBIN
	{
		const unsigned int n = 50;
		uint64_t off = 0;

		t_pattern_fill(7, 0, src, 1 << 20);
		memset(dst, 0, 1 << 20);
		sl[0] = dm_lane_take(l);
		for (unsigned int i = 0; i < n; i++) {
			uint32_t len = 1 + (i * 977) % 4000;

			sl[0]->meta[i] = (struct dm_unpack_entry){ .src_off = (uint32_t)off + 3,
								   .len = len, .dst_off = off };
			off += len;
		}
		T_ASSERT_EQ(0, dm_lane_unpack(l, sl[0], n, pool, dev));
		T_ASSERT_EQ(0, dm_lane_commit(l, sl[0], false));
		/* the kernel runs later: nothing placed yet */
		T_ASSERT_EQ(0, dst[0]);
		wait_tag(l, sl[0]->tag);
		for (uint64_t i = 0; i < off; i++)
			if (dst[i] != src[i + 3])
				T_FAIL("unpack: byte %llu differs", (unsigned long long)i);
		t_log("unpack kernel (CPU emulation): %u entries, %llu bytes placed", n,
		      (unsigned long long)off);
	}
#else
	(void)src;
	T_ASSERT_EQ(-EOPNOTSUPP, dm_lane_unpack(l, dm_lane_take(l), 1, pool, dev));
	t_log("built without the unpack kernel (no CUDA toolkit): launch refused as expected");
#endif

	/* the drain waits for our stream only, not for the resident kernel */
	dm_gpu_drain(g);
	if (deadlocks(buf, sizeof(buf)))
		T_FAIL("deadlock reported:\n%s", buf);
	if (sync_calls("dm-progress", buf, sizeof(buf)))
		T_FAIL("synchronising calls on the data path:\n%s", buf);
	resident_finish();
	dm_lane_destroy(g, l);
	dm_gpu_destroy(g);
	T_ASSERT_EQ(0, push(ctx));
	T_ASSERT_EQ(0, mfree(dev));
	T_ASSERT_EQ(0, mfree(pool));
	T_ASSERT_EQ(0, pop(&cur));
	t_log("PASS: lane copies, slots, tags and unpack with NCCL's kernel resident");
	return T_EXIT_PASS;
}
