// SPDX-License-Identifier: MIT
/*
 * The GPU engine of the data path (see gpu.h for the rule it keeps): one
 * non-blocking stream per comm, lanes of pinned slots per data socket,
 * completion by polled events, the unpack kernel loaded once per context.
 */
#include "base/base.h"
#include "gpu/gpu.h"
#include "gpu/gpu_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct dm_gpu {
	CUcontext ctx;
	CUstream stream;
	CUfunction unpack;	/* NULL: built without the kernel */
};

/* ---- the unpack module, once per context (setup and teardown only) ---- */
#ifdef DM_HAVE_UNPACK_FATBIN
#include "unpack_fatbin.h"	/* generated from unpack.cu at build time */

struct dm_module {
	CUcontext ctx;
	CUmodule mod;
	CUfunction fn;
	int refs;
};

static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dm_module mods[DM_MAX_DEVS * 4];

/* Caller has pushed @ctx. */
static int module_get(const struct gpud_cudrv *cu, CUcontext ctx, CUfunction *fn)
{
	struct dm_module *m = NULL, *slot = NULL;
	int err = 0;

	pthread_mutex_lock(&mod_lock);
	for (size_t i = 0; i < DM_ARRAY_SIZE(mods); i++) {
		if (mods[i].refs && mods[i].ctx == ctx)
			m = &mods[i];
		else if (!mods[i].refs && !slot)
			slot = &mods[i];
	}
	if (!m && !slot)
		err = -ENOSPC;
	if (!m && slot) {
		err = dm_cu_err(cu->ModuleLoadData(&slot->mod, dm_unpack_fatbin),
				"cuModuleLoadData(unpack)");
		if (!err) {
			err = dm_cu_err(cu->ModuleGetFunction(&slot->fn, slot->mod,
							      "dm_unpack_kernel"),
					"cuModuleGetFunction(dm_unpack_kernel)");
			if (err && cu->ModuleUnload)
				cu->ModuleUnload(slot->mod);
		}
		if (!err) {
			slot->ctx = ctx;
			m = slot;
		}
	}
	if (m) {
		m->refs++;
		*fn = m->fn;
	}
	pthread_mutex_unlock(&mod_lock);
	return err;
}

static void module_put(const struct gpud_cudrv *cu, CUcontext ctx)
{
	pthread_mutex_lock(&mod_lock);
	for (size_t i = 0; i < DM_ARRAY_SIZE(mods); i++) {
		if (mods[i].refs && mods[i].ctx == ctx && !--mods[i].refs && cu->ModuleUnload)
			cu->ModuleUnload(mods[i].mod);
	}
	pthread_mutex_unlock(&mod_lock);
}
#else
static int module_get(const struct gpud_cudrv *cu, CUcontext ctx, CUfunction *fn)
{
	*fn = NULL;
	return 0;
}

static void module_put(const struct gpud_cudrv *cu, CUcontext ctx)
{
}
#endif

int dm_gpu_create(void *ctx, struct dm_gpu **out)
{
	const struct gpud_cudrv *cu = dm_cu();
	struct dm_gpu *g;
	bool pushed;
	int err;

	if (!cu)
		return -ENODEV;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->ctx = ctx;
	err = dm_cu_enter(ctx, &pushed);
	if (err)
		goto err_free;
	err = dm_cu_err(cu->StreamCreate(&g->stream, CU_STREAM_NON_BLOCKING),
			"cuStreamCreate(NON_BLOCKING)");
	if (err)
		goto err_pop;
	err = module_get(cu, ctx, &g->unpack);
	if (err)
		goto err_stream;
	dm_cu_leave(pushed);
	*out = g;
	return 0;

err_stream:
	cu->StreamDestroy(g->stream);
err_pop:
	dm_cu_leave(pushed);
err_free:
	free(g);
	return err;
}

void dm_gpu_drain(struct dm_gpu *g)
{
	bool pushed;

	if (!g || dm_cu_enter(g->ctx, &pushed))
		return;
	/* our own non-blocking stream: nothing on it waits for NCCL */
	dm_cu_err(dm_cu()->StreamSynchronize(g->stream), "cuStreamSynchronize(comm stream)");
	dm_cu_leave(pushed);
}

