// SPDX-License-Identifier: MIT
/*
 * Generic netlink over libmnl: family resolution through nlctrl, one
 * request/reply exchange at a time, and extended-ACK parsing. The kernel's
 * own words (NLMSGERR_ATTR_MSG) and the attribute it blamed
 * (NLMSGERR_ATTR_OFFS) are kept for every failure, because without them a
 * user sees only "Operation not supported".
 */
#include "internal.h"
#include "nic/nl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#define GENL_PAYLOAD_OFF (NLMSG_HDRLEN + GENL_HDRLEN)

struct nlmsghdr *gpud_genl_msg_start(void *buf, uint16_t family, uint8_t cmd,
				     uint8_t version, uint16_t flags, uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = version;
	return nlh;
}

struct nlmsghdr *gpud_ctrl_getfamily_msg(void *buf, size_t len, const char *name,
					 uint32_t seq)
{
	struct nlmsghdr *nlh;

	if (len < MNL_NLMSG_HDRLEN + GENL_HDRLEN)
		return NULL;
	nlh = gpud_genl_msg_start(buf, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, NLM_F_ACK, seq);
	if (!mnl_attr_put_strz_check(nlh, len, CTRL_ATTR_FAMILY_NAME, name))
		return NULL;
	return nlh;
}

/* One element of CTRL_ATTR_OPS: { CTRL_ATTR_OP_ID, CTRL_ATTR_OP_FLAGS }. */
static int parse_family_op(const struct nlattr *op, struct gpud_genl_family *fam)
{
	const struct nlattr *a;
	uint32_t id = UINT32_MAX, flags = 0;

	mnl_attr_for_each_nested(a, op) {
		if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
			continue;
		if (mnl_attr_get_type(a) == CTRL_ATTR_OP_ID)
			id = mnl_attr_get_u32(a);
		else if (mnl_attr_get_type(a) == CTRL_ATTR_OP_FLAGS)
			flags = mnl_attr_get_u32(a);
	}
	if (id >= 64)
		return 0;
	/* Kernels before split ops report no CAP flags: a listed op exists. */
	if ((flags & GENL_CMD_CAP_DO) || !(flags & GENL_CMD_CAP_DUMP))
		fam->ops_do |= 1ULL << id;
	if (flags & GENL_CMD_CAP_DUMP)
		fam->ops_dump |= 1ULL << id;
	if (flags & GENL_ADMIN_PERM)
		fam->ops_admin |= 1ULL << id;
	return 0;
}

int gpud_ctrl_parse_family(const struct nlmsghdr *nlh, struct gpud_genl_family *fam)
{
	struct gpud_genl_family f = { 0 };
	const struct nlattr *a, *op;

	if (nlh->nlmsg_len < GENL_PAYLOAD_OFF)
		return -EINVAL;
	mnl_attr_for_each(a, nlh, GENL_HDRLEN) {
		switch (mnl_attr_get_type(a)) {
		case CTRL_ATTR_FAMILY_ID:
			if (mnl_attr_validate(a, MNL_TYPE_U16) == 0)
				f.id = mnl_attr_get_u16(a);
			break;
		case CTRL_ATTR_VERSION:
			if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
				f.version = mnl_attr_get_u32(a);
			break;
		case CTRL_ATTR_MAXATTR:
			if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
				f.maxattr = mnl_attr_get_u32(a);
			break;
		case CTRL_ATTR_OPS:
			mnl_attr_for_each_nested(op, a)
				parse_family_op(op, &f);
			break;
		}
	}
	if (!f.id)
		return -EINVAL;
	*fam = f;
	return 0;
}

