/* SPDX-License-Identifier: MIT */
/*
 * libgpudirect: receive TCP payload straight into device memory with Linux
 * devmem TCP, with a copy fallback where devmem cannot run.
 *
 * Object model (every create has its free; every fd and mapping is owned by
 * exactly one object):
 *
 *   gpud_mem      memory the NIC writes into (host/udmabuf, CUDA, HIP,
 *                 DRM PRIME), exported as a dma-buf fd that the gpud_mem owns.
 *   gpud_nic      one network interface; remembers its original settings
 *                 (header split, channels, RSS, flow rules it added) and
 *                 restores them when freed.
 *   gpud_binding  a gpud_mem bound to RX queues of a NIC. Owns the netlink
 *                 socket that made the binding: freeing it unbinds.
 *   gpud_rx       the receive side of one TCP socket: devmem fragments or,
 *                 in copy mode, bytes copied into a gpud_mem. Same API.
 *   gpud_rdma_dev an RDMA device and protection domain (rdma-core);
 *   gpud_rdma_mr  a gpud_mem registered with it (dma-buf MR or fallback).
 *   gpud_rdma_qp  a reliable-connected queue pair on it, brought up by us.
 *
 * Error rule: functions returning int return 0 (or a count) on success and a
 * negative errno on failure; functions returning a pointer return NULL and set
 * errno. On every failure a readable message (with the kernel's extack or the
 * driver's own message, and the fix where one is known) is available from
 * gpud_errmsg() in the failing thread and is passed to the log callback.
 *
 * Thread safety: distinct objects may be used from distinct threads freely.
 * One object must not be used from two threads at once unless its section
 * says otherwise. The log callback may be called from any thread.
 */
#ifndef GPUDIRECT_GPUDIRECT_H
#define GPUDIRECT_GPUDIRECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GPUD_API __attribute__((visibility("default")))

/* ------------------------------------------------------------------ */
/* Logging and errors                                                  */
/* ------------------------------------------------------------------ */

enum gpud_log_level {
	GPUD_LOG_ERROR = 0,
	GPUD_LOG_WARN = 1,
	GPUD_LOG_INFO = 2,
	GPUD_LOG_DEBUG = 3,
};

typedef void (*gpud_log_fn)(enum gpud_log_level level, const char *msg, void *ctx);

/*
 * Sets the process-wide log callback (NULL: log nothing, the default). The
 * library never writes to stderr itself. @ctx is passed back unchanged.
 * Safe to call from any thread; callbacks already running may still use the
 * old function.
 */
GPUD_API void gpud_set_log(gpud_log_fn fn, void *ctx, enum gpud_log_level max_level);

/*
 * The message describing this thread's most recent failure ("" if none). The
 * pointer is valid until the next library call in this thread.
 */
GPUD_API const char *gpud_errmsg(void);

/* Library version string, e.g. "0.1.0". */
GPUD_API const char *gpud_version(void);

/*
 * Parses a byte count as users write one in options and environment
 * variables: decimal digits, then optionally K, M, G or T (binary: 2^10 ..
 * 2^40, either case), optionally followed by "iB" or "B" ("64K", "256MiB",
 * "4g", "1048576"). Returns 0 and stores the value in *out, -EINVAL when @s
 * is not such a size (message via gpud_errmsg()), -ERANGE when it does not
 * fit in 64 bits. Zero is accepted; callers that cannot use it say so.
 * Thread-safe.
 */
GPUD_API int gpud_parse_size(const char *s, uint64_t *out);

/* ------------------------------------------------------------------ */
/* Memory: device or host memory exported as a dma-buf                 */
/* ------------------------------------------------------------------ */

/*
 * Backends, chosen at run time; GPU runtimes are dlopen()ed, so a build
 * without CUDA or ROCm still has every backend (it then reports why it
 * cannot run).
 *
 * host  memfd pages, exported through /dev/udmabuf (CONFIG_UDMABUF). udmabuf
 *       caps one buffer at its size_limit_mb module parameter (default 64).
 * cuda  cuMemAlloc memory exported with cuMemGetHandleForAddressRange. Needs
 *       NVIDIA's open kernel modules (R515+, default since R560); the
 *       proprietary module cannot export dma-bufs. Each NIC attachment uses
 *       BAR1 aperture; gpud_mem_probe() reports the BAR1 headroom.
 *       Library: libcuda.so.1, or the path in env GPUD_LIBCUDA (NVML:
 *       libnvidia-ml.so.1 or env GPUD_LIBNVML).
 * hip   a dedicated allocation from the GPU's coarse-grained pool exported
 *       with hsa_amd_portable_export_dmabuf (ROCm 5.6+). Library:
 *       libhsa-runtime64.so.1, or env GPUD_LIBHSA. (Each library is loaded
 *       at first use and kept; the variables are read until a load works.)
 *       HAZARD: devmem attaches without peer-to-peer, and amdgpu then moves a
 *       statically imported buffer into GTT (system RAM): the bind succeeds,
 *       GPU reads still see the data, but the NIC never writes VRAM. Check
 *       gpud_mem_placement() after binding (see there).
 * drm   a GEM buffer of a DRM driver exported with PRIME (raw ioctls, no
 *       libdrm needed). opts.path names the node:
 *       - amdgpu nodes (card or render): a dedicated VRAM buffer object (GTT
 *         with GPUD_MEM_F_GTT) from libdrm_amdgpu.so.1 (or env
 *         GPUD_LIBDRM_AMDGPU), loaded at first use. Same migration HAZARD as
 *         hip: check gpud_mem_placement_why() after binding. Spec
 *         "amdgpu:N" (opts.path NULL, opts.device N) picks the Nth amdgpu
 *         render node in /dev/dri.
 *       - any other driver with dumb buffers (vgem: shmem pages, like
 *         udmabuf): DRM_IOCTL_MODE_CREATE_DUMB, which only primary nodes
 *         (/dev/dri/cardN) allow: render nodes answer -EACCES. A dumb buffer
 *         is at most 4 GiB - 1 page (its size is 32-bit in the ioctl).
 *       The CPU reaches the buffer through the driver's mapping (MAP_DUMB or
 *       amdgpu_bo_cpu_map) for gpud_mem_read()/gpud_mem_write();
 *       gpud_mem_host_ptr() returns it only where it is system RAM (vgem).
 */
enum gpud_mem_kind {
	GPUD_MEM_HOST = 0,	/* memfd pages; dma-buf through /dev/udmabuf */
	GPUD_MEM_CUDA = 1,	/* NVIDIA GPU memory (libcuda.so.1, open kernel modules) */
	GPUD_MEM_HIP = 2,	/* AMD GPU memory (ROCm HSA runtime) */
	GPUD_MEM_DRM = 3,	/* DRM PRIME (vgem, amdgpu) */
	GPUD_MEM_KIND_MAX,
};

/* Flags for gpud_mem_opts.flags */
/*
 * host: back with 2 MiB huge pages (shorter sg lists). The size is rounded up
 * to 2 MiB. Pages come from the hugetlb pool as far as it has free pages; the
 * rest is ordinary memory (the dma-buf then spans two memfds).
 */