void dm_gpu_destroy(struct dm_gpu *g)
{
	const struct gpud_cudrv *cu = dm_cu();
	bool pushed;

	if (!g)
		return;
	if (!dm_cu_enter(g->ctx, &pushed)) {
		dm_cu_err(cu->StreamSynchronize(g->stream), "cuStreamSynchronize(comm stream)");
		dm_cu_err(cu->StreamDestroy(g->stream), "cuStreamDestroy");
		if (g->unpack)
			module_put(cu, g->ctx);
		dm_cu_leave(pushed);
	}
	free(g);
}

void *dm_gpu_ctx(const struct dm_gpu *g)
{
	return g->ctx;
}

/*
 * Progress threads are ours: the comm's context is made current and left
 * so; a thread serving comms of several contexts switches as it goes.
 */
static __thread CUcontext worker_ctx;

static int ctx_on(const struct dm_gpu *g)
{
	int err;

	if (worker_ctx == g->ctx)
		return 0;
	err = dm_cu_err(dm_cu()->CtxSetCurrent(g->ctx), "cuCtxSetCurrent");
	if (!err)
		worker_ctx = g->ctx;
	return err;
}

/* ---- lanes ---- */
enum slot_state { SLOT_FREE = 0, SLOT_OWNED, SLOT_FLIGHT, SLOT_KEPT };

struct dm_lane {
	struct dm_gpu *g;
	size_t slot_bytes;
	void *mem;			/* one mapped pinned block for all slots */
	uint64_t mem_dev;
	struct dm_slot slot[DM_LANE_SLOTS];
	uint64_t meta_dev[DM_LANE_SLOTS];
	CUevent ev[DM_LANE_SLOTS];
	enum slot_state st[DM_LANE_SLOTS];
	bool keep[DM_LANE_SLOTS];
	uint64_t issued, done;
};

#define META_BYTES (DM_LANE_META * sizeof(struct dm_unpack_entry))

int dm_lane_create(struct dm_gpu *g, size_t slot_bytes, struct dm_lane **out)
{
	const struct gpud_cudrv *cu = dm_cu();
	size_t stride = META_BYTES + ((slot_bytes + 4095) & ~(size_t)4095);
	struct dm_lane *l;
	int err, i = 0;
	bool pushed;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->g = g;
	l->slot_bytes = slot_bytes;
	err = dm_cuda_host_alloc_mapped(g->ctx, stride * DM_LANE_SLOTS, &l->mem, &l->mem_dev);
	if (err)
		goto err_free;
	err = dm_cu_enter(g->ctx, &pushed);
	if (err)
		goto err_mem;
	for (i = 0; i < DM_LANE_SLOTS; i++) {
		char *base = (char *)l->mem + i * stride;

		l->slot[i].meta = (struct dm_unpack_entry *)base;
		l->slot[i].host = base + META_BYTES;
		l->meta_dev[i] = l->mem_dev + i * stride;
		err = dm_cu_err(cu->EventCreate(&l->ev[i], CU_EVENT_DISABLE_TIMING),
				"cuEventCreate");
		if (err)
			goto err_events;
	}
	dm_cu_leave(pushed);
	*out = l;
	return 0;

err_events:
	while (i-- > 0)
		cu->EventDestroy(l->ev[i]);
	dm_cu_leave(pushed);
err_mem:
	dm_cuda_host_free_mapped(g->ctx, l->mem);
err_free:
	free(l);
	return err;
}

void dm_lane_destroy(struct dm_gpu *g, struct dm_lane *l)
{
	const struct gpud_cudrv *cu = dm_cu();
	bool pushed;

	if (!l)
		return;
	if (!dm_cu_enter(g->ctx, &pushed)) {
		for (int i = 0; i < DM_LANE_SLOTS; i++)
			cu->EventDestroy(l->ev[i]);
		dm_cu_leave(pushed);
	}
	dm_cuda_host_free_mapped(g->ctx, l->mem);
	free(l);
}

size_t dm_lane_slot_bytes(const struct dm_lane *l)
{
	return l->slot_bytes;
}

static int slot_idx(const struct dm_lane *l, const struct dm_slot *sl)
{
	return (int)(sl - l->slot);
}

