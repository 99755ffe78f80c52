/* SPDX-License-Identifier: MIT */
/*
 * Private to libgpudirect: the library's side of the gpudd protocol. A
 * connection is a client of the agent; whatever it got (queues, bindings,
 * rules) is released by the agent when it closes. gpud_nic and each
 * gpud_binding made through the agent own one connection each.
 */
#ifndef GPUD_AGENT_CLIENT_H
#define GPUD_AGENT_CLIENT_H

#include "proto.h"

#include <gpudirect/gpudirect.h>

struct gpud_agent_conn {
	int fd;
	uint32_t version;	/* agreed at hello */
	uint64_t features;	/* agreed at hello */
	uint32_t seq;
	char path[108];
};

/* For gpudd itself: the library never looks for an agent in this process. */
void gpud_agent_client_disable(void);

/*
 * Connects and says hello. AUTO: GPUD_AGENT (a path, or "none"), else the
 * default socket when something listens there. Returns 0 with *out NULL
 * when there is no agent and none is required (the caller then works
 * directly, as without an agent), 0 with a connection, or -errno with a
 * message: an agent that was asked for and cannot be reached, a refusal
 * (-EACCES naming the group), no common protocol version (-EPROTONOSUPPORT).
 */
int gpud_agent_conn_open(const struct gpud_agent_opts *opts, struct gpud_agent_conn **out);
void gpud_agent_conn_close(struct gpud_agent_conn *c);

/* Starts a request of @type in @b over @mem (GPUD_PROTO_REQ_MAX bytes). */
void gpud_agent_req(struct gpud_agent_conn *c, struct gpud_proto_buf *b, void *mem,
		    uint16_t type);

/*
 * Sends @b with @fd (-1: none) and waits for the reply (bounded: 10 s, or
 * GPUD_AGENT_TIMEOUT_MS), parsed into @rep over @rbuf (GPUD_PROTO_REPLY_MAX
 * bytes). Returns the agent's answer: 0, or its -errno with its message
 * (kernel extack included as the agent got it) recorded as "@what: gpudd: ...".
 */
int gpud_agent_call(struct gpud_agent_conn *c, struct gpud_proto_buf *b, int fd,
		    struct gpud_proto_msg *rep, void *rbuf, const char *what);

#endif /* GPUD_AGENT_CLIENT_H */