#define GPUD_MEM_F_HUGEPAGES	(1u << 0)
/*
 * Do not export: copy mode only. The memory is still allocated and readable
 * and writable with gpud_mem_read()/gpud_mem_write(), where the export is not
 * possible (no /dev/udmabuf, GPU driver without dma-buf support) too.
 */
#define GPUD_MEM_F_NO_DMABUF	(1u << 1)
/* drm on amdgpu: allocate in GTT (system RAM the GPU maps) instead of VRAM. */
#define GPUD_MEM_F_GTT		(1u << 2)

/*
 * Options that can grow: set .sz = sizeof(struct gpud_mem_opts); fields the
 * library does not know (a newer caller) must be zero, fields the caller does
 * not know (an older caller) take their defaults. NULL options = defaults.
 */
struct gpud_mem_opts {
	size_t sz;
	int device;		/* GPU index for cuda/hip (and drm "amdgpu:N"); ignored for host */
	uint32_t flags;		/* GPUD_MEM_F_* */
	const char *path;	/* drm: device node; otherwise NULL */
};

struct gpud_mem;

/*
 * Parses "host", "cuda:N", "hip:N", "drm:/dev/dri/cardN", "amdgpu:N" (kind
 * drm, path NULL, device N) into @kind and @opts
 * (opts->sz must be set by the caller; opts->path points into @spec, so @spec
 * must outlive its use). "cuda" and "hip" alone mean device 0. Only ->device
 * and ->path are written; ->flags is left as the caller set it. Outputs are
 * written only on success. Returns 0 or -EINVAL with a message naming the
 * accepted forms. Thread-safe.
 */
GPUD_API int gpud_mem_parse_spec(const char *spec, enum gpud_mem_kind *kind,
				 struct gpud_mem_opts *opts);

/* "host", "cuda", "hip", "drm"; "?" for an unknown kind. Thread-safe. */
GPUD_API const char *gpud_mem_kind_name(enum gpud_mem_kind kind);

/*
 * Allocates @size bytes of @kind memory and, unless GPUD_MEM_F_NO_DMABUF,
 * exports it as a dma-buf. @size is rounded up to the backend's granularity
 * (gpud_mem_size() tells the result):
 *   host  the page size, or 2 MiB with GPUD_MEM_F_HUGEPAGES;
 *   cuda  2 MiB (a dedicated, 2 MiB-aligned cuMemAlloc allocation);
 *   hip   the pool's allocation granule (normally 4 KiB), at least a page.
 *   drm   the page size.
 * The memory starts zeroed for host and vgem; GPU memory is not initialised.
 *
 * Errors (each with a message naming the cause and the fix):
 *   -EINVAL     size 0, bad options, or @kind unknown
 *   -E2BIG      larger than the backend allows (udmabuf's size_limit_mb,
 *               the message says how to raise it)
 *   -ENODEV     no /dev/udmabuf; GPU index out of range (the message gives
 *               the device count); driver library present but no device;
 *               drm: the node is missing or not a DRM device
 *   -EACCES     drm: dumb buffers asked of a render node (use cardN), or no
 *               permission to open the node
 *   -ENOENT     GPU driver library not found
 *   -EOPNOTSUPP the driver cannot export dma-bufs (e.g. NVIDIA's proprietary
 *               kernel module; a DRM driver without PRIME export or without
 *               dumb buffers)
 *   -ENOSYS     the driver library lacks an entry point (message names it)
 *   -ENOMEM and others translated from the driver's error (its own text is
 *               kept in the message)
 * When the memory can be allocated but not exported the call still succeeds
 * if GPUD_MEM_F_NO_DMABUF is set. Nothing is leaked on failure. Exported
 * host memory holds an fd per memfd segment (normally one; two when the
 * hugetlb pool is short) besides the dma-buf, for gpud_mem_slice().
 *
 * Returns 0 and stores the new object in *out (only on success).
 * Thread-safe (distinct calls create distinct objects).
 */
GPUD_API int gpud_mem_create(enum gpud_mem_kind kind, size_t size,
			     const struct gpud_mem_opts *opts, struct gpud_mem **out);

/*
 * Closes the dma-buf fd, unmaps and frees the memory. A NIC binding of the
 * dma-buf keeps its own reference to the pages (the kernel holds the dma-buf
 * until unbind), so free the binding first if the memory must really go.
 * NULL is fine. Must not race with any other call on @mem.
 */
GPUD_API void gpud_mem_free(struct gpud_mem *mem);

/*
 * A view of bytes [@off, @off + @len) of @mem with a dma-buf of its own that
 * covers only them: byte N of the slice (its dma-buf, host and device
 * pointers, gpud_mem_write/read) is byte @off + N of @mem. Why: the kernel
 * gives each RX binding of a dma-buf an allocator over all of its pages, so
 * one dma-buf bound to two NICs has both writing into the same pages; NICs
 * that share one memory need disjoint slices, one binding each. @off and
 * @len page-aligned and inside @mem (-EINVAL). Host (udmabuf) and CUDA
 * memory; other kinds -EOPNOTSUPP; memory made with GPUD_MEM_F_NO_DMABUF
 * -ENOENT. Free slices (gpud_mem_free()) before @mem. Returns 0 and *out
 * only on success.
 */
GPUD_API int gpud_mem_slice(struct gpud_mem *mem, size_t off, size_t len, struct gpud_mem **out);

/* Accessors: constant for the object's life; safe from any thread. */
GPUD_API enum gpud_mem_kind gpud_mem_kind(const struct gpud_mem *mem);
/* The size after rounding (see gpud_mem_create()). */
GPUD_API size_t gpud_mem_size(const struct gpud_mem *mem);

/*
 * The dma-buf fd, owned by @mem (do not close it; dup() it to keep it beyond
 * gpud_mem_free()), or -ENOENT when the memory was not exported
 * (GPUD_MEM_F_NO_DMABUF). The fd is close-on-exec. Byte offset N of the
 * dma-buf is byte offset N of @mem. Safe from any thread.
 */
GPUD_API int gpud_mem_dmabuf_fd(const struct gpud_mem *mem);

/*
 * CPU pointer to the memory (host: a shared mapping of the memfds), or NULL
 * for device memory. Owned by @mem. CPU reads of data a device wrote must be
 * bracketed with DMA_BUF_IOCTL_SYNC (gpud_mem_read() does that for you).
 * Safe from any thread.
 */
GPUD_API void *gpud_mem_host_ptr(const struct gpud_mem *mem);

/* Device virtual address (CUDA/HIP), or 0 for host memory. Safe from any thread. */
GPUD_API uint64_t gpud_mem_device_ptr(const struct gpud_mem *mem);

/*
 * Copies between host memory and @mem at byte offset @off (bounds-checked:
 * -ERANGE when [off, off+len) is not inside gpud_mem_size(); len 0 is a
 * no-op). Host memory that was exported is bracketed with DMA_BUF_IOCTL_SYNC
 * (START|READ ... END|READ for reads, START|RW ... END|RW for writes) so the
 * CPU sees what a device wrote and a device sees what the CPU wrote; GPU
 * memory uses the backend's synchronous copy (CUDA: cuMemcpyDtoH/HtoD, after
 * cuFlushGPUDirectRDMAWrites where the device does not order remote writes
 * itself; HIP: hsa_memory_copy). Returns 0 or -errno with the driver's
 * message. Several threads may read and write the same @mem at once (a NIC
 * may be writing too); ordering between overlapping copies is the caller's.
 */