struct dm_slot *dm_lane_take(struct dm_lane *l)
{
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < DM_LANE_SLOTS; i++) {
			if (l->st[i] == SLOT_FREE) {
				l->st[i] = SLOT_OWNED;
				return &l->slot[i];
			}
		}
		if (pass == 0 && dm_lane_reap(l))
			return NULL;
	}
	return NULL;
}

int dm_lane_htod(struct dm_lane *l, void *dst, const void *src, size_t len)
{
	int err = ctx_on(l->g);

	return err ? err : dm_cu_err(dm_cu()->MemcpyHtoDAsync((CUdeviceptr)(uintptr_t)dst, src,
							       len, l->g->stream),
				     "cuMemcpyHtoDAsync");
}

int dm_lane_dtoh(struct dm_lane *l, void *dst, const void *src, size_t len)
{
	int err = ctx_on(l->g);

	return err ? err : dm_cu_err(dm_cu()->MemcpyDtoHAsync(dst, (CUdeviceptr)(uintptr_t)src,
							       len, l->g->stream),
				     "cuMemcpyDtoHAsync");
}

int dm_lane_unpack(struct dm_lane *l, struct dm_slot *sl, unsigned int n, uint64_t pool,
		   uint64_t dst)
{
	uint64_t meta = l->meta_dev[slot_idx(l, sl)];
	void *args[4] = { &meta, &n, &pool, &dst };
	int err;

	if (!l->g->unpack)
		return -EOPNOTSUPP;
	if (!n)
		return 0;
	err = ctx_on(l->g);
	if (err)
		return err;
	return dm_cu_err(dm_cu()->LaunchKernel(l->g->unpack,
					       n < DM_UNPACK_MAX_BLOCKS ? n : DM_UNPACK_MAX_BLOCKS, 1,
					       1, DM_UNPACK_THREADS, 1, 1, 0, l->g->stream, args,
					       NULL),
			 "cuLaunchKernel(dm_unpack_kernel)");
}

#ifdef DM_SEED_CTX_SYNC
/* TEST BUILD ONLY: tests/seed_ctx_sync.c puts the bug back (see there). */
void dm_seed_after_commit(void);
#define seeded_ctx_sync() dm_seed_after_commit()
#else
#define seeded_ctx_sync() do { } while (0)
#endif

int dm_lane_commit(struct dm_lane *l, struct dm_slot *sl, bool keep)
{
	int i = slot_idx(l, sl), err = ctx_on(l->g);

	if (!err)
		err = dm_cu_err(dm_cu()->EventRecord(l->ev[i], l->g->stream), "cuEventRecord");
	if (!err)
		seeded_ctx_sync();
	if (err) {
		l->st[i] = SLOT_FREE;
		return err;
	}
	l->st[i] = SLOT_FLIGHT;
	l->keep[i] = keep;
	sl->tag = ++l->issued;
	return 0;
}

void dm_lane_put(struct dm_lane *l, struct dm_slot *sl)
{
	l->st[slot_idx(l, sl)] = SLOT_FREE;
}

int dm_lane_reap(struct dm_lane *l)
{
	const struct gpud_cudrv *cu = dm_cu();
	int err = 0;

	for (int i = 0; i < DM_LANE_SLOTS; i++) {
		CUresult r;

		if (l->st[i] != SLOT_FLIGHT)
			continue;
		r = cu->EventQuery(l->ev[i]);
		if (r == CUDA_ERROR_NOT_READY)
			continue;
		if (r) {
			err = err ? err : dm_cu_err(r, "cuEventQuery (a copy or unpack failed)");
			continue;
		}
		l->st[i] = l->keep[i] ? SLOT_KEPT : SLOT_FREE;
		if (l->slot[i].tag > l->done)
			l->done = l->slot[i].tag;
	}
	return err;
}

bool dm_lane_done(const struct dm_lane *l, uint64_t tag)
{
	return l->done >= tag;
}

uint64_t dm_lane_pending_first(const struct dm_lane *l)
{
	uint64_t first = UINT64_MAX;

	for (int i = 0; i < DM_LANE_SLOTS; i++)
		if (l->st[i] == SLOT_FLIGHT && l->slot[i].first < first)
			first = l->slot[i].first;
	return first;
}
