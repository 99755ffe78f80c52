// SPDX-License-Identifier: MIT
/*
 * The devmem engine: recvmsg(MSG_SOCK_DEVMEM).
 *
 * What one recvmsg can return (net/ipv4/tcp.c, tcp_recvmsg_locked and
 * tcp_recvmsg_dmabuf, 6.12): the kernel never mixes readable (host memory)
 * and unreadable (dma-buf) skbs in one call, so a call returns either
 *  - plain bytes in the iov and no devmem cmsg (data that did not come
 *    through a bound queue: MSG_SOCK_DEVMEM does not change how such data
 *    is read), or
 *  - devmem cmsgs: SCM_DEVMEM_LINEAR for header-area bytes it copied into the
 *    iov, SCM_DEVMEM_DMABUF per page fragment lent under a token.
 * The iov length caps the bytes per call, dma-buf bytes included, although
 * only plain/LINEAR bytes are written into it. Those host-memory bytes are
 * copied into the copy ring so they reach the caller the same way as in copy
 * mode; the iov is therefore capped at the ring's free contiguous room.
 */
#include "rx_internal.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/*
 * Records the tokens of every DMABUF entry. On failure the ones recorded are
 * released and the rest are handed straight back, so none stays lent.
 */
static int take_tokens(struct gpud_rx *rx, size_t n)
{
	uint32_t taken[GPUD_RX_MAX_CMSGS], rest[GPUD_RX_MAX_CMSGS];
	size_t k = 0, r = 0, i;
	int err = 0;

	for (i = 0; i < n; i++) {
		const struct gpud_cmsg_frag *c = &rx->cfrags[i];

		if (c->kind != GPUD_CMSG_DMABUF)
			continue;
		if (!err) {
			err = gpud_tokens_add(&rx->tokens, c->token);
			if (!err) {
				taken[k++] = c->token;
				continue;
			}
			if (err == -EEXIST)	/* ours already: not the kernel's to take back */
				continue;
		}
		rest[r++] = c->token;
	}
	if (!err)
		return 0;
	gpud_tokens_release(&rx->tokens, taken, k);
	gpud_tokens_return_untracked(&rx->tokens, rest, r);
	if (err == -EEXIST)
		return gpud_err(-EPROTO, "kernel handed out a devmem token this gpud_rx still holds");
	return gpud_err(err, "cannot track devmem tokens: %s", strerror(-err));
}

/* Gives back the tokens of this call's DMABUF entries (error paths). */
static void drop_tokens(struct gpud_rx *rx, size_t n)
{
	uint32_t taken[GPUD_RX_MAX_CMSGS];
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (rx->cfrags[i].kind == GPUD_CMSG_DMABUF)
			taken[k++] = rx->cfrags[i].token;
	gpud_tokens_release(&rx->tokens, taken, k);
}

static int parse_error(struct gpud_rx *rx, int err, const struct gpud_cmsg_result *res,
		       ssize_t ret)
{
	switch (err) {
	case -EXDEV:
		return gpud_err(-EXDEV,
				"recvmsg: fragment of dma-buf binding %u arrived, this gpud_rx expects binding %u: the flow is steered to a queue bound to other memory",
				res->bad_id, rx->binding_id);
	case -EBADMSG:
		return gpud_err(-EPROTO, "recvmsg: truncated devmem control message");
	case -ENOBUFS:
		return gpud_err(-EPROTO, "recvmsg: more devmem control messages than room for them");
	}
	return gpud_err(-EPROTO,
			"recvmsg returned %zd bytes but its control messages account for %llu%s",
			ret, (unsigned long long)(res->dmabuf_bytes + res->linear_bytes),
			res->ctrunc ? " (MSG_CTRUNC: control buffer truncated)" : "");
}

/* Frees the ring regions of LINEAR entries already emitted (error path). */
static void unpush(struct gpud_rx *rx, const struct gpud_frag *frags, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (frags[i].flags & GPUD_FRAG_COPY)
			gpud_ring_release(&rx->ring, &frags[i].token, 1);
}