GPUD_API int gpud_mem_write(struct gpud_mem *mem, size_t off, const void *src, size_t len);
GPUD_API int gpud_mem_read(struct gpud_mem *mem, size_t off, void *dst, size_t len);

/* Where the memory's pages are now. */
enum gpud_mem_placement {
	GPUD_MEM_PLACE_UNKNOWN = 0,	/* cannot tell here */
	GPUD_MEM_PLACE_HOST = 1,	/* system RAM */
	GPUD_MEM_PLACE_DEVICE = 2,	/* the GPU's own memory */
};

/*
 * Reports where @mem's pages are, so validation can tell whether a NIC writes
 * into GPU memory. host: HOST. cuda: DEVICE (NVIDIA's exporter hands the NIC
 * BAR1 addresses of VRAM and never migrates). drm: vgem HOST; amdgpu GTT
 * buffers HOST; amdgpu VRAM buffers as hip below, but from the counters of
 * the buffer's own DRM file (libdrm_amdgpu's), so other processes' and
 * ROCr's allocations do not blur it; other drivers UNKNOWN.
 * hip: amdgpu may have moved the
 * buffer to GTT when devmem attached it; this compares the process's amdgpu
 * memory counters (/proc/self/fdinfo of its render node: drm-memory-vram and
 * drm-memory-gtt) with the values recorded right after the export: GTT grown
 * and VRAM shrunk by at least the buffer's size means HOST; both unchanged
 * means DEVICE; anything else (counters unreadable, other allocations in
 * between) UNKNOWN. Call it after gpud_bind_rx(), with no other HIP
 * allocations in flight. Returns 0 and writes *where, or -errno.
 * Thread-safe.
 */
GPUD_API int gpud_mem_placement(const struct gpud_mem *mem, enum gpud_mem_placement *where);

/*
 * gpud_mem_placement() plus the reason in @why (may be NULL; truncated to
 * @why_len), with the numbers it was decided on, e.g. "moved from VRAM to
 * GTT (system RAM) after export: ...". Report the reason wherever the
 * placement is shown: an UNKNOWN must never read as GPU-direct.
 */
GPUD_API int gpud_mem_placement_why(const struct gpud_mem *mem, enum gpud_mem_placement *where,
				    char *why, size_t why_len);

/* "system", "vram" (device memory) or "unknown". Thread-safe. */
GPUD_API const char *gpud_mem_placement_name(enum gpud_mem_placement where);

/*
 * Whether @kind (@device for cuda/hip; ignored for host) can be used here.
 * Returns 0 when usable with dma-buf export, else a negative errno (the same
 * codes as gpud_mem_create()), and writes a one-line reason with the fix into
 * @why (may be NULL; truncated to @why_len). A usable result still says what
 * was found: the udmabuf size limit, the GPU's name, the BAR1 headroom (cuda,
 * from NVML when present: "BAR1 free X of Y MiB"; NIC bindings beyond it
 * fail), the VRAM-to-GTT migration hazard (hip).
 * drm: @device is ignored; 0 when some node in /dev/dri can create and
 * export buffers, and @why lists each node (gpud_drm_nodes_get() has the
 * details).
 * The result is cached per kind and device for the life of the process (the
 * first call loads the driver library and may take a while). Thread-safe.
 */
GPUD_API int gpud_mem_probe(enum gpud_mem_kind kind, int device, char *why, size_t why_len);

/* One /dev/dri node, as gpud_drm_nodes_get() finds it. */
struct gpud_drm_node_info {
	char path[64];		/* "/dev/dri/card0" */
	char driver[32];	/* DRM_IOCTL_VERSION's name ("vgem", "amdgpu"), "" if none */
	bool render;		/* a render node (renderDN) */
	bool prime_export;	/* DRM_CAP_PRIME has DRM_PRIME_CAP_EXPORT */
	bool dumb;		/* the driver has dumb buffers (usable on card nodes only) */
	bool usable;		/* gpud_mem_create(GPUD_MEM_DRM) with this path can work */
	int amdgpu_index;	/* N of "amdgpu:N" for amdgpu render nodes, else -1 */
	char why[192];		/* what it can do, or why not, in words */
};

/*
 * Lists the nodes in /dev/dri (cards first, then render nodes, by number),
 * opening each to ask its driver. Returns the number found (which may exceed
 * @max; only @max are written) or -errno. A node that cannot be opened is
 * listed with usable false and the reason. No privilege needed beyond
 * opening the nodes. Thread-safe.
 */
GPUD_API int gpud_drm_nodes_get(struct gpud_drm_node_info *out, size_t max);

/* ------------------------------------------------------------------ */
/* NIC configuration (ethtool netlink), restored when freed            */
/* ------------------------------------------------------------------ */

struct gpud_nic;

/*
 * Opens @ifname in the calling thread's network namespace; the object keeps
 * sockets of that namespace, so later calls (and restoration) act on the same
 * device whatever namespace the calling thread is in then. Reading needs no
 * privilege; changes need CAP_NET_ADMIN (-EPERM with a message otherwise).
 * -ENODEV: no such interface here.
 *
 * Every setter records the value it replaces the first time it changes that
 * setting; gpud_nic_free() puts the recorded values back. Two gpud_nic
 * objects of one process on one device each restore what *they* saw: free
 * them in reverse order of opening. Across processes that cannot be ordered,
 * so without an agent only one process at a time may change a device: from
 * its first change until everything is restored, a gpud_nic holds an flock
 * under $GPUD_STATE_DIR (default /run/gpudirect/nic), and another process's
 * setter fails with -EBUSY naming the holder's pid and the fix (gpudd). The
 * kernel drops the lock when the holder dies. One gpud_nic may be used from
 * several threads (calls are serialised by a lock inside).
 */
GPUD_API int gpud_nic_open(const char *ifname, struct gpud_nic **out);

/*
 * Many processes per node: the agent (gpudd, see docs/setup.md). When one is
 * reachable, gpud_nic_open_opts() and gpud_bind_rx_opts() go through it: it
 * owns header split, the RSS table and flow rules for every local process,
 * hands out distinct queues, needs no CAP_NET_ADMIN from the caller (only
 * membership of its group), and undoes what a process got when it exits,
 * SIGKILL included. Without one they work directly, as gpud_nic_open() and
 * gpud_bind_rx() always did, with the same errors.
 *
 * GPUD_AGENT_AUTO: the socket in GPUD_AGENT ("none" = no agent; a path = that
 * agent, an error when unreachable), else the default socket
 * /run/gpudirect/gpudd.sock when an agent listens there, else directly.
 * gpud_nic_open() and gpud_bind_rx() are the AUTO case.
 */
