// SPDX-License-Identifier: MIT
/*
 * gpud_nic calls that have an agent path: header split, flow rules by
 * socket, queue allocation, and the status document. Without an agent each
 * does what one process alone would do.
 */
#include "nic/nic_internal.h"

#include "agent/client.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* One request with @ifname set, @fd passed, reply parsed into @rep (over *rbuf). */
static int call(struct gpud_nic *nic, uint16_t type, int fd, const uint32_t *queues,
		unsigned int nq, int32_t rule, struct gpud_proto_msg *rep, void **rbuf,
		const char *what, void (*more)(struct gpud_proto_buf *, const void *),
		const void *more_arg)
{
	struct gpud_agent_conn *c = gpud_nic_agent(nic);
	uint8_t req[GPUD_PROTO_REQ_MAX];
	struct gpud_proto_buf b;

	*rbuf = malloc(GPUD_PROTO_REPLY_MAX);
	if (!*rbuf)
		return gpud_err(-ENOMEM, "%s: out of memory", what);
	gpud_agent_req(c, &b, req, type);
	gpud_proto_put_str(&b, GPUD_A_IFNAME, gpud_nic_name(nic), GPUD_PROTO_IFNAME_MAX);
	for (unsigned int i = 0; i < nq; i++)
		gpud_proto_put_u32(&b, GPUD_A_QUEUE, queues[i]);
	if (rule >= 0)
		gpud_proto_put_u32(&b, GPUD_A_RULE, (uint32_t)rule);
	if (more)
		more(&b, more_arg);
	return gpud_agent_call(c, &b, fd, rep, *rbuf, what);
}

int gpud_nic_agent_hds(struct gpud_nic *nic, bool on)
{
	struct gpud_proto_msg rep;
	void *rbuf;
	int err;

	if (!on)
		return gpud_err(-EPERM, "header split off %s: gpudd keeps it on while it runs "
				"and restores it when it stops", gpud_nic_name(nic));
	err = call(nic, GPUD_MSG_HDS, -1, NULL, 0, -1, &rep, &rbuf, "header split", NULL, NULL);
	free(rbuf);
	return err;
}

int gpud_nic_agent_del_flow(struct gpud_nic *nic, uint32_t rule_id)
{
	struct gpud_proto_msg rep;
	void *rbuf;
	int err;

	err = call(nic, GPUD_MSG_FLOW_DEL, -1, NULL, 0, (int32_t)rule_id, &rep, &rbuf, "del flow",
		   NULL, NULL);
	free(rbuf);
	return err;
}

/* The flow that arrives on connected TCP socket @fd, in the library's words. */
static int sock_to_flow(int fd, struct gpud_flow *f)
{
	int err = gpud_flow_of_sock(fd, f);

	if (err == -ENOTCONN)
		return gpud_err(err, "add flow: the socket is not connected: rules are for "
				"established connections");
	if (err == -EAFNOSUPPORT)
		return gpud_err(err, "add flow: not an IP socket");
	if (err)
		return gpud_err(err, "add flow: getsockname: %s", strerror(-err));
	return 0;
}

int gpud_nic_add_flow_sock(struct gpud_nic *nic, int sockfd, unsigned int queue,
			   uint32_t *rule_id)
{
	struct gpud_proto_msg rep;
	struct gpud_flow f;
	uint32_t q = queue;
	void *rbuf;
	int err;

	if (!nic || sockfd < 0 || !rule_id)
		return gpud_err(-EINVAL, "add flow: needs a nic, a socket and a rule id pointer");
	if (!gpud_nic_agent(nic)) {
		err = sock_to_flow(sockfd, &f);
		return err ? err : gpud_nic_add_flow(nic, &f, queue, rule_id);
	}
	err = call(nic, GPUD_MSG_FLOW_ADD, sockfd, &q, 1, -1, &rep, &rbuf, "add flow", NULL,
		   NULL);
	if (!err)
		*rule_id = rep.rule;
	free(rbuf);
	return err;
}

