/* SPDX-License-Identifier: MIT */
/*
 * libnccl-net-devmem, layer 4 (conn): listen, connect and accept — the
 * handshake that turns sockets into a comm (conn.c) and the interface
 * selection syntax (iflist.c). Includes the layers below only.
 */
#ifndef DM_CONN_H
#define DM_CONN_H

#include "base/base.h"
#include "engine/engine.h"

#define DM_HANDLE_MAGIC 0x444d4e48u	/* "DMNH" */
struct dm_connect_state;
struct dm_handle {
	uint32_t magic;
	uint16_t version;		/* DM_PROTO_VERSION */
	uint16_t nsocks;		/* data sockets the listener expects */
	union dm_addr addr;		/* control listener (member 0), network byte order */
	uint32_t max_chunk;		/* striping chunk the listener uses */
	uint32_t flags;
	uint64_t secret;		/* from getrandom(); proves the peer got the handle */
	/* connector-local: NCCL hands the same handle to every connect() call */
	struct dm_connect_state *stage;
	uint8_t reserved[32];
};
_Static_assert(sizeof(struct dm_handle) <= NCCL_NET_HANDLE_MAXSIZE,
	       "listen handle must fit in NCCL_NET_HANDLE_MAXSIZE");

struct dm_listen;
int dm_listen(int dev, struct dm_handle *h, struct dm_listen **out);
int dm_accept(struct dm_listen *l, struct dm_comm **out);
void dm_listen_close(struct dm_listen *l);
/* NCCL's traffic class (NCCL_NET_TRAFFIC_CLASS_UNDEF: leave the default). */
void dm_listen_set_tclass(struct dm_listen *l, int tclass);
int dm_listen_tclass(const struct dm_listen *l);
/* Applies @tclass (IP_TOS, IPV6_TCLASS) to every socket of @c; UNDEF does nothing. */
void dm_comm_set_tclass(struct dm_comm *c, int tclass);
int dm_connect(int dev, struct dm_handle *h, struct dm_comm **out);

#endif /* DM_CONN_H */