enum gpud_agent_mode {
	GPUD_AGENT_AUTO = 0,
	GPUD_AGENT_OFF = 1,	/* never: configure the NIC in this process */
	GPUD_AGENT_REQUIRE = 2,	/* fail (naming the fix) when no agent answers */
};

struct gpud_agent_opts {
	size_t sz;		/* sizeof(struct gpud_agent_opts) */
	enum gpud_agent_mode mode;
	const char *path;	/* socket; NULL: GPUD_AGENT or the default. Implies REQUIRE */
};

/*
 * gpud_nic_open() with a choice of agent (@opts NULL: AUTO). Through an
 * agent: header split on is asked of the agent (off: -EPERM, the agent keeps
 * it until it stops), the RSS table is the agent's (gpud_nic_rss_limit() is
 * a no-op that succeeds: the agent keeps RSS off every held queue), channel
 * counts are the agent's (-EPERM), flow rules exist only for sockets
 * (gpud_nic_add_flow_sock(); gpud_nic_add_flow() by addresses: -EPERM).
 * Errors of the connection: -EACCES (not in the agent's group; the message
 * names it), -EPROTONOSUPPORT (no common protocol version), -ECONNREFUSED /
 * -ENOENT (a required agent does not answer), -ETIMEDOUT.
 */
GPUD_API int gpud_nic_open_opts(const char *ifname, const struct gpud_agent_opts *opts,
				struct gpud_nic **out);
/* Whether @nic works through gpudd. */
GPUD_API bool gpud_nic_via_agent(const struct gpud_nic *nic);
/*
 * Queues for this process: @rank >= 0 asks for the queue of local rank
 * @rank (@n must be 1), @rank < 0 for any @n queues. Through the agent they
 * are this process's alone until gpud_nic_free() or its exit; -EEXIST when
 * another process holds the rank's queue, -EBUSY when too few are free.
 * Directly (no agent) nothing is reserved: the highest queues are returned
 * (rank k: the last queue minus k), as a single process would pick them.
 * Writes @n queues to @out.
 */
GPUD_API int gpud_nic_alloc_queues(struct gpud_nic *nic, unsigned int n, int rank,
				   unsigned int *out);
/*
 * Steers the connection of the connected TCP socket @sockfd to @queue; the
 * 4-tuple is read from the socket (getsockname/getpeername), so a process
 * can only steer connections it holds. Through the agent the socket is
 * passed to it (SCM_RIGHTS) and it checks the socket is connected and in
 * its network namespace (-ENOTCONN, -EXDEV), and that @queue is this
 * process's (-EPERM). Removed by gpud_nic_del_flow() or gpud_nic_free().
 */
GPUD_API int gpud_nic_add_flow_sock(struct gpud_nic *nic, int sockfd, unsigned int queue,
				    uint32_t *rule_id);

/*
 * Undoes what processes that died without gpud_nic_free() (SIGKILL, a
 * crash, a killed gpudd) left on @ifname (NULL: every interface): each
 * gpud_nic that changed a NIC journals the originals and its rules under
 * $GPUD_STATE_DIR (default /run/gpudirect/nic); journals of owners that are
 * gone are restored (rules removed, RSS table, channels, header split) and
 * removed. Journals of live processes, and of other network namespaces,
 * are left alone and counted. What is undone is in *st (may be NULL).
 * Needs CAP_NET_ADMIN for the changes. `gpudctl cleanup IFNAME` calls it.
 */
struct gpud_cleanup_stats {
	size_t sz;		/* sizeof(struct gpud_cleanup_stats) */
	unsigned int journals;	/* dead owners whose changes were undone */
	unsigned int rules;	/* n-tuple rules removed */
	unsigned int rss;	/* RSS tables restored */
	unsigned int hds;	/* header-split settings restored */
	unsigned int live;	/* journals of running processes, left alone */
	unsigned int other_netns;	/* journals of another namespace, left alone */
	unsigned int channels;	/* RX channel counts restored (gpudd raises them) */
};
GPUD_API int gpud_nic_cleanup(const char *ifname, struct gpud_cleanup_stats *st);

/*
 * Restores every setting this object changed (flow rules removed, RSS table,
 * channel counts, header split, in that order) and frees it. Restoration
 * failures are logged at WARN and do not stop the rest. NULL ok.
 */
GPUD_API void gpud_nic_free(struct gpud_nic *nic);

GPUD_API const char *gpud_nic_name(const struct gpud_nic *nic);
GPUD_API int gpud_nic_ifindex(const struct gpud_nic *nic);
/*
 * Number of RX queues in use (real_num_rx_queues, from a netdev-family queue
 * dump in the namespace @nic was opened in; RX + combined channels on kernels
 * without that family), or -errno.
 */
GPUD_API int gpud_nic_rx_queues(const struct gpud_nic *nic);

/* TCP header split (ethtool rings tcp-data-split). */
enum gpud_hds {
	GPUD_HDS_UNKNOWN = 0,		/* the driver has ring parameters but does not say */
	GPUD_HDS_DISABLED = 1,
	GPUD_HDS_ENABLED = 2,
	GPUD_HDS_UNSUPPORTED = 3,	/* no ring parameters at all (e.g. veth) */
};
/* Queries header split; an unsupporting driver is not an error (UNSUPPORTED). */
GPUD_API int gpud_nic_get_header_split(struct gpud_nic *nic, enum gpud_hds *state);
/*
 * Turns header split on or off (-EOPNOTSUPP with the kernel's extack when the
 * driver cannot). devmem needs it on: the payload must land in buffers of its
 * own, apart from the headers.
 */
GPUD_API int gpud_nic_set_header_split(struct gpud_nic *nic, bool on);

/*
 * Sets the RX channel count (ethtool -L): "combined" channels where the
 * driver pairs RX with TX, else "rx".
 */
GPUD_API int gpud_nic_set_rx_channels(struct gpud_nic *nic, unsigned int count);

/*
 * Flow steering (ethtool -N flow-type tcp4/tcp6 ... action QUEUE). Addresses
 * are in network byte order; a zero port or address means "any". Returns 0 and
 * the rule's location in *rule_id; the rule is removed by gpud_nic_free().
 * The driver chooses the location where it can (RX_CLS_LOC_ANY); otherwise
 * the highest free one is used. -EOPNOTSUPP: the driver has no n-tuple
 * rules; -EINVAL: it refused this rule (often: ntuple feature off, see
 * ethtool -K IFNAME ntuple on).
 */
struct gpud_flow {
	size_t sz;		/* sizeof(struct gpud_flow) */
	int family;		/* AF_INET or AF_INET6 */
	uint8_t dst_addr[16];
	uint8_t src_addr[16];
	uint16_t dst_port;	/* network byte order */
	uint16_t src_port;	/* network byte order */
};
GPUD_API int gpud_nic_add_flow(struct gpud_nic *nic, const struct gpud_flow *flow,
			       unsigned int queue, uint32_t *rule_id);
/* Removes a rule this object added (-ENOENT for any other). */
GPUD_API int gpud_nic_del_flow(struct gpud_nic *nic, uint32_t rule_id);
/*
 * 0 when the driver implements n-tuple rules (it can list them), else
 * -EOPNOTSUPP. Needs no privilege and changes nothing.
 */