int gpud_nl_parse_ack(const struct nlmsghdr *nlh, struct gpud_nl_ext *ext)
{
	const struct nlmsgerr *e;
	const struct nlattr *a;
	size_t tlv_off;
	int err;

	memset(ext, 0, sizeof(*ext));
	if (nlh->nlmsg_type == NLMSG_DONE) {
		/* A dump's end: an int error, then TLVs when NLM_F_ACK_TLVS. */
		if (mnl_nlmsg_get_payload_len(nlh) < sizeof(int))
			return 0;
		memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
		tlv_off = sizeof(int);
	} else {
		if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e))
			return ext->err = -EBADMSG;
		e = mnl_nlmsg_get_payload(nlh);
		err = e->error;
		/* The request is echoed after the header unless capped. */
		tlv_off = sizeof(*e);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			tlv_off += e->msg.nlmsg_len - sizeof(e->msg);
	}
	ext->err = err > 0 ? -err : err;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return ext->err;
	tlv_off = MNL_ALIGN(tlv_off);
	if (tlv_off > mnl_nlmsg_get_payload_len(nlh))
		return ext->err;
	mnl_attr_for_each(a, nlh, tlv_off) {
		switch (mnl_attr_get_type(a)) {
		case NLMSGERR_ATTR_MSG:
			if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
				snprintf(ext->msg, sizeof(ext->msg), "%s", mnl_attr_get_str(a));
			break;
		case NLMSGERR_ATTR_OFFS:
			if (mnl_attr_validate(a, MNL_TYPE_U32) == 0) {
				ext->has_off = true;
				ext->off = mnl_attr_get_u32(a);
			}
			break;
		case NLMSGERR_ATTR_MISS_TYPE:
			if (mnl_attr_validate(a, MNL_TYPE_U32) == 0) {
				ext->has_miss = true;
				ext->miss_type = mnl_attr_get_u32(a);
			}
			break;
		}
	}
	return ext->err;
}

static const char *attr_name(const struct gpud_nl_attr_name *names, uint16_t type,
			     const struct gpud_nl_attr_name **nest)
{
	*nest = NULL;
	for (; names && names->name; names++) {
		if (names->type == type) {
			*nest = names->nest;
			return names->name;
		}
	}
	return NULL;
}

/* Walks attributes in [pos, end) of @base looking for one that starts at @off. */
static bool attr_path_walk(const char *base, uint32_t pos, uint32_t end, uint32_t off,
			   const struct gpud_nl_attr_name *names, char *buf, size_t len)
{
	while (pos + sizeof(struct nlattr) <= end) {
		const struct nlattr *a = (const void *)(base + pos);
		const struct gpud_nl_attr_name *nest;
		uint16_t type = mnl_attr_get_type(a);
		const char *name = attr_name(names, type, &nest);
		size_t used = strlen(buf);
		uint32_t alen = a->nla_len;

		if (alen < sizeof(*a) || pos + alen > end)
			return false;
		if (off >= pos && off < pos + alen) {
			if (name)
				snprintf(buf + used, len - used, ".%s", name);
			else
				snprintf(buf + used, len - used, ".attr%u", type);
			if (off == pos)
				return true;
			return attr_path_walk(base, pos + MNL_ATTR_HDRLEN, pos + alen, off,
					      nest, buf, len);
		}
		pos += MNL_ALIGN(alen);
	}
	return false;
}

bool gpud_nl_attr_path(const struct nlmsghdr *req, uint32_t off,
		       const struct gpud_nl_attr_name *names, char *buf, size_t len)
{
	if (!len)
		return false;
	buf[0] = '\0';
	if (attr_path_walk((const char *)req, GENL_PAYLOAD_OFF, req->nlmsg_len, off, names,
			   buf, len))
		return true;
	buf[0] = '\0';
	return false;
}

void gpud_nl_ext_str(const struct gpud_nl_ext *ext, const struct nlmsghdr *req,
		     const struct gpud_nl_attr_name *names, char *buf, size_t len)
{
	char path[96] = "";
	int n = 0;

	if (!ext->msg[0] && !ext->has_off && !ext->has_miss) {
		snprintf(buf, len, "the kernel gave no extended ACK");
		return;
	}
	if (ext->msg[0])
		n = snprintf(buf, len, "kernel says \"%s\"", ext->msg);
	else
		n = snprintf(buf, len, "kernel gave no message");
	if (n < 0 || (size_t)n >= len)
		return;
	if (ext->has_off) {
		if (!req || !gpud_nl_attr_path(req, ext->off, names, path, sizeof(path)))
			snprintf(path, sizeof(path), "offset %u", ext->off);
		n += snprintf(buf + n, len - n, ", bad-attr: %s", path);
	}
	if (ext->has_miss && (size_t)n < len) {
		const struct gpud_nl_attr_name *nest;
		const char *m = attr_name(names, ext->miss_type, &nest);

		if (m)
			snprintf(buf + n, len - n, ", missing attr: .%s", m);
		else
			snprintf(buf + n, len - n, ", missing attr: %u", ext->miss_type);
	}
}

/* ---- one exchange ---- */

struct talk_ctx {
	gpud_nl_cb cb;
	void *data;
	int cb_err;
	struct gpud_nl_ext *ext;
};

