/* SPDX-License-Identifier: MIT */
/*
 * devmem TCP uapi from Linux 6.12 that Debian 12's kernel headers (6.1) lack.
 * Each value is used only where the system header does not define it, so a
 * newer linux-libc-dev wins. Values: include/uapi/linux/netdev.h,
 * include/uapi/asm-generic/socket.h, include/uapi/linux/uio.h (6.12).
 */
#ifndef GPUD_UAPI_COMPAT_H
#define GPUD_UAPI_COMPAT_H

#include <linux/types.h>
#include <sys/socket.h>

/* ---- sockets: MSG_SOCK_DEVMEM and the devmem cmsgs / sockopt ---- */
#ifndef MSG_SOCK_DEVMEM
#define MSG_SOCK_DEVMEM 0x2000000
#endif
#ifndef SO_DEVMEM_LINEAR
#define SO_DEVMEM_LINEAR 78
#endif
#ifndef SCM_DEVMEM_LINEAR
#define SCM_DEVMEM_LINEAR SO_DEVMEM_LINEAR
#endif
#ifndef SO_DEVMEM_DMABUF
#define SO_DEVMEM_DMABUF 79
#endif
#ifndef SCM_DEVMEM_DMABUF
#define SCM_DEVMEM_DMABUF SO_DEVMEM_DMABUF
#endif
#ifndef SO_DEVMEM_DONTNEED
#define SO_DEVMEM_DONTNEED 80
#endif

/* include/uapi/linux/uio.h (6.12); the struct tags are ours so that a newer
 * <linux/uio.h> defining the originals never clashes. Layouts are checked
 * with static asserts. */
struct gpud_dmabuf_cmsg {
	__u64 frag_offset;	/* offset into the dma-buf */
	__u32 frag_size;
	__u32 frag_token;	/* give back with SO_DEVMEM_DONTNEED */
	__u32 dmabuf_id;	/* binding id */
	__u32 flags;
};

struct gpud_dmabuf_token {
	__u32 token_start;
	__u32 token_count;
};

_Static_assert(sizeof(struct gpud_dmabuf_cmsg) == 24, "dmabuf_cmsg is 24 bytes in 6.12");
_Static_assert(sizeof(struct gpud_dmabuf_token) == 8, "dmabuf_token is 8 bytes in 6.12");

/* net/core/sock.c limits for one SO_DEVMEM_DONTNEED call (6.12). */
#define GPUD_MAX_DONTNEED_TOKENS 128
#define GPUD_MAX_DONTNEED_FRAGS 1024

/* ---- generic netlink family "netdev" (include/uapi/linux/netdev.h, 6.12) ---- */
#define GPUD_NETDEV_FAMILY_NAME "netdev"
enum {
	GPUD_NETDEV_CMD_DEV_GET = 1,
	GPUD_NETDEV_CMD_DEV_ADD_NTF,
	GPUD_NETDEV_CMD_DEV_DEL_NTF,
	GPUD_NETDEV_CMD_DEV_CHANGE_NTF,
	GPUD_NETDEV_CMD_PAGE_POOL_GET,
	GPUD_NETDEV_CMD_PAGE_POOL_ADD_NTF,
	GPUD_NETDEV_CMD_PAGE_POOL_DEL_NTF,
	GPUD_NETDEV_CMD_PAGE_POOL_CHANGE_NTF,
	GPUD_NETDEV_CMD_PAGE_POOL_STATS_GET,
	GPUD_NETDEV_CMD_QUEUE_GET,
	GPUD_NETDEV_CMD_NAPI_GET,
	GPUD_NETDEV_CMD_QSTATS_GET,
	GPUD_NETDEV_CMD_BIND_RX,	/* 13 */
};
_Static_assert(GPUD_NETDEV_CMD_BIND_RX == 13, "NETDEV_CMD_BIND_RX is 13 in 6.12");

/*
 * ---- netdev family attributes (include/uapi/linux/netdev.h, 6.12) ----
 * Used by src/nic/netdev_nl.c. GPUD_-prefixed copies, not #ifndef guards:
 * these are enum constants, which the preprocessor cannot test, and a newer
 * <linux/netdev.h> must not clash with them. The values are ABI.
 */
enum gpud_netdev_queue_type {
	GPUD_NETDEV_QUEUE_TYPE_RX = 0,
	GPUD_NETDEV_QUEUE_TYPE_TX = 1,
};

enum {
	GPUD_NETDEV_A_DEV_IFINDEX = 1,
	GPUD_NETDEV_A_DEV_PAD,
	GPUD_NETDEV_A_DEV_XDP_FEATURES,
	GPUD_NETDEV_A_DEV_XDP_ZC_MAX_SEGS,
	GPUD_NETDEV_A_DEV_XDP_RX_METADATA_FEATURES,
	GPUD_NETDEV_A_DEV_XSK_FEATURES,
};

enum {
	GPUD_NETDEV_A_PAGE_POOL_ID = 1,
	GPUD_NETDEV_A_PAGE_POOL_IFINDEX,
	GPUD_NETDEV_A_PAGE_POOL_NAPI_ID,
	GPUD_NETDEV_A_PAGE_POOL_INFLIGHT,
	GPUD_NETDEV_A_PAGE_POOL_INFLIGHT_MEM,
	GPUD_NETDEV_A_PAGE_POOL_DETACH_TIME,
	GPUD_NETDEV_A_PAGE_POOL_DMABUF,		/* 7 */
};

enum {
	GPUD_NETDEV_A_QUEUE_ID = 1,
	GPUD_NETDEV_A_QUEUE_IFINDEX,
	GPUD_NETDEV_A_QUEUE_TYPE,
	GPUD_NETDEV_A_QUEUE_NAPI_ID,
	GPUD_NETDEV_A_QUEUE_DMABUF,		/* 5 */
};

enum {
	GPUD_NETDEV_A_DMABUF_IFINDEX = 1,
	GPUD_NETDEV_A_DMABUF_QUEUES,		/* nest of GPUD_NETDEV_A_QUEUE_* */
	GPUD_NETDEV_A_DMABUF_FD,
	GPUD_NETDEV_A_DMABUF_ID,		/* 4, in the reply */
};

_Static_assert(GPUD_NETDEV_A_PAGE_POOL_DMABUF == 7, "NETDEV_A_PAGE_POOL_DMABUF is 7 in 6.12");
_Static_assert(GPUD_NETDEV_A_QUEUE_DMABUF == 5, "NETDEV_A_QUEUE_DMABUF is 5 in 6.12");
_Static_assert(GPUD_NETDEV_A_DMABUF_ID == 4, "NETDEV_A_DMABUF_ID is 4 in 6.12");
_Static_assert(GPUD_NETDEV_A_DEV_XSK_FEATURES == 6, "NETDEV_A_DEV_XSK_FEATURES is 6 in 6.12");
/* ---- end of netdev family attributes ---- */

#endif /* GPUD_UAPI_COMPAT_H */