struct alloc_arg {
	unsigned int n;
	int rank;
};

static void put_alloc(struct gpud_proto_buf *b, const void *arg)
{
	const struct alloc_arg *a = arg;

	if (a->rank >= 0)
		gpud_proto_put_u32(b, GPUD_A_RANK, (uint32_t)a->rank);
	else
		gpud_proto_put_u32(b, GPUD_A_NQUEUES, a->n);
}

int gpud_nic_alloc_queues(struct gpud_nic *nic, unsigned int n, int rank, unsigned int *out)
{
	struct alloc_arg a = { n, rank };
	struct gpud_proto_msg rep;
	void *rbuf;
	int nrxq, err;

	if (!nic || !out || !n || (rank >= 0 && n != 1) || n > GPUD_PROTO_MAX_QUEUES)
		return gpud_err(-EINVAL, "alloc queues: needs a nic, 1..%d queues (1 for a rank)",
				GPUD_PROTO_MAX_QUEUES);
	if (!gpud_nic_agent(nic)) {
		nrxq = gpud_nic_rx_queues(nic);
		if (nrxq < 0)
			return nrxq;
		if ((rank >= 0 && rank + 1 >= nrxq) || (rank < 0 && n + 1 > (unsigned int)nrxq))
			return gpud_err(-ERANGE, "alloc queues: %s has %d RX queues (queue 0 stays "
					"for plain traffic)", gpud_nic_name(nic), nrxq);
		for (unsigned int i = 0; i < n; i++)
			out[i] = (unsigned int)(nrxq - 1 - (rank >= 0 ? rank : (int)i));
		return 0;
	}
	err = call(nic, GPUD_MSG_ALLOC, -1, NULL, 0, -1, &rep, &rbuf, "alloc queues", put_alloc,
		   &a);
	if (!err && rep.nq != n)
		err = gpud_err(-EPROTO, "alloc queues: gpudd gave %u queues for %u", rep.nq, n);
	if (!err)
		memcpy(out, rep.queues, n * sizeof(*out));
	free(rbuf);
	return err;
}

int gpud_agent_status(const struct gpud_agent_opts *opts, char **json)
{
	struct gpud_agent_opts o = { .sz = sizeof(o), .mode = GPUD_AGENT_REQUIRE };
	uint8_t req[GPUD_PROTO_REQ_MAX];
	struct gpud_agent_conn *c;
	struct gpud_proto_msg rep;
	struct gpud_proto_buf b;
	void *rbuf;
	int err;

	if (!json)
		return gpud_err(-EINVAL, "agent status: no output pointer");
	if (opts) {
		err = gpud_opts_copy(&o, sizeof(o), opts, "gpud_agent_opts");
		if (err)
			return err;
		if (o.mode == GPUD_AGENT_AUTO)
			o.mode = GPUD_AGENT_REQUIRE;
	}
	err = gpud_agent_conn_open(&o, &c);
	if (err)
		return err;
	if (!c)
		return gpud_err(-ENOENT, "agent status: no gpudd (GPUD_AGENT says none)");
	rbuf = malloc(GPUD_PROTO_REPLY_MAX);
	if (!rbuf) {
		err = gpud_err(-ENOMEM, "agent status: out of memory");
		goto out;
	}
	gpud_agent_req(c, &b, req, GPUD_MSG_STATUS);
	err = gpud_agent_call(c, &b, -1, &rep, rbuf, "agent status");
	if (!err && !rep.text)
		err = gpud_err(-EPROTO, "agent status: gpudd sent no document");
	if (!err) {
		*json = strdup(rep.text);
		if (!*json)
			err = gpud_err(-ENOMEM, "agent status: out of memory");
	}
	free(rbuf);
out:
	gpud_agent_conn_close(c);
	return err;
}
