/* SPDX-License-Identifier: MIT */
/*
 * gpudd internals: the agent's state (interfaces, clients and what each
 * client holds) shared by its source files. Not installed.
 *
 *   gpudd_main.c    options, the listening socket, the event loop, stop
 *   gpudd_client.c  one connection: credentials, hello, requests, release
 *   gpudd_nic.c     one interface: the gpud_nic that remembers and restores
 *                   it, RX channels, the queue pool, RSS recomputation,
 *                   header split
 *   gpudd_conns.c   rules removed when their connection closes (sock_diag)
 *   gpudd_status.c  the status document
 *   gpudd_pool.c    pure queue allocator and RSS table
 */
#ifndef GPUDD_H
#define GPUDD_H

#include "gpudd_pool.h"
#include "proto.h"

#include <gpudirect/gpudirect.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct gpud_nic;
struct gpud_binding;

#define GPUDD_MAX_CLIENTS 256
#define GPUDD_MAX_POOLS 16
/* A connection must say hello within this, or it is dropped. */
#define GPUDD_HELLO_TIMEOUT_S 5.0
/* How often rules are checked against their connections. */
#define GPUDD_SWEEP_S 1.0
/*
 * A request that waited behind other clients' or took longer than this to
 * serve is logged with both times: a rank's whole connect + bind should fit
 * in 50 ms (issue 16), and one agent serves a node's ranks one at a time.
 */
#define GPUDD_SLOW_S 0.025

struct gpudd_pool_cfg {
	char ifname[GPUD_PROTO_IFNAME_MAX];
	unsigned int first, last;	/* last 0: up to the last queue */
};

/* --channels IF:N: the RX channel count gpudd sets on IF. */
struct gpudd_chan_cfg {
	char ifname[GPUD_PROTO_IFNAME_MAX];
	unsigned int count;
};

struct gpudd_cfg {
	const char *sock_path;
	const char *group;		/* besides root */
	gid_t gid;
	bool have_gid;
	struct gpudd_pool_cfg pools[GPUDD_MAX_POOLS];
	int npools;
	struct gpudd_chan_cfg chans[GPUDD_MAX_POOLS];
	int nchans;
};

struct gpudd_nic {
	char ifname[GPUD_PROTO_IFNAME_MAX];
	int ifindex;
	struct gpud_nic *nic;		/* remembers and restores what we changed */
	struct gpudd_pool pool;
	uint32_t rss_size;		/* 0: no RSS table to manage */
	bool rss_touched;
	bool hds_on;
	bool ch_known;			/* the driver reports an RX channel count */
	bool ch_set;			/* we changed it */
	unsigned int ch_count, ch_orig;	/* now, and as found (restored at stop) */
	struct gpudd_nic *next;
};

struct gpudd_bind {
	struct gpud_binding *b;		/* owns its netlink socket: closing it unbinds */
	struct gpudd_nic *nic;
	uint32_t id;
	unsigned int queues[GPUD_PROTO_MAX_QUEUES];
	unsigned int nq;
	struct gpudd_bind *next;
};

struct gpudd_rule {
	struct gpudd_nic *nic;
	uint32_t loc;
	unsigned int queue;
	char flow[128];			/* "tcp4 198.18.0.2:5000 <- 198.18.0.1:40000" */
	struct gpud_flow f;		/* the 4-tuple, for sock_diag */
	uint64_t ino;			/* inode of the client's socket at FLOW_ADD */
	struct gpudd_rule *next;
};

struct gpudd_client {
	int fd;
	uint64_t id;			/* never 0, never reused */
	struct ucred cred;
	bool hello;
	bool same_netns;
	uint32_t version;
	uint64_t features;
	double since;
	char refused[384];		/* why it may not talk to us; "" = allowed */
	struct gpudd_bind *binds;
	struct gpudd_rule *rules;
};

/*
 * Per request type since start, for the status: how many were served, how
 * long each took, and how long it waited in its socket first (from the
 * kernel's receive timestamp; a hello sent before accept() has none); and
 * how many were refused with an error.
 */
struct gpudd_req_stat {
	uint64_t n, nwait, nerr;
	double serve_s, serve_max_s;
	double wait_s, wait_max_s;
};

struct gpudd {
	struct gpudd_cfg cfg;
	int listen_fd;
	bool socket_activated;
	struct gpudd_nic *nics;
	struct gpudd_client *clients[GPUDD_MAX_CLIENTS];
	int nclients;
	uint64_t next_id;
	uint64_t netns_cookie;		/* of the agent's own namespace */
	int diag_fd;			/* sock_diag; -1: rules are not swept */
	uint32_t diag_seq;
	double last_sweep;
	uint64_t last_bind;		/* client id whose bind was served last (turns) */
	struct gpudd_req_stat req[GPUD_MSG_TYPE_MAX + 1];
};

double gpudd_now(void);
void gpudd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* gpudd_client.c */
int gpudd_client_accept(struct gpudd *d);
/* Reads and answers one message; false when the client is gone. */
bool gpudd_client_serve(struct gpudd *d, struct gpudd_client *c);
/* Whether the next message queued on @c is a BIND (peeked, not read). */
bool gpudd_client_bind_next(const struct gpudd_client *c);
/* Undoes everything the client got and frees it. */
void gpudd_client_release(struct gpudd *d, struct gpudd_client *c);
/* Whether @c may talk to us; @why names the group when not. */
bool gpudd_client_allowed(const struct gpudd *d, int fd, const struct ucred *cred,
			  char *why, size_t len);

/* gpudd_nic.c */
/*
 * The interface, opened (and its pool made) on first use, or at start for a
 * --pool/--channels naming it: the RX channel count is raised to what the
 * pool needs (or set to --channels) first. -errno + @why.
 */
int gpudd_nic_get(struct gpudd *d, const char *ifname, struct gpudd_nic **out, char *why,
		  size_t len);
/* Puts RSS over the queues nobody holds. */
int gpudd_nic_rss_update(struct gpudd_nic *n, char *why, size_t len);
int gpudd_nic_hds_on(struct gpudd_nic *n, char *why, size_t len);
/* Restores and frees every interface (the NIC as it was found). */
void gpudd_nics_free(struct gpudd *d);

/* gpudd_conns.c */
/* Opens sock_diag, or logs why rules will not be swept (d->diag_fd -1). */
void gpudd_conns_open(struct gpudd *d);
/* Removes @c's rules whose connections are closed; how many. */
unsigned int gpudd_conns_sweep_client(struct gpudd *d, struct gpudd_client *c);
/* Every client's, at most once per GPUDD_SWEEP_S. */
void gpudd_conns_sweep(struct gpudd *d);

/* gpudd_status.c */
/* The status JSON into @buf; its length (cut at @len - 1). */
size_t gpudd_status_json(const struct gpudd *d, char *buf, size_t len);

#endif /* GPUDD_H */