GPUD_API int gpud_nic_probe_flow_steering(struct gpud_nic *nic);

/*
 * Spreads RSS only over queues [0, @first_excluded) so that queues from
 * @first_excluded up carry only steered (devmem) flows. The original table is
 * restored by gpud_nic_free() (the driver's default spread if it was that).
 * -ERANGE: @first_excluded is 0 or above the RX ring count.
 */
GPUD_API int gpud_nic_rss_limit(struct gpud_nic *nic, unsigned int first_excluded);

/*
 * Opt-in: restore every live gpud_nic when SIGINT or SIGTERM arrives, then
 * let the signal do what it did before (by default: end the process).
 * The library installs no handler unless this is called with true.
 *
 * How: the handler only writes the signal number into a pipe (the one
 * async-signal-safe step); a watcher thread started here does the netlink
 * work, restores the previous dispositions, and sends the signal to the
 * process again. So a process that had its own handler gets it called after
 * the restoration (once: the feature is one-shot, call again to re-arm after
 * disabling), and one with the default action still dies of the signal, with
 * its exit status saying so. Signals that were ignored (SIG_IGN, as for
 * background jobs) stay ignored. Install your own handlers *before* calling
 * this, or they replace ours.
 *
 * Not covered: SIGKILL and crashes (nothing can run then; free your objects
 * on every path); bindings need nothing, the kernel unbinds when the process's
 * netlink socket closes. Not inherited usefully across fork(): call it in the
 * process that owns the NICs. false removes the handlers and stops the thread.
 * Returns 0 or -errno.
 */
GPUD_API int gpud_nic_restore_on_signal(bool enable);

/* ------------------------------------------------------------------ */
/* dma-buf binding to RX queues (netdev netlink family)                */
/* ------------------------------------------------------------------ */

struct gpud_binding;

/*
 * Binds @mem's dma-buf to RX queues @queues[0..nqueues) of @ifindex (in the
 * calling thread's namespace) with NETDEV_CMD_BIND_RX. The binding lives
 * exactly as long as the returned object: it owns the netlink socket that
 * made it, and the kernel unbinds when that socket closes (also when the
 * process dies). The kernel holds its own reference on the dma-buf, but keep
 * @mem alive while receiving: fragments point into it. The socket is
 * close-on-exec, but a child made with fork() shares it: the binding then
 * outlives gpud_binding_free() until the child closes its copy or exits.
 *
 * Errors carry the kernel's extack (message and bad attribute) and our
 * explanation with the fix:
 *   -EOPNOTSUPP  "eth1 has no queue management API: devmem needs a NIC driver
 *                that supports it"; or a kernel without devmem (before 6.12)
 *   -EEXIST      "queue 1 of eth1 is already bound (dma-buf id 3)", or an XDP
 *                program is attached
 *   -ERANGE      "queue 9 out of range, eth1 has 4 RX queues"
 *   -EPERM       needs CAP_NET_ADMIN
 *   -EBADF/-EINVAL the fd is not a dma-buf; -EINVAL also when header split
 *                is off (newer kernels say "tcp-data-split is disabled")
 *   -ENODATA     the driver's page pool does not take devmem memory
 * Returns 0 and stores the object in *out only on success.
 */
GPUD_API int gpud_bind_rx(int ifindex, struct gpud_mem *mem, const unsigned int *queues,
			  size_t nqueues, struct gpud_binding **out);
/*
 * gpud_bind_rx() with a choice of agent (@opts NULL: AUTO). Through gpudd
 * the dma-buf fd is passed to the agent, which binds it (the binding is then
 * owned by the agent's netlink socket for this object's connection); queues
 * not yet held by this process are taken for it, -EEXIST when another
 * process holds one. The kernel's extack arrives in the message unchanged.
 * Receiving (MSG_SOCK_DEVMEM) and returning tokens need no privilege, so the
 * caller receives on its own sockets as with a binding of its own.
 */
GPUD_API int gpud_bind_rx_opts(int ifindex, struct gpud_mem *mem, const unsigned int *queues,
			       size_t nqueues, const struct gpud_agent_opts *opts,
			       struct gpud_binding **out);
/*
 * The agent's state as a JSON document (clients, their queues, bindings and
 * rules; per interface the pool, held queues and RSS spread), malloc()ed
 * into *json. @opts NULL: AUTO, but an agent is required.
 */
GPUD_API int gpud_agent_status(const struct gpud_agent_opts *opts, char **json);
/* Unbinds (closes the binding's netlink socket) and frees. NULL ok. */
GPUD_API void gpud_binding_free(struct gpud_binding *b);
/* The dma-buf id the kernel assigned (> 0); it tags received fragments. */
GPUD_API uint32_t gpud_binding_id(const struct gpud_binding *b);

/*
 * Whether this kernel can bind dma-bufs to RX queues at all: the "netdev"
 * generic netlink family resolves and offers NETDEV_CMD_BIND_RX (Linux
 * 6.12+). Says nothing about a NIC (see gpudctl doctor for that). 0, or
 * -EOPNOTSUPP with the reason in gpud_errmsg(). No privilege needed.
 */
GPUD_API int gpud_devmem_probe(void);

/*
 * Introspection through the netdev family (queue and page-pool dumps), for
 * `gpudctl status` and for tests that prove pools drained after unbind.
 * @ifindex 0 means all devices in the calling thread's namespace. Each
 * returns the number of entries found (which may exceed @max; only @max are
 * written) or -errno.
 */
struct gpud_queue_info {
	int ifindex;
	uint32_t id;
	uint32_t type;		/* 0 = rx, 1 = tx */
	uint32_t napi_id;
	uint32_t dmabuf_id;	/* 0 = not bound */
};
GPUD_API int gpud_queues_get(int ifindex, struct gpud_queue_info *out, size_t max);

struct gpud_page_pool_info {
	int ifindex;		/* 0 once the device is gone */
	uint32_t id;
	uint32_t napi_id;
	uint32_t dmabuf_id;	/* 0 = ordinary pages */
	uint64_t inflight;	/* pages/net_iovs handed out and not yet returned */
	uint64_t inflight_mem;	/* bytes */
	uint64_t detach_time;	/* 0 = still attached to its queue */
};
GPUD_API int gpud_page_pools_get(int ifindex, struct gpud_page_pool_info *out, size_t max);

/* ------------------------------------------------------------------ */
/* Receive: devmem fragments or copy fallback, one API                 */
/* ------------------------------------------------------------------ */

