// SPDX-License-Identifier: MIT
/*
 * gpud_rx: options, the choice of engine and mode, release routing, stats.
 * The engines (devmem_recvmsg.c, copy_rx.c) only produce fragments; everything
 * the caller sees about modes and errors is decided here.
 */
#include "rx_internal.h"

#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define GPUD_RX_COPY_CHUNK (256u << 10)
#define GPUD_RX_DEVMEM_CHUNK (1u << 20)
#define GPUD_RX_COPY_RING (8u << 20)
#define GPUD_RX_CHUNK_MAX (64u << 20)	/* fragment lengths are u32 */
#define GPUD_ETOOSMALL 525		/* kernel-internal: control buffer too small */

static void set_reason(struct gpud_rx *rx, enum gpud_rx_mode mode, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_reason(struct gpud_rx *rx, enum gpud_rx_mode mode, const char *fmt, ...)
{
	va_list ap;

	rx->mode = mode;
	va_start(ap, fmt);
	vsnprintf(rx->reason, sizeof(rx->reason), fmt, ap);
	va_end(ap);
	gpud_log(GPUD_LOG_INFO, "rx fd %d: %s", rx->fd, rx->reason);
}

void gpud_rx_decide(struct gpud_rx *rx, bool devmem)
{
	if (rx->mode == GPUD_RX_AUTO && devmem)
		set_reason(rx, GPUD_RX_DEVMEM, "devmem: payload lands in dma-buf binding %u",
			   rx->binding_id);
	else if (rx->mode == GPUD_RX_AUTO)
		set_reason(rx, GPUD_RX_COPY,
			   "copy: binding %u exists, but the connection's data arrives in host memory: its flow is not steered to a bound queue, or the NIC does not split headers",
			   rx->binding_id);
	else if (devmem && rx->mode == GPUD_RX_COPY && rx->requested == GPUD_RX_AUTO)
		/* Steering can start late (a flow rule added after connect). */
		set_reason(rx, GPUD_RX_DEVMEM,
			   "devmem: payload lands in dma-buf binding %u (after %llu bytes in host memory)",
			   rx->binding_id, (unsigned long long)rx->st.bytes);
}

int gpud_rx_fail(struct gpud_rx *rx, int err)
{
	rx->err = err;
	snprintf(rx->errtext, sizeof(rx->errtext), "%s", gpud_errmsg());
	return err;
}

int gpud_rx_sock_err(struct gpud_rx *rx, int e, const char *call)
{
	bool devmem = rx->engine == &gpud_rx_devmem_engine;

	if (e == EAGAIN || e == EWOULDBLOCK)
		return -EAGAIN;	/* not a failure: no message */
	if (e == EINTR)
		return gpud_err(-EINTR, "%s interrupted by a signal", call);
	if (e == EFAULT && !devmem)
		return gpud_rx_fail(rx, gpud_err(-EFAULT,
			"%s: the socket received devmem data without MSG_SOCK_DEVMEM: its flow is steered to an RX queue bound to a dma-buf; open the gpud_rx with that binding (mode AUTO or DEVMEM) or remove the flow rule",
			call));
	if (e == EFAULT)
		return gpud_rx_fail(rx, gpud_err(-EFAULT,
			"%s: EFAULT: the kernel could not deliver a devmem skb completely (its bytes ran out before the fragment list did)",
			call));
	if (e == ENODEV)
		return gpud_rx_fail(rx, gpud_err(-ENODEV,
			"%s: ENODEV: a devmem skb chain contains host-memory pages (NIC driver or stack bug); the stream cannot continue",
			call));
	if (e == GPUD_ETOOSMALL)
		return gpud_rx_fail(rx, gpud_err(-EPROTO,
			"%s: control buffer too small for one devmem message", call));
	return gpud_rx_fail(rx, gpud_err(-e, "%s after %llu bytes: %s", call,
					 (unsigned long long)rx->st.bytes, strerror(e)));
}

int gpud_rx_copy_in(struct gpud_rx *rx, const void *src, uint32_t len, struct gpud_frag *f)
{
	uint64_t off;
	uint32_t tok;
	int err;

	err = gpud_ring_push(&rx->ring, len, &off, &tok);
	if (err)
		return gpud_err(err, "copy ring: cannot add a region of %u bytes: %s", len,
				strerror(-err));
	err = gpud_mem_write(rx->copy_mem, off, src, len);
	if (err) {
		char why[GPUD_ERRMSG_MAX];

		snprintf(why, sizeof(why), "%s", gpud_errmsg());
		gpud_ring_release(&rx->ring, &tok, 1);
		return gpud_err(err, "copying %u received bytes into the %s copy target: %s", len,
				gpud_mem_kind_name(gpud_mem_kind(rx->copy_mem)), why);
	}
	f->offset = off;
	f->len = len;
	f->token = tok;
	f->flags = GPUD_FRAG_COPY;
	f->reserved = 0;
	return 0;
}

/* A connected (or connecting) TCP stream socket, else -errno with a message. */
static int check_socket(int fd)
{
	int type = 0, proto = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len))
		return gpud_err(-errno, "gpud_rx_open: fd %d is not a socket: %s", fd,
				strerror(errno));
	len = sizeof(proto);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len))
		return gpud_err(-errno, "gpud_rx_open: fd %d: SO_PROTOCOL: %s", fd, strerror(errno));
	if (type != SOCK_STREAM || proto != IPPROTO_TCP)
		return gpud_err(-EPROTONOSUPPORT,
				"gpud_rx_open: fd %d is not a TCP stream socket (devmem and the copy ring need TCP)",
				fd);
	return 0;
}