static int talk_data_cb(const struct nlmsghdr *nlh, void *data)
{
	struct talk_ctx *t = data;
	int ret;

	/* After a parse failure keep draining, so the socket stays usable. */
	if (!t->cb || t->cb_err)
		return MNL_CB_OK;
	errno = 0;
	ret = t->cb(nlh, t->data);
	if (ret == MNL_CB_ERROR)
		t->cb_err = errno ? -errno : -EBADMSG;
	/* Never stop early: the ACK or NLMSG_DONE must still be read. */
	return MNL_CB_OK;
}

static int talk_ack_cb(const struct nlmsghdr *nlh, void *data)
{
	struct talk_ctx *t = data;
	int err = gpud_nl_parse_ack(nlh, t->ext);

	if (err < 0) {
		errno = -err;
		return MNL_CB_ERROR;
	}
	return MNL_CB_STOP;
}

static int talk_noop_cb(const struct nlmsghdr *nlh, void *data)
{
	return MNL_CB_OK;
}

/* Not const: mnl_cb_run2() takes a non-const array. */
static mnl_cb_t talk_ctl_cbs[NLMSG_MIN_TYPE] = {
	[NLMSG_NOOP] = talk_noop_cb,
	[NLMSG_ERROR] = talk_ack_cb,
	[NLMSG_DONE] = talk_ack_cb,
};

int gpud_nl_talk(struct gpud_nl *nl, struct nlmsghdr *req, gpud_nl_cb cb, void *data,
		 struct gpud_nl_ext *ext)
{
	struct talk_ctx t = { .cb = cb, .data = data, .ext = ext };
	ssize_t n;
	int ret;

	memset(ext, 0, sizeof(*ext));
	req->nlmsg_seq = ++nl->seq;
	if (mnl_socket_sendto(nl->sk, req, req->nlmsg_len) < 0)
		return ext->err = -errno;
	do {
		n = mnl_socket_recvfrom(nl->sk, nl->rxbuf, GPUD_NL_RXBUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ext->err = -errno;
		errno = 0;
		ret = mnl_cb_run2(nl->rxbuf, n, req->nlmsg_seq, nl->portid, talk_data_cb, &t,
				  talk_ctl_cbs, NLMSG_MIN_TYPE);
	} while (ret > 0);
	if (ret < 0 && !ext->err)
		ext->err = errno ? -errno : -EPROTO;
	if (!ext->err && t.cb_err)
		return t.cb_err;
	return ext->err;
}

/* ---- socket and family ---- */

static int resolve_cb(const struct nlmsghdr *nlh, void *data)
{
	return gpud_ctrl_parse_family(nlh, data) ? MNL_CB_ERROR : MNL_CB_OK;
}

static int nl_resolve(struct gpud_nl *nl, const char *family)
{
	char buf[256];
	struct gpud_nl_ext ext;
	struct nlmsghdr *req;
	int err;

	req = gpud_ctrl_getfamily_msg(buf, sizeof(buf), family, 0);
	if (!req)
		return -ENAMETOOLONG;
	err = gpud_nl_talk(nl, req, resolve_cb, &nl->fam, &ext);
	if (!err && !nl->fam.id)
		err = -ENOENT;
	return err;
}

int gpud_nl_open(const char *family, struct gpud_nl **out)
{
	struct gpud_nl *nl;
	int one = 1, err;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->rxbuf = malloc(GPUD_NL_RXBUF);
	if (!nl->rxbuf) {
		err = -ENOMEM;
		goto err_free;
	}
	nl->sk = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!nl->sk) {
		err = -errno;
		goto err_free_buf;
	}
	if (mnl_socket_bind(nl->sk, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto err_close;
	}
	/* Extended ACKs carry the kernel's message; capped ACKs keep them short. */
	mnl_socket_setsockopt(nl->sk, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sk, NETLINK_CAP_ACK, &one, sizeof(one));
	nl->portid = mnl_socket_get_portid(nl->sk);
	err = nl_resolve(nl, family);
	if (err)
		goto err_close;
	*out = nl;
	return 0;

err_close:
	mnl_socket_close(nl->sk);
err_free_buf:
	free(nl->rxbuf);
err_free:
	free(nl);
	return err;
}

void gpud_nl_close(struct gpud_nl *nl)
{
	if (!nl)
		return;
	mnl_socket_close(nl->sk);
	free(nl->rxbuf);
	free(nl);
}