/*
 * A gpud_rx turns one connected TCP socket into a stream of fragments: pieces
 * of payload, in stream order, each located by an offset in a gpud_mem. The
 * caller consumes fragments (e.g. a GPU kernel gathers them into its buffer)
 * and gives them back with gpud_rx_release(). The same calls work whether the
 * NIC wrote the payload into the memory (devmem) or the CPU copied it there
 * (copy mode), so a caller has one code path.
 *
 * Two memories, told apart per fragment by GPUD_FRAG_COPY:
 *  - without the flag, the offset is in the dma-buf bound with gpud_bind_rx()
 *    (byte N of the dma-buf is byte N of that gpud_mem). The NIC wrote it;
 *    the kernel lends it until released (SO_DEVMEM_DONTNEED).
 *  - with the flag, the offset is in the copy target, gpud_rx_copy_mem(): a
 *    ring the library fills with recv() + gpud_mem_write() (memcpy for host
 *    memory, the backend's host-to-device copy for GPU memory) and whose
 *    regions gpud_rx_release() frees.
 * In copy mode every fragment has the flag. In devmem mode some may have it
 *    too: the kernel delivers bytes it could not put into the dma-buf (a
 *    packet the NIC did not split: SCM_DEVMEM_LINEAR; a segment that did not
 *    come through a bound queue) in host memory; the library copies those into
 *    the copy target so that they, too, reach the caller's (GPU) memory, and
 *    counts them in gpud_rx_stats.bytes_copied. Give the copy target in the
 *    same GPU as the bound memory (opts.copy_mem) when the consumer is a GPU
 *    kernel; by default it is library-owned host memory. The copy target must
 *    never be the bound memory: the NIC owns every page of that.
 *
 * Modes and how they are chosen (gpud_rx_mode(), gpud_rx_mode_reason()):
 *  COPY    recv() into the copy target. No binding needed. A flow steered to
 *          a bound queue cannot be read this way: recv fails with -EFAULT
 *          and the message says so.
 *  DEVMEM  recvmsg(MSG_SOCK_DEVMEM). Needs opts.binding. If the first data
 *          of the stream arrives in host memory instead (flow not steered to
 *          a bound queue, NIC without header split), gpud_rx_recv() fails
 *          with -EOPNOTSUPP and the reason: demanded zero-copy never
 *          silently degrades.
 *  AUTO    no binding: COPY, reason "no dma-buf binding" (or
 *          opts.no_binding_reason, e.g. gpud_errmsg() of a failed
 *          gpud_bind_rx()). With a binding: recvmsg(MSG_SOCK_DEVMEM), and the
 *          first data decides: dma-buf fragments -> DEVMEM; host memory ->
 *          COPY with the reason. Until then gpud_rx_mode() answers
 *          GPUD_RX_AUTO. Data is never lost either way: with a binding the
 *          library accepts both kinds of data for the whole stream.
 *
 * Thread safety: one gpud_rx per socket, used by one thread at a time (recv,
 * release, stats and free must not run concurrently on the same gpud_rx;
 * distinct gpud_rx objects are independent). Fragment memory may be read by
 * any thread or device until released.
 */
enum gpud_rx_mode {
	GPUD_RX_AUTO = 0,	/* devmem when a binding is given and works, else copy */
	GPUD_RX_DEVMEM = 1,
	GPUD_RX_COPY = 2,
};

struct gpud_rx_opts {
	size_t sz;			/* sizeof(struct gpud_rx_opts) */
	enum gpud_rx_mode mode;		/* requested mode */
	/* devmem: the binding the flow is steered to (not owned; must outlive the rx) */
	struct gpud_binding *binding;
	/*
	 * Copy target (not owned; must outlive the rx), used as a ring. NULL:
	 * the library allocates copy_ring bytes of host memory. Must not be
	 * the bound memory.
	 */
	struct gpud_mem *copy_mem;
	size_t copy_chunk;		/* bytes per recv call (default 256 KiB, devmem 1 MiB) */
	size_t copy_ring;		/* size of the library's copy target (default 8 MiB) */
	const char *no_binding_reason;	/* AUTO without binding: the reason to report (copied) */
};

/* gpud_frag.flags */
#define GPUD_FRAG_COPY	(1u << 0)	/* offset is in gpud_rx_copy_mem(), not the bound mem */

/* One piece of payload, located in a gpud_mem. Hand it back unchanged. */
struct gpud_frag {
	uint64_t offset;	/* byte offset in the bound mem, or in the copy mem (GPUD_FRAG_COPY) */
	uint32_t len;
	uint32_t token;		/* give back with gpud_rx_release() */
	uint32_t flags;		/* GPUD_FRAG_* */
	uint32_t reserved;	/* 0 */
};

struct gpud_rx;

/*
 * Wraps connected TCP socket @fd (not owned; the caller closes it after
 * gpud_rx_free()). Errors: -EINVAL (bad options; DEVMEM without a binding),
 * -ENOTSOCK / -EPROTONOSUPPORT (not a TCP stream socket), -ENOMEM, and those
 * of gpud_mem_create() for the library's copy target. Returns 0 and *out only
 * on success.
 */
GPUD_API int gpud_rx_open(int fd, const struct gpud_rx_opts *opts, struct gpud_rx **out);
/*
 * Returns every outstanding devmem token to the kernel (so the NIC's page
 * pool gets its pages back), frees the copy target if the library made it,
 * then frees @rx. Fragments still held become invalid. NULL ok.
 */
GPUD_API void gpud_rx_free(struct gpud_rx *rx);

/* GPUD_RX_DEVMEM or GPUD_RX_COPY; GPUD_RX_AUTO while AUTO awaits the first data. */
GPUD_API enum gpud_rx_mode gpud_rx_mode(const struct gpud_rx *rx);
/* Why this mode, e.g. "copy: no dma-buf binding". Owned by @rx. */
GPUD_API const char *gpud_rx_mode_reason(const struct gpud_rx *rx);
/* The memory GPUD_FRAG_COPY fragments point into. Owned as described above. */
GPUD_API struct gpud_mem *gpud_rx_copy_mem(const struct gpud_rx *rx);

/*
 * Receives up to @max_frags fragments (at least 1). Blocks like recv() on a
 * blocking socket for the first byte; @flags may be MSG_DONTWAIT and/or
 * MSG_WAITALL (anything else is -EINVAL). Entries of @frags past the returned
 * count are unspecified (also after an error). Returns
 * the number of fragments (> 0), 0 at orderly EOF (after all data), or
 * -errno:
 *   -EAGAIN     non-blocking and nothing to read (no message)
 *   -ENOBUFS    the copy ring is full: release fragments first
 *   -EFAULT     copy mode, but the flow's data is in a bound dma-buf
 *   -EOPNOTSUPP DEVMEM demanded but the data arrives in host memory
 *   -EXDEV      a fragment of another binding (another dma-buf) arrived
 *   -ENODEV, -EPROTO  the kernel delivered inconsistent devmem data
 *   -ECONNRESET, -ETIMEDOUT ... from the socket
 * Errors after data was consumed from the socket (all but -EAGAIN,
 * -ENOBUFS, -EINTR) are sticky: the stream is broken, every later call
 * returns the same error; devmem tokens of the failed call are returned to
 * the kernel, nothing leaks. Fragments stay valid, and their memory
 * untouched by the NIC and the library, until released.
 */
GPUD_API int gpud_rx_recv(struct gpud_rx *rx, struct gpud_frag *frags, size_t max_frags,
			  int flags);

/*
 * Gives fragments back, in any order and any grouping (batched
 * SO_DEVMEM_DONTNEED for devmem tokens, ring regions for copies). The whole
 * call is checked first: a fragment not outstanding (released twice, never
 * received, altered) fails it with -EINVAL and releases nothing. Returns 0
 * or -errno (-EIO when the kernel did not hold a token it handed out; those
 * are forgotten).
 */
