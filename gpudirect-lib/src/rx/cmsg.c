// SPDX-License-Identifier: MIT
/*
 * recvmsg(MSG_SOCK_DEVMEM) control buffer -> fragments.
 *
 * The kernel (tcp_recvmsg_dmabuf, 6.12) writes, per skb, one
 * SCM_DEVMEM_LINEAR entry for header-area bytes it copied into the iov and
 * one SCM_DEVMEM_DMABUF entry per page fragment it lends out. It never
 * truncates those (put_cmsg_notrunc: it stops instead), but other cmsgs
 * (timestamps, ...) can share the buffer and be truncated, so the walk checks
 * every length itself rather than trusting CMSG_NXTHDR, which silently drops
 * a short last entry and does not check the first.
 */
#include "rx_internal.h"

#include <string.h>
#include <sys/socket.h>

static bool cmsg_is_devmem(const struct cmsghdr *c)
{
	return c->cmsg_level == SOL_SOCKET &&
	       (c->cmsg_type == SCM_DEVMEM_DMABUF || c->cmsg_type == SCM_DEVMEM_LINEAR);
}

/* Fills @f from one devmem cmsg (header @c, body at @body); returns its kind. */
static enum gpud_cmsg_kind cmsg_decode(const struct cmsghdr *c, const unsigned char *body,
				       uint64_t *linear_off, struct gpud_cmsg_frag *f)
{
	struct gpud_dmabuf_cmsg d;

	memcpy(&d, body, sizeof(d));
	memset(f, 0, sizeof(*f));
	f->len = d.frag_size;
	if (c->cmsg_type == SCM_DEVMEM_LINEAR) {
		/* LINEAR bytes sit in the iov back to back, in cmsg order. */
		f->kind = GPUD_CMSG_LINEAR;
		f->offset = *linear_off;
		*linear_off += d.frag_size;
		return f->kind;
	}
	f->kind = GPUD_CMSG_DMABUF;
	f->offset = d.frag_offset;
	f->token = d.frag_token;
	f->dmabuf_id = d.dmabuf_id;
	return f->kind;
}

static void account(struct gpud_cmsg_result *res, const struct gpud_cmsg_frag *f,
		    uint32_t binding_id)
{
	if (f->kind == GPUD_CMSG_LINEAR) {
		res->nlinear++;
		res->linear_bytes += f->len;
		return;
	}
	res->ndmabuf++;
	res->dmabuf_bytes += f->len;
	if (f->dmabuf_id != binding_id && !res->bad_id)
		res->bad_id = f->dmabuf_id ? f->dmabuf_id : UINT32_MAX;
}

int gpud_cmsg_parse(const void *control, size_t len, int msg_flags, uint32_t binding_id,
		    struct gpud_cmsg_frag *frags, size_t max, struct gpud_cmsg_result *res)
{
	const unsigned char *buf = control;
	uint64_t linear_off = 0;
	size_t pos = 0;

	memset(res, 0, sizeof(*res));
	res->ctrunc = !!(msg_flags & MSG_CTRUNC);
	while (control && pos + sizeof(struct cmsghdr) <= len) {
		struct cmsghdr h;

		/* The caller's buffer need not be aligned: copy, never cast. */
		memcpy(&h, buf + pos, sizeof(h));
		if (h.cmsg_len < sizeof(h) || h.cmsg_len > len - pos) {
			/* A truncated foreign cmsg is harmless; a devmem one lost a token. */
			res->truncated = true;
			return cmsg_is_devmem(&h) ? -EBADMSG : 0;
		}
		if (!cmsg_is_devmem(&h)) {
			res->unknown++;
		} else if (h.cmsg_len < CMSG_LEN(sizeof(struct gpud_dmabuf_cmsg))) {
			res->truncated = true;
			return -EBADMSG;
		} else if (res->nfrags == max) {
			return -ENOBUFS;
		} else {
			cmsg_decode(&h, buf + pos + CMSG_LEN(0), &linear_off, &frags[res->nfrags]);
			account(res, &frags[res->nfrags], binding_id);
			res->nfrags++;
		}
		pos += CMSG_ALIGN(h.cmsg_len);
	}
	return res->bad_id ? -EXDEV : 0;
}
