// SPDX-License-Identifier: MIT
/*
 * The library's gpudd client (see client.h): connect, hello with the
 * version range and features this build knows, and one bounded
 * request/reply exchange at a time.
 */
#include "client.h"

#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static bool disabled;

void gpud_agent_client_disable(void)
{
	disabled = true;
}

static int timeout_ms(void)
{
	const char *s = getenv("GPUD_AGENT_TIMEOUT_MS");
	long v = s ? strtol(s, NULL, 10) : 0;

	return v > 0 && v < 600000 ? (int)v : 10000;
}

/* Which socket, and whether failing to reach it is an error. */
static int pick_path(const struct gpud_agent_opts *o, char *path, size_t len, bool *required)
{
	const char *env = getenv("GPUD_AGENT");

	*required = false;
	if (disabled || (o && o->mode == GPUD_AGENT_OFF))
		return -ENOENT;
	if (o && o->path && o->path[0]) {
		snprintf(path, len, "%s", o->path);
		*required = true;
		return 0;
	}
	if (env && (!strcmp(env, "none") || !strcmp(env, "off") || !strcmp(env, "0")))
		return o && o->mode == GPUD_AGENT_REQUIRE ? -EINVAL : -ENOENT;
	if (env && env[0]) {
		snprintf(path, len, "%s", env);
		*required = true;
		return 0;
	}
	snprintf(path, len, "%s", GPUD_AGENT_SOCK_DEFAULT);
	*required = o && o->mode == GPUD_AGENT_REQUIRE;
	return 0;
}

static int hello(struct gpud_agent_conn *c)
{
	uint8_t req[256];
	void *rbuf = malloc(GPUD_PROTO_REPLY_MAX);
	struct gpud_proto_buf b;
	struct gpud_proto_msg rep;
	int err;

	if (!rbuf)
		return gpud_err(-ENOMEM, "gpudd: out of memory");
	/* The hello layout is frozen: any agent version reads it. */
	gpud_proto_start(&b, req, sizeof(req), GPUD_PROTO_VERSION_MAX, GPUD_MSG_HELLO, 0);
	gpud_proto_put_u32(&b, GPUD_A_VMIN, GPUD_PROTO_VERSION_MIN);
	gpud_proto_put_u32(&b, GPUD_A_VMAX, GPUD_PROTO_VERSION_MAX);
	gpud_proto_put_u64(&b, GPUD_A_FEATURES, GPUD_F_ALL);
	err = gpud_agent_call(c, &b, -1, &rep, rbuf, "connect");
	if (!err) {
		c->version = rep.vmax;
		c->features = rep.features;
		if (!gpud_proto_has(&rep, GPUD_A_VMAX) || rep.vmax < GPUD_PROTO_VERSION_MIN ||
		    rep.vmax > GPUD_PROTO_VERSION_MAX)
			err = gpud_err(-EPROTONOSUPPORT, "connect: gpudd at %s answered protocol "
				       "version %u, this libgpudirect speaks %d..%d: install "
				       "matching versions", c->path, rep.vmax,
				       GPUD_PROTO_VERSION_MIN, GPUD_PROTO_VERSION_MAX);
	}
	free(rbuf);
	return err;
}

int gpud_agent_conn_open(const struct gpud_agent_opts *opts, struct gpud_agent_conn **out)
{
	struct gpud_agent_opts o = { 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct gpud_agent_conn *c;
	struct timeval tv;
	bool required;
	int ms, err;

	*out = NULL;
	if (opts) {
		err = gpud_opts_copy(&o, sizeof(o), opts, "gpud_agent_opts");
		if (err)
			return err;
	}
	err = pick_path(opts ? &o : NULL, sa.sun_path, sizeof(sa.sun_path), &required);
	if (err == -EINVAL)
		return gpud_err(err, "gpudd required, but GPUD_AGENT=%s says none",
				getenv("GPUD_AGENT"));
	if (err)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return gpud_err(-ENOMEM, "gpudd: out of memory");
	snprintf(c->path, sizeof(c->path), "%s", sa.sun_path);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		err = gpud_err(-errno, "gpudd: socket: %s", strerror(errno));
		goto err_free;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		if (!required) {
			gpud_log(GPUD_LOG_DEBUG, "no gpudd at %s (%s): configuring the NIC directly",
				 c->path, strerror(-err));
			err = 0;
			goto err_close;
		}
		err = gpud_err(err, "cannot reach gpudd at %s: %s (start it: systemctl start "
			       "gpudd.socket, or gpudd -f -s %s; or unset GPUD_AGENT)", c->path,
			       strerror(-err), c->path);
		goto err_close;
	}
	ms = timeout_ms();
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	err = hello(c);
	if (err)
		goto err_close;
	gpud_log(GPUD_LOG_INFO, "gpudd at %s: protocol %u, features 0x%llx", c->path, c->version,
		 (unsigned long long)c->features);
	*out = c;
	return 0;

err_close:
	close(c->fd);
err_free:
	free(c);
	return err;
}

void gpud_agent_conn_close(struct gpud_agent_conn *c)
{
	if (!c)
		return;
	close(c->fd);	/* the agent releases all this connection got */
	free(c);
}

void gpud_agent_req(struct gpud_agent_conn *c, struct gpud_proto_buf *b, void *mem,
		    uint16_t type)
{
	gpud_proto_start(b, mem, GPUD_PROTO_REQ_MAX, (uint16_t)c->version, type, ++c->seq);
}

static int send_req(struct gpud_agent_conn *c, const void *p, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)p, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *cm;

		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

int gpud_agent_call(struct gpud_agent_conn *c, struct gpud_proto_buf *b, int fd,
		    struct gpud_proto_msg *rep, void *rbuf, const char *what)
{
	char why[256];
	uint32_t seq = c->seq;	/* 0 for the hello */
	int len, err;
	ssize_t n;

	len = gpud_proto_finish(b);
	if (len < 0)
		return gpud_err(len, "%s: request does not fit in %d bytes", what,
				GPUD_PROTO_REQ_MAX);
	err = send_req(c, b->p, (size_t)len, fd);
	if (err)
		return gpud_err(err, "%s: gpudd at %s: send: %s (the agent stopped? restart it "
				"and reconnect)", what, c->path, strerror(-err));
	do {
		n = recv(c->fd, rbuf, GPUD_PROTO_REPLY_MAX, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return gpud_err(-ETIMEDOUT, "%s: gpudd at %s did not answer within %d ms", what,
				c->path, timeout_ms());
	if (n <= 0)
		return gpud_err(n ? -errno : -ECONNRESET, "%s: gpudd at %s closed the connection "
				"(it stopped or restarted: what it held for us is released; "
				"reconnect)", what, c->path);
	err = gpud_proto_parse(rbuf, (size_t)n, GPUD_PROTO_REPLY_MAX, rep, why, sizeof(why));
	if (err)
		return gpud_err(-EPROTO, "%s: bad reply from gpudd: %s", what, why);
	if (rep->type != GPUD_MSG_REPLY || rep->seq != seq)
		return gpud_err(-EPROTO, "%s: gpudd answered type %u seq %u to request %u", what,
				rep->type, rep->seq, seq);
	if (rep->err > 0 || rep->err < -4095)
		return gpud_err(-EPROTO, "%s: gpudd sent errno %d", what, rep->err);
	if (rep->err)
		return gpud_err(rep->err, "%s: gpudd: %s", what, rep->msg ? rep->msg : "(no text)");
	return 0;
}