GPUD_API int gpud_rx_release(struct gpud_rx *rx, const struct gpud_frag *frags, size_t n);

struct gpud_rx_stats {
	uint64_t bytes;			/* payload bytes received */
	uint64_t bytes_devmem;		/* of which written by the NIC into the dma-buf */
	uint64_t bytes_copied;		/* of which copied by the CPU */
	uint64_t frags;
	uint64_t tokens_released;	/* devmem tokens given back to the kernel */
	uint64_t tokens_outstanding;	/* fragments (devmem and copy) not yet released */
	uint64_t recv_calls;		/* recv/recvmsg system calls */
	uint64_t dontneed_calls;	/* SO_DEVMEM_DONTNEED system calls */
};
/* Writes a snapshot into *st. */
GPUD_API void gpud_rx_get_stats(const struct gpud_rx *rx, struct gpud_rx_stats *st);

/* ------------------------------------------------------------------ */
/* RDMA: register a gpud_mem with an RDMA device (rdma-core)           */
/* ------------------------------------------------------------------ */

/*
 * The same dma-buf a NIC receives into can be handed to an RDMA device, so a
 * peer can RDMA-write into (or read from) GPU memory. libibverbs.so.1 (or env
 * GPUD_LIBIBVERBS) is dlopen()ed at first use: the library builds and runs
 * without rdma-core, and these calls then fail with -ENOENT and the package
 * to install.
 *
 * Objects (every create has its free):
 *   gpud_rdma_dev  an opened RDMA device and a protection domain on it.
 *   gpud_rdma_mr   a memory region of a gpud_mem on a gpud_rdma_dev. It holds
 *                  a reference on its gpud_rdma_dev (freeing the device
 *                  object first is fine: the last MR to go closes it) and a
 *                  dup of the gpud_mem's dma-buf fd.
 *
 * How a region is registered, tried in this order:
 *   1. ibv_reg_dmabuf_mr() on the dma-buf (libibverbs 34+; providers mlx5,
 *      efa, bnxt_re, irdma, mana, ionic). RDMA importers attach with
 *      peer-to-peer allowed, so GPU memory stays in place.
 *   2. The provider cannot (soft-RoCE rxe and siw: EOPNOTSUPP) and the
 *      memory has a CPU mapping in system RAM (gpud_mem_host_ptr(): host
 *      memory, vgem): ibv_reg_mr() of that mapping, which pins its pages.
 *   3. Otherwise -EOPNOTSUPP, naming the device and its provider.
 *
 * Thread safety: distinct objects are independent; a gpud_rdma_dev may be
 * used by several threads at once (registration is thread-safe in verbs).
 */
struct gpud_rdma_dev;
struct gpud_rdma_mr;

/* Access flags for gpud_rdma_reg(); the values are IBV_ACCESS_*'s. */
#define GPUD_RDMA_ACCESS_LOCAL_WRITE	(1u << 0)
#define GPUD_RDMA_ACCESS_REMOTE_WRITE	(1u << 1)
#define GPUD_RDMA_ACCESS_REMOTE_READ	(1u << 2)

/*
 * Opens RDMA device @ibdev ("mlx5_0", "rxe0"; NULL: the first one) and
 * allocates a protection domain on it. Errors: -ENOENT libibverbs.so.1 not
 * installed; -ENODEV no such device (the message lists those present and how
 * to add a soft-RoCE one) or none at all; -ENOSYS the library lacks an entry
 * point; others from ibv_open_device()/ibv_alloc_pd() (-EACCES: no access to
 * /dev/infiniband/uverbsN). Returns 0 and *out only on success.
 */
GPUD_API int gpud_rdma_dev_open(const char *ibdev, struct gpud_rdma_dev **out);

/*
 * Drops the caller's reference; the PD and device context go when the last
 * gpud_rdma_mr on it is freed too. NULL ok.
 */
GPUD_API void gpud_rdma_dev_free(struct gpud_rdma_dev *dev);

/* The device's name ("rxe0"). Owned by @dev. */
GPUD_API const char *gpud_rdma_dev_name(const struct gpud_rdma_dev *dev);
/*
 * Its provider as far as sysfs tells: the kernel driver bound to the device
 * ("mlx5_core"), "rxe" for soft-RoCE, else "unknown". Owned by @dev.
 */
GPUD_API const char *gpud_rdma_dev_provider(const struct gpud_rdma_dev *dev);
/*
 * The verbs objects, for the caller's own queue pairs and completion queues:
 * a struct ibv_context * and a struct ibv_pd * (void * here so that this
 * header does not need <infiniband/verbs.h>). Owned by @dev: never close or
 * deallocate them. The caller must use the same libibverbs.so.1 (a process
 * has one copy once it is loaded).
 */
GPUD_API void *gpud_rdma_dev_context(const struct gpud_rdma_dev *dev);
GPUD_API void *gpud_rdma_dev_pd(const struct gpud_rdma_dev *dev);

/* How a region was registered (gpud_rdma_mr_how()). */
enum gpud_rdma_mr_how {
	GPUD_RDMA_MR_DMABUF = 1,	/* ibv_reg_dmabuf_mr: the device imports the dma-buf */
	GPUD_RDMA_MR_HOST_VA = 2,	/* ibv_reg_mr of the CPU mapping (fallback) */
};

/*
 * Registers bytes [@off, @off + @len) of @mem (@len 0: to the end) with
 * @dev's PD, for @access (GPUD_RDMA_ACCESS_*). The region's address in work
 * requests (its iova) is @off whichever way it was registered: byte N of
 * @mem is at address N. The MR keeps the memory alive: @mem may be freed
 * before the MR (the MR holds a dup of the dma-buf fd, the kernel its own
 * reference or pinned pages), but registering a gpud_mem that was already
 * freed is the caller's bug (a dangling pointer cannot be detected).
 *
 * Errors: -EINVAL bad arguments or a range outside @mem; -EOPNOTSUPP the
 * provider cannot import dma-bufs and @mem has no system-RAM CPU mapping
 * (the message names device and provider, and what would work); -EFAULT the
 * CPU mapping cannot be pinned (fallback failed); -ENODEV the device is gone
 * (unplugged, or its rxe link deleted); others from the provider.
 * Returns 0 and *out only on success. Thread-safe.
 */
GPUD_API int gpud_rdma_reg(struct gpud_rdma_dev *dev, struct gpud_mem *mem, size_t off,
			   size_t len, uint32_t access, struct gpud_rdma_mr **out);

/*
 * Deregisters (ibv_dereg_mr), closes the dup'd dma-buf fd and drops the
 * device reference. A failing deregistration (device gone) is logged at WARN
 * and the object freed anyway. NULL ok.
 */
GPUD_API void gpud_rdma_mr_free(struct gpud_rdma_mr *mr);

