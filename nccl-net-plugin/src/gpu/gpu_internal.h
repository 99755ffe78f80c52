/* SPDX-License-Identifier: MIT */
/* Shared by cuda.c and gpu.c only: the driver table and context helpers. */
#ifndef DM_GPU_INTERNAL_H
#define DM_GPU_INTERNAL_H

#include <stdbool.h>

#include "cuda/cudrv.h"		/* libgpudirect's loader (linked in statically) */

/* The loaded driver with a device, or NULL (dm_cuda_why() says why). */
const struct gpud_cudrv *dm_cu(void);
/* 0, or logs "@what failed: CUDA_ERROR_..." (WARN) and returns -errno. */
int dm_cu_err(CUresult r, const char *what);
/*
 * Makes @ctx current for a few calls on a thread that is not ours (NULL: the
 * thread's current one, -ENODEV if none), pushing it only when it is not
 * current already; dm_cu_leave() pops what was pushed.
 */
int dm_cu_enter(void *ctx, bool *pushed);
void dm_cu_leave(bool pushed);

#endif /* DM_GPU_INTERNAL_H */