static int check_opts(struct gpud_rx_opts *o, bool bound)
{
	if (o->mode > GPUD_RX_COPY)
		return gpud_err(-EINVAL, "gpud_rx_opts.mode %d is not a gpud_rx_mode", (int)o->mode);
	if (o->mode == GPUD_RX_DEVMEM && !bound)
		return gpud_err(-EINVAL,
				"devmem receive needs opts.binding: bind the memory to the RX queue(s) with gpud_bind_rx() and steer the flow there, or use mode AUTO to fall back to copying");
	if (o->copy_chunk > GPUD_RX_CHUNK_MAX)
		return gpud_err(-EINVAL, "gpud_rx_opts.copy_chunk %zu is above the maximum of %u",
				o->copy_chunk, GPUD_RX_CHUNK_MAX);
	if (!o->copy_chunk)
		o->copy_chunk = bound && o->mode != GPUD_RX_COPY ? GPUD_RX_DEVMEM_CHUNK
								 : GPUD_RX_COPY_CHUNK;
	if (!o->copy_ring)
		o->copy_ring = GPUD_RX_COPY_RING;
	return 0;
}

/* The copy target: the caller's, or host memory of our own. */
static int setup_copy_mem(struct gpud_rx *rx)
{
	struct gpud_mem_opts mo = { .sz = sizeof(mo), .flags = GPUD_MEM_F_NO_DMABUF };
	int err;

	rx->copy_mem = rx->opts.copy_mem;
	if (!rx->copy_mem) {
		err = gpud_mem_create(GPUD_MEM_HOST, rx->opts.copy_ring, &mo, &rx->copy_mem);
		if (err)
			return err;
		rx->own_copy_mem = true;
	}
	/* Direct recv only into host memory that no device reads through a dma-buf. */
	if (rx->engine == &gpud_rx_copy_engine && gpud_mem_dmabuf_fd(rx->copy_mem) < 0)
		rx->copy_direct = gpud_mem_host_ptr(rx->copy_mem);
	err = gpud_ring_init(&rx->ring, gpud_mem_size(rx->copy_mem));
	return err ? gpud_err(err, "gpud_rx_open: out of memory for the copy ring") : 0;
}