/* Keys and address for work requests; constant for the MR's life. */
GPUD_API uint32_t gpud_rdma_mr_lkey(const struct gpud_rdma_mr *mr);
GPUD_API uint32_t gpud_rdma_mr_rkey(const struct gpud_rdma_mr *mr);
/* The iova of the region's first byte (= the @off it was registered at). */
GPUD_API uint64_t gpud_rdma_mr_addr(const struct gpud_rdma_mr *mr);
GPUD_API size_t gpud_rdma_mr_length(const struct gpud_rdma_mr *mr);
GPUD_API enum gpud_rdma_mr_how gpud_rdma_mr_how(const struct gpud_rdma_mr *mr);
/* The struct ibv_mr * itself (owned by @mr), for callers that want it. */
GPUD_API void *gpud_rdma_mr_ibv(const struct gpud_rdma_mr *mr);

/* One RDMA device, as gpud_rdma_devs_get() finds it. */
struct gpud_rdma_dev_info {
	char name[64];		/* "rxe0" */
	char provider[32];	/* as gpud_rdma_dev_provider() */
	char netdev[32];	/* the netdev under a soft-RoCE device, else "" */
	int dmabuf;		/* 1: ibv_reg_dmabuf_mr works, 0: it does not, -1: unknown */
	char why[192];		/* what it can do, or why not, in words */
};

/*
 * Lists the RDMA devices, opening each to ask whether it imports dma-bufs
 * (NCCL's probe: ibv_reg_dmabuf_mr with fd -1 answers EBADF where it can).
 * Returns the number found (may exceed @max; only @max are written), or
 * -errno (-ENOENT: libibverbs.so.1 not installed). Thread-safe.
 */
GPUD_API int gpud_rdma_devs_get(struct gpud_rdma_dev_info *out, size_t max);

/*
 * Reliable-connected queue pairs on a gpud_rdma_dev: one RC QP with its
 * completion queue (shared by send and receive) and, for callers that sleep
 * in gpud_rdma_qp_wait(), a completion channel. The library brings the QP
 * up (INIT -> RTR -> RTS) and picks the GID; posting work requests and
 * polling the CQ stay the caller's, with <infiniband/verbs.h>'s inlines on
 * gpud_rdma_qp_ibv()/_cq() (the same libibverbs copy, as above).
 *
 * The two sides swap a struct gpud_rdma_ep over a channel of their own
 * (gpud_rdma_qp_local() -> peer -> gpud_rdma_qp_connect()); its fields are
 * plain integers, so it can be put on any wire field by field.
 *
 * Built only where rdma-core's headers (libibverbs-dev) were installed at
 * build time; otherwise gpud_rdma_qp_create() fails with -ENOSYS saying so.
 * A QP holds a reference on its device, like an MR. One thread at a time
 * per QP.
 */
struct gpud_rdma_qp;

/* One side of a connection, as the peer needs it. */
struct gpud_rdma_ep {
	uint32_t qpn;
	uint32_t psn;		/* the first packet sequence number this side sends */
	uint32_t lid;		/* InfiniBand port LID (0 on RoCE) */
	uint32_t mtu;		/* the port's active MTU, an enum ibv_mtu value (1..5) */
	uint32_t grh;		/* 1: this side routes with a GRH (RoCE, or a chosen GID) */
	uint8_t gid[16];
};

struct gpud_rdma_qp_opts {
	unsigned int depth;	/* send and receive queue depth; 0: 16. CQ: 2 * depth + 1 */
	/*
	 * GID index to send from; -1: chosen: on RoCE the IPv4-mapped GID of
	 * @sock's local address if it has one, else any IPv4 GID, RoCE v2
	 * before v1, waiting up to 5 s for the table to fill (rxe fills it
	 * after the address appears); on InfiniBand GID 0 and LID routing.
	 */
	int gid_index;
	int sock;		/* a connected socket to match the GID to; -1: none */
	uint32_t psn;		/* our first PSN (24 bits) */
	/*
	 * Local ACK timeout exponent: 4.096 us * 2^timeout per try, 7 tries.
	 * 0: 17 (0.54 s: soft-RoCE in an emulated VM can take longer than the
	 * usual 67 ms to acknowledge a window, and an early retry resends all
	 * of it).
	 */
	unsigned int timeout;
	bool channel;		/* create a completion channel for gpud_rdma_qp_wait() */
};

/*
 * An RC QP in INIT on port 1 of @dev accepting remote writes (and local
 * writes), its CQ and (with @o->channel) a non-blocking completion channel.
 * Errors: -ENOSYS built without rdma-core's headers or libibverbs lacks a QP
 * call; -ENETDOWN port 1 not active (the message says how to bring it up);
 * -EADDRNOTAVAIL no usable GID; -EINVAL a GID index that does not exist;
 * others from the provider. Returns 0 and *out only on success.
 */
GPUD_API int gpud_rdma_qp_create(struct gpud_rdma_dev *dev, const struct gpud_rdma_qp_opts *o,
				 struct gpud_rdma_qp **out);
/*
 * Port 1 of @dev can carry a QP: active, and (RoCE) an IPv4 GID present.
 * 0, or the -errno gpud_rdma_qp_create() would fail with, with its message.
 */
GPUD_API int gpud_rdma_port_check(struct gpud_rdma_dev *dev);
/* What the peer needs to connect to @qp. */
GPUD_API void gpud_rdma_qp_local(const struct gpud_rdma_qp *qp, struct gpud_rdma_ep *out);
/*
 * INIT -> RTR -> RTS towards @peer; the path MTU is the smaller of the two
 * ports' active MTUs. -EINVAL (the message names the transition) or the
 * provider's -errno.
 */
GPUD_API int gpud_rdma_qp_connect(struct gpud_rdma_qp *qp, const struct gpud_rdma_ep *peer);
/* The struct ibv_qp * and struct ibv_cq * (owned by @qp). */
GPUD_API void *gpud_rdma_qp_ibv(const struct gpud_rdma_qp *qp);
GPUD_API void *gpud_rdma_qp_cq(const struct gpud_rdma_qp *qp);
/* The GID index it sends from; the path MTU in bytes once connected (else 0). */
GPUD_API int gpud_rdma_qp_gid_index(const struct gpud_rdma_qp *qp);
GPUD_API unsigned int gpud_rdma_qp_path_mtu(const struct gpud_rdma_qp *qp);
/*
 * Sleeps until the CQ has an event or @fd (-1: none) is readable, at most
 * @ms. The caller armed the CQ (ibv_req_notify_cq) and polled it empty
 * after arming, so no completion slips between the two. Returns 1 when it
 * consumed (and acknowledged) a CQ event, 0 otherwise (timeout, @fd ready,
 * a signal), -EINVAL without a channel, -errno on failure.
 */
GPUD_API int gpud_rdma_qp_wait(struct gpud_rdma_qp *qp, int fd, int ms);
/* ibv_wc_status_str() of the loaded libibverbs, for a work completion's status. */
GPUD_API const char *gpud_rdma_wc_status_str(const struct gpud_rdma_qp *qp, int status);
/* QP, then CQ, then channel; drops the device reference. NULL ok. */
GPUD_API void gpud_rdma_qp_free(struct gpud_rdma_qp *qp);

#ifdef __cplusplus
}
#endif

#endif /* GPUDIRECT_GPUDIRECT_H */