/* Turns the parsed entries into fragments; LINEAR bytes go through the ring. */
static int emit(struct gpud_rx *rx, size_t n, struct gpud_frag *frags)
{
	for (size_t i = 0; i < n; i++) {
		const struct gpud_cmsg_frag *c = &rx->cfrags[i];
		struct gpud_frag *f = &frags[i];
		int err;

		if (c->kind == GPUD_CMSG_LINEAR) {
			err = gpud_rx_copy_in(rx, (char *)rx->staging + c->offset, c->len, f);
			if (err) {
				unpush(rx, frags, i);
				return err;
			}
			continue;
		}
		f->offset = c->offset;
		f->len = c->len;
		f->token = c->token;
		f->flags = 0;
		f->reserved = 0;
	}
	return 0;
}

/* Plain bytes: the flow's data did not come through a bound queue. */
static int plain(struct gpud_rx *rx, struct gpud_frag *frags, ssize_t ret)
{
	int err;

	if (rx->requested == GPUD_RX_DEVMEM && !rx->devmem_seen)
		return gpud_rx_fail(rx, gpud_err(-EOPNOTSUPP,
			"devmem demanded, but the connection's data arrives in host memory: its flow is not steered to a queue bound to dma-buf %u, or the NIC does not split headers; use mode AUTO to fall back to copying",
			rx->binding_id));
	gpud_rx_decide(rx, false);
	err = gpud_rx_copy_in(rx, rx->staging, (uint32_t)ret, frags);
	/* The bytes are out of the socket: failing to keep them breaks the stream. */
	return err ? gpud_rx_fail(rx, err) : 1;
}

static int devmem_recv(struct gpud_rx *rx, struct gpud_frag *frags, size_t max, int flags)
{
	size_t cap = max < GPUD_RX_MAX_CMSGS ? max : GPUD_RX_MAX_CMSGS;
	struct gpud_cmsg_result res;
	struct msghdr msg = { 0 };
	struct iovec iov;
	uint64_t room;
	ssize_t ret;
	int err, ret2;

	room = gpud_ring_prepare(&rx->ring, rx->staging_len);
	if (!room)
		return gpud_err(-ENOBUFS, "copy ring full (%u fragments held): release fragments first",
				rx->ring.nout);
	iov.iov_base = rx->staging;
	iov.iov_len = room;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = rx->control;
	msg.msg_controllen = CMSG_SPACE(sizeof(struct gpud_dmabuf_cmsg)) * cap;
	ret = rx->recvmsg ? rx->recvmsg(rx->fd, &msg, flags | MSG_SOCK_DEVMEM, rx->hook_ctx)
			  : recvmsg(rx->fd, &msg, flags | MSG_SOCK_DEVMEM);
	rx->st.recv_calls++;
	if (ret < 0)
		return gpud_rx_sock_err(rx, errno, "recvmsg(MSG_SOCK_DEVMEM)");
	if (ret == 0)
		return 0;
	err = gpud_cmsg_parse(rx->control, msg.msg_controllen, msg.msg_flags, rx->binding_id,
			      rx->cfrags, cap, &res);
	if (!err && !res.nfrags)
		return plain(rx, frags, ret);
	/* Own every token before judging the call, so none can leak. */
	ret2 = take_tokens(rx, res.nfrags);
	if (ret2)
		return gpud_rx_fail(rx, ret2);
	if (err || res.dmabuf_bytes + res.linear_bytes != (uint64_t)ret) {
		drop_tokens(rx, res.nfrags);
		return gpud_rx_fail(rx, parse_error(rx, err, &res, ret));
	}
	if (res.ndmabuf)
		rx->devmem_seen = true;
	gpud_rx_decide(rx, res.ndmabuf > 0);
	err = emit(rx, res.nfrags, frags);
	if (err) {
		drop_tokens(rx, res.nfrags);
		return gpud_rx_fail(rx, err);
	}
	return (int)res.nfrags;
}

const struct gpud_rx_engine gpud_rx_devmem_engine = {
	.name = "devmem",
	.recv = devmem_recv,
};