static int setup_buffers(struct gpud_rx *rx)
{
	if (!rx->copy_direct) {
		rx->staging_len = rx->opts.copy_chunk;
		rx->staging = malloc(rx->staging_len);
		if (!rx->staging)
			return -ENOMEM;
	}
	if (rx->engine != &gpud_rx_devmem_engine)
		return 0;
	rx->control_len = CMSG_SPACE(sizeof(struct gpud_dmabuf_cmsg)) * GPUD_RX_MAX_CMSGS;
	rx->control = malloc(rx->control_len);
	rx->cfrags = calloc(GPUD_RX_MAX_CMSGS, sizeof(*rx->cfrags));
	return rx->control && rx->cfrags ? 0 : -ENOMEM;
}

static void initial_mode(struct gpud_rx *rx)
{
	const char *why = rx->opts.no_binding_reason;

	if (rx->requested == GPUD_RX_COPY)
		set_reason(rx, GPUD_RX_COPY, "copy: requested by the caller");
	else if (rx->requested == GPUD_RX_DEVMEM)
		set_reason(rx, GPUD_RX_DEVMEM, "devmem: requested; dma-buf binding %u",
			   rx->binding_id);
	else if (!rx->bound)
		set_reason(rx, GPUD_RX_COPY, "copy: no dma-buf binding%s%s",
			   why && *why ? ": " : "", why && *why ? why : "");
	else
		set_reason(rx, GPUD_RX_AUTO,
			   "auto: dma-buf binding %u given; the first data decides devmem or copy",
			   rx->binding_id);
	/* The caller's string need not outlive this call. */
	rx->opts.no_binding_reason = NULL;
}

static void rx_destroy(struct gpud_rx *rx)
{
	gpud_tokens_fini(&rx->tokens);
	gpud_ring_fini(&rx->ring);
	if (rx->own_copy_mem)
		gpud_mem_free(rx->copy_mem);
	free(rx->staging);
	free(rx->control);
	free(rx->cfrags);
	free(rx->rel_dev);
	free(rx->rel_copy);
	free(rx);
}

int gpud_rx_open_hooked(int fd, const struct gpud_rx_opts *opts, const struct gpud_rx_hooks *h,
			struct gpud_rx **out)
{
	struct gpud_rx *rx;
	int err;

	if (!out)
		return gpud_err(-EINVAL, "gpud_rx_open: out is NULL");
	err = check_socket(fd);
	if (err)
		return err;
	rx = calloc(1, sizeof(*rx));
	if (!rx)
		return gpud_err(-ENOMEM, "gpud_rx_open: out of memory");
	err = gpud_opts_copy(&rx->opts, sizeof(rx->opts), opts, "gpud_rx_opts");
	if (err)
		goto err_free;
	rx->bound = rx->opts.binding || (h && h->binding_id);
	err = check_opts(&rx->opts, rx->bound);
	if (err)
		goto err_free;
	rx->fd = fd;
	rx->requested = rx->opts.mode;
	rx->engine = rx->bound && rx->requested != GPUD_RX_COPY ? &gpud_rx_devmem_engine
								 : &gpud_rx_copy_engine;
	rx->binding_id = h && h->binding_id ? h->binding_id
			 : rx->opts.binding ? gpud_binding_id(rx->opts.binding) : 0;
	rx->recvmsg = h ? h->recvmsg : NULL;
	rx->hook_ctx = h ? h->ctx : NULL;
	gpud_tokens_init(&rx->tokens, fd, h ? h->dontneed : NULL, rx->hook_ctx);
	err = setup_copy_mem(rx);
	if (err)
		goto err_free;
	err = setup_buffers(rx);
	if (err) {
		err = gpud_err(err, "gpud_rx_open: out of memory for receive buffers");
		goto err_free;
	}
	initial_mode(rx);
	*out = rx;
	return 0;

err_free:
	rx_destroy(rx);
	return err;
}

int gpud_rx_open(int fd, const struct gpud_rx_opts *opts, struct gpud_rx **out)
{
	return gpud_rx_open_hooked(fd, opts, NULL, out);
}

