/* SPDX-License-Identifier: MIT */
/*
 * libnccl-net-devmem, layer 0 (base): logging, configuration, addresses, the
 * device table and the pool-memory choice. Every layer above includes this;
 * it includes no other layer. Layers, bottom up: base → gpu → placement →
 * engine → conn → api → abi (docs/architecture.md).
 *
 * The ABI edge (api/net.c, abi/) speaks ncclResult_t; everything below it
 * returns 0 or -errno and logs why.
 */
#ifndef DM_BASE_H
#define DM_BASE_H

#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ncclnet/net.h"

#define DM_NAME "devmem"
#define DM_MAX_DEVS 16			/* interfaces (physical devices) */
#define DM_MAX_VDEVS 16			/* fused devices makeVDevice may add */
/* devices one fused NIC may hold: v12's NCCL_NET_MAX_DEVS_PER_NIC (v9..v11 have 4) */
#define DM_MAX_MEMBERS NCCL_NET_MAX_DEVS_PER_NIC_V12
#define DM_MAX_SOCKS 16
#define DM_MIN_CHUNK (64u << 10)	/* below this striping costs more than it gains */

#define DM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DM_DIV_ROUND_UP(a, b) (((a) + (b) - 1) / (b))

/* ---- logging (log.c) ---- */
void dm_log_set(ncclDebugLogger_t fn);
void dm_log(ncclDebugLogLevel level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define DM_WARN(...) dm_log(NCCL_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define DM_INFO(...) dm_log(NCCL_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define DM_TRACE(...) dm_log(NCCL_LOG_TRACE, __FILE__, __LINE__, __VA_ARGS__)
/*
 * While on, the calling thread's libgpudirect errors are the caller's to
 * report, with what they mean for the job (one WARN, not two): the library's
 * own line goes to INFO.
 */
void dm_lib_errors_own(bool on);
bool dm_lib_errors_owned(void);
/* -errno (or a plugin code below) → ncclResult_t at the ABI edge */
ncclResult_t dm_result(int err);
/* Errors that mean "the other side did something wrong", not our system. */
#define DM_EREMOTE 100000
double dm_now(void);

/* ---- addresses (addr.c): IPv4 and IPv6 alike ---- */
union dm_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};
socklen_t dm_addr_len(const union dm_addr *a);
uint16_t dm_addr_port(const union dm_addr *a);
void dm_addr_set_port(union dm_addr *a, uint16_t port);
/* @family's address from @bytes (4 or 16, network order) and @port (host order). */
void dm_addr_set(union dm_addr *a, int family, const uint8_t *bytes, uint16_t port);
const void *dm_addr_bytes(const union dm_addr *a, size_t *len);
bool dm_addr_same_host(const union dm_addr *a, const union dm_addr *b);
void dm_addr_str(const union dm_addr *a, char *buf, size_t len);
const char *dm_family_name(int family);

/* ---- configuration (env.c) ---- */
enum dm_mode { DM_MODE_AUTO = 0, DM_MODE_DEVMEM = 1, DM_MODE_COPY = 2 };
/* Who copies devmem fragments into NCCL's buffer (NCCL_DEVMEM_UNPACK). */
enum dm_unpack {
	DM_UNPACK_PLUGIN = 0,	/* we do (memcpy, or our CUDA kernel), before test() says done */
	DM_UNPACK_NCCL = 1,	/* NCCL's kernels do, from metadata we publish (devq.c) */
};

struct dm_config {
	char ifname[256];	/* NCCL_DEVMEM_IFNAME, comma list, "" = auto */
	int family;		/* NCCL_DEVMEM_FAMILY: AF_INET, AF_INET6, AF_UNSPEC = per interface */
	char queues[64];	/* NCCL_DEVMEM_QUEUES, e.g. "15" or "12-15" */
	int nsocks;		/* NCCL_DEVMEM_NSOCKS */
	int nthreads;		/* NCCL_DEVMEM_NTHREADS */
	enum dm_mode mode;	/* NCCL_DEVMEM_MODE */
	uint64_t pool_size;	/* NCCL_DEVMEM_POOL_SIZE */
	uint32_t chunk;		/* NCCL_DEVMEM_CHUNK_SIZE */
	int timeout_ms;		/* NCCL_DEVMEM_TIMEOUT_MS */
	enum dm_unpack unpack;	/* NCCL_DEVMEM_UNPACK */
	int unpack_hold;	/* NCCL_DEVMEM_UNPACK_HOLD: % of the pool NCCL's kernel may hold */
	char pool_mem[32];	/* NCCL_DEVMEM_POOL_MEM: "auto", "host", "cuda", "cuda:N" */
	bool test_emulate;	/* NCCL_DEVMEM_TEST_EMULATE: tests only (emu.c) */
};
extern struct dm_config dm_cfg;	/* written once in dm_global_init under its lock */
void dm_config_load(struct dm_config *cfg);
const char *dm_mode_name(enum dm_mode m);
const char *dm_unpack_name(enum dm_unpack u);
int dm_parse_size(const char *s, uint64_t *out);

/* ---- devices (the table in devs.c; filled by api/props.c and makeVDevice) ---- */
/*
 * An interface, or a fused device (makeVDevice) over up to DM_MAX_MEMBERS of
 * them: a comm on it stripes its data sockets over the members' links.
 */
struct dm_dev {
	char name[DM_MAX_MEMBERS * (IF_NAMESIZE + 1)];	/* "eth0", fused "eth0+eth1" */
	char pci_path[256];
	uint64_t guid;
	int speed_mbps;
	int ifindex;
	union dm_addr addr;		/* address we listen on / bind to (port 0) */
	int nmembers;			/* 1 for an interface */
	int members[DM_MAX_MEMBERS];	/* interface devices; [0] = itself for an interface */
};
extern struct dm_dev dm_devs[DM_MAX_DEVS + DM_MAX_VDEVS];
extern int dm_devs_n;		/* all of them */
extern int dm_devs_nphys;	/* interfaces: dm_devs[0 .. nphys) */
int dm_ndevs(void);
const struct dm_dev *dm_dev_get(int dev);
/* Member @i's interface of @dev (a fused device's members in turn, an interface itself). */
const struct dm_dev *dm_dev_member(int dev, int i);

/* ---- devmem pool choice (pool.c): NCCL_DEVMEM_POOL_MEM ---- */
struct dm_pool_choice {
	int kind;		/* enum gpud_mem_kind: GPUD_MEM_HOST or GPUD_MEM_CUDA */
	int device;		/* CUDA device */
	char why[320];		/* the choice and its reason, or the error and its fix */
};
/* What the choice is made from, gathered by the caller (placement/devmem.c). */
struct dm_pool_facts {
	bool cuda_ok;		/* the plugin can drive CUDA (dm_cuda_available()) */
	const char *cuda_why;	/* if not, why */
	int probe;		/* gpud_mem_probe(GPUD_MEM_CUDA, device): 0 or -errno */
	const char *probe_why;	/* its text */
	int cur_device;		/* device of the caller's current CUDA context, -1 if none */
};
/*
 * Parses @spec ("auto", "host", "cuda", "cuda:N"; "" = auto) and decides.
 * 0 with the choice; -EINVAL for a spec it cannot read; -ENODEV (or the
 * probe's error) when cuda was demanded and cannot work, with why naming the
 * fix. Pure: no I/O, no globals.
 */
int dm_pool_choose(const char *spec, const struct dm_pool_facts *f, struct dm_pool_choice *out);
/* Device dm_pool_choose() will probe for @spec (cuda:N, else the current context's, else 0). */
int dm_pool_device(const char *spec, int cur_device);

#endif /* DM_BASE_H */
