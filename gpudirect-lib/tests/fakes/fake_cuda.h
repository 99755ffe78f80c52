/* SPDX-License-Identifier: MIT */
/*
 * Test controls of the fake libcuda (fake_cuda.c). The code under test loads
 * the fake with dlopen (GPUD_LIBCUDA=<path>); a test dlopens the same path
 * and dlsyms these by name, e.g.
 *
 *	__typeof__(fake_cuda_sync_calls) *sync_calls = dlsym(lib, "fake_cuda_sync_calls");
 *
 * All of them are thread-safe. The ones that fill @buf write at most @len
 * bytes, always NUL-terminated (when @len > 0), and cut the list short when it
 * does not fit; @buf may be NULL. Counts never reset by themselves.
 *
 * The model, in short (details at the top of fake_cuda.c): every op given to
 * a stream (async copies, memsets, launches, host functions, event records)
 * runs later on one engine thread, no earlier than GPUD_FAKE_COPY_DELAY_US
 * after it was submitted, in CUDA's order (FIFO per stream; the legacy
 * default stream and the blocking streams wait for each other; non-blocking
 * streams wait for nobody). Copies read their source when they run, as DMA
 * does. Calls that wait give up after GPUD_FAKE_BLOCK_MS when what they wait
 * for sits behind the resident kernel, and return CUDA_ERROR_LAUNCH_TIMEOUT.
 */
#ifndef GPUD_FAKE_CUDA_H
#define GPUD_FAKE_CUDA_H

#include <stddef.h>

/* Where fake_cuda_resident_start() puts the kernel. */
#define FAKE_STREAM_LEGACY 0		/* the legacy default stream (NULL, CU_STREAM_LEGACY) */
#define FAKE_STREAM_BLOCKING 1		/* a new blocking user stream */
#define FAKE_STREAM_NONBLOCKING 2	/* a new CU_STREAM_NON_BLOCKING user stream */

/* CUresult values the model returns (the real driver's numbers). */
#define FAKE_CUDA_SUCCESS 0
#define FAKE_CUDA_ERROR_INVALID_VALUE 1
#define FAKE_CUDA_ERROR_INVALID_CONTEXT 201
#define FAKE_CUDA_ERROR_INVALID_HANDLE 400
#define FAKE_CUDA_ERROR_NOT_READY 600
#define FAKE_CUDA_ERROR_LAUNCH_TIMEOUT 702	/* a wait the fake calls a deadlock */
#define FAKE_CUDA_ERROR_NOT_SUPPORTED 801

/* Stream handles with a meaning of their own (cuda.h's values). */
#define FAKE_CU_STREAM_LEGACY ((void *)0x1)
#define FAKE_CU_STREAM_PER_THREAD ((void *)0x2)
#define FAKE_CU_STREAM_NON_BLOCKING 0x1	/* cuStreamCreate flag */

/*
 * The kernel name whose launches the fake emulates on the CPU, and its
 * arguments (nccl-net-plugin/src/unpack.cu): memcpy(dst + e[i].dst_off,
 * pool + e[i].src_off, e[i].len) for i < n.
 */
#define FAKE_CUDA_UNPACK_KERNEL "dm_unpack_kernel"
struct fake_cuda_unpack_entry {
	unsigned int src_off;
	unsigned int len;
	unsigned long long dst_off;
};

/* ---- counters that predate the model ---- */
int fake_cuda_live_allocs(void);	/* cuMemAlloc minus cuMemFree */
int fake_cuda_ctx_refs(void);		/* primary context retains minus releases */
int fake_cuda_ctx_depth(void);		/* pushes minus pops (one global stack) */
int fake_cuda_flushes(void);		/* cuFlushGPUDirectRDMAWrites calls */
int fake_cuda_pcie_tries(void);		/* dma-buf handle asked with the PCIe flag */
int fake_cuda_host_allocs(void);	/* cuMemHostAlloc minus cuMemFreeHost */
void fake_cuda_reset_depth(void);	/* after a simulated failed pop */

/* ---- the concurrency model ---- */

/*
 * Names the calling thread in the call log and in deadlock reports (the
 * role is thread-local; at most 31 bytes are kept). NULL or "" goes back to
 * the thread's own name (pthread_getname_np).
 */
void fake_cuda_thread_role(const char *role);

/*
 * Puts a never-finishing op, standing for NCCL's kernel that spins waiting
 * for our receive, on a stream of @kind (FAKE_STREAM_*). What is ordered
 * behind it waits until fake_cuda_resident_finish(). Returns 0, -EBUSY when
 * one is already resident, -EINVAL for an unknown kind, -ENOMEM, or -EAGAIN
 * when the engine thread cannot be started.
 */
int fake_cuda_resident_start(int kind);
/* Lets the resident op complete (nothing when none is resident). */
void fake_cuda_resident_finish(void);

/*
 * Synchronising calls (ones that may wait for work the caller does not own:
 * cuCtxSynchronize, cuMemFree, cuMemFreeHost, the synchronous cuMemcpy*,
 * any op given to the legacy stream, cuStreamSynchronize/cuEventSynchronize
 * of the legacy stream or a blocking one) made by threads whose role or name
 * starts with @thread_prefix ("" = any). Returns how many; @buf gets one line
 * per call name and thread: "<call> thread=\"<name>\" tid=<tid> times=<n>".
 */
int fake_cuda_sync_calls(const char *thread_prefix, char *buf, size_t len);

/*
 * Deadlocks so far: waits that gave up behind the resident kernel. @buf gets
 * the lines also printed on stderr, "fake-cuda: DEADLOCK: <call> on thread
 * \"<name>\" (tid <tid>) waited <ms> ms behind the resident kernel on <where>".
 */
int fake_cuda_deadlocks(char *buf, size_t len);

/*
 * Async copies whose host side is not page-locked (inside no cuMemHostAlloc
 * or cuMemHostRegister range), by threads matching @thread_prefix; @buf as
 * for fake_cuda_sync_calls().
 */
int fake_cuda_pageable_async(const char *thread_prefix, char *buf, size_t len);

/* Ops submitted and not yet run, the resident one excluded. */
int fake_cuda_pending_ops(void);

/* Clears the call log, the pageable-copy log and the deadlocks; memory,
 * streams, events and queued ops stay.
 */
void fake_cuda_model_reset(void);

#endif /* GPUD_FAKE_CUDA_H */