void gpud_rx_free(struct gpud_rx *rx)
{
	if (!rx)
		return;
	/* The NIC's page pool gets its pages back only when tokens return. */
	if (gpud_tokens_release_all(&rx->tokens))
		gpud_log(GPUD_LOG_WARN, "rx fd %d: returning devmem tokens at free: %s", rx->fd,
			 gpud_errmsg());
	rx_destroy(rx);
}

enum gpud_rx_mode gpud_rx_mode(const struct gpud_rx *rx)
{
	return rx->mode;
}

const char *gpud_rx_mode_reason(const struct gpud_rx *rx)
{
	return rx->reason;
}

struct gpud_mem *gpud_rx_copy_mem(const struct gpud_rx *rx)
{
	return rx->copy_mem;
}

int gpud_rx_recv(struct gpud_rx *rx, struct gpud_frag *frags, size_t max_frags, int flags)
{
	int n;

	if (!rx || !frags || !max_frags)
		return gpud_err(-EINVAL, "gpud_rx_recv: rx and frags must be set and max_frags > 0");
	/* MSG_PEEK, MSG_TRUNC ... would desynchronise tokens and the ring. */
	if (flags & ~(MSG_DONTWAIT | MSG_WAITALL))
		return gpud_err(-EINVAL, "gpud_rx_recv: flags 0x%x: only MSG_DONTWAIT and MSG_WAITALL are allowed",
				flags);
	if (rx->err)
		return gpud_err(rx->err, "%s", rx->errtext);
	n = rx->engine->recv(rx, frags, max_frags, flags);
	for (int i = 0; i < n; i++) {
		rx->st.bytes += frags[i].len;
		if (frags[i].flags & GPUD_FRAG_COPY)
			rx->st.bytes_copied += frags[i].len;
		else
			rx->st.bytes_devmem += frags[i].len;
	}
	if (n > 0)
		rx->st.frags += (uint64_t)n;
	return n;
}

static int grow_release_scratch(struct gpud_rx *rx, size_t n)
{
	uint32_t *d, *c;

	if (n <= rx->rel_cap)
		return 0;
	d = realloc(rx->rel_dev, n * sizeof(*d));
	if (!d)
		return -ENOMEM;
	rx->rel_dev = d;
	c = realloc(rx->rel_copy, n * sizeof(*c));
	if (!c)
		return -ENOMEM;
	rx->rel_copy = c;
	rx->rel_cap = n;
	return 0;
}

int gpud_rx_release(struct gpud_rx *rx, const struct gpud_frag *frags, size_t n)
{
	size_t nd = 0, nc = 0;
	int err;

	if (!rx || (n && !frags))
		return gpud_err(-EINVAL, "gpud_rx_release: rx and frags must be set");
	if (grow_release_scratch(rx, n))
		return gpud_err(-ENOMEM, "gpud_rx_release: out of memory");
	for (size_t i = 0; i < n; i++) {
		if (frags[i].flags & ~GPUD_FRAG_COPY || frags[i].reserved)
			return gpud_err(-EINVAL,
					"gpud_rx_release: fragment %zu has unknown flags 0x%x: pass fragments back unchanged",
					i, frags[i].flags);
		if (frags[i].flags & GPUD_FRAG_COPY)
			rx->rel_copy[nc++] = frags[i].token;
		else
			rx->rel_dev[nd++] = frags[i].token;
	}
	/* Check both kinds before releasing either: all or nothing. */
	err = gpud_tokens_check(&rx->tokens, rx->rel_dev, nd);
	if (!err)
		err = gpud_ring_release(&rx->ring, rx->rel_copy, nc);
	if (!err)
		err = gpud_tokens_send_checked(&rx->tokens, nd);
	return err;
}

void gpud_rx_get_stats(const struct gpud_rx *rx, struct gpud_rx_stats *st)
{
	*st = rx->st;
	st->tokens_released = rx->tokens.released;
	st->tokens_outstanding = rx->tokens.outstanding + rx->ring.nout;
	st->dontneed_calls = rx->tokens.calls;
}
