// SPDX-License-Identifier: MIT
/*
 * The netdev generic-netlink family: bind a dma-buf to RX queues
 * (NETDEV_CMD_BIND_RX) and dump queues and page pools.
 *
 * The kernel ties a binding to the netlink socket that made it and releases
 * it when that socket closes (netdev_nl_sock_priv_destroy), so each
 * gpud_binding owns its own socket: freeing the object is the unbind, and a
 * crashed process cannot leak a binding.
 */
#include "nic/nic_internal.h"
#include "uapi_compat.h"

#include "agent/client.h"

#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/ethtool_netlink.h>

struct gpud_binding {
	struct gpud_nl *nl;	/* closing it unbinds; NULL through the agent */
	struct gpud_agent_conn *agent;	/* closing it makes the agent unbind */
	uint32_t id;
	int ifindex;
};

static const struct gpud_nl_attr_name queue_id_names[] = {
	{ GPUD_NETDEV_A_QUEUE_ID, "id", NULL },
	{ GPUD_NETDEV_A_QUEUE_TYPE, "type", NULL },
	{ 0, NULL, NULL },
};

const struct gpud_nl_attr_name gpud_netdev_bind_attr_names[] = {
	{ GPUD_NETDEV_A_DMABUF_IFINDEX, "ifindex", NULL },
	{ GPUD_NETDEV_A_DMABUF_QUEUES, "queues", queue_id_names },
	{ GPUD_NETDEV_A_DMABUF_FD, "fd", NULL },
	{ 0, NULL, NULL },
};

const char *gpud_errno_name(int err, char *buf, size_t len)
{
	static const struct { int e; const char *n; } names[] = {
		{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { EBADF, "EBADF" },
		{ ENOMEM, "ENOMEM" }, { EBUSY, "EBUSY" }, { EEXIST, "EEXIST" },
		{ ENODEV, "ENODEV" }, { EINVAL, "EINVAL" }, { ERANGE, "ERANGE" },
		{ E2BIG, "E2BIG" }, { ENODATA, "ENODATA" }, { EOPNOTSUPP, "EOPNOTSUPP" },
		{ EACCES, "EACCES" }, { ENOSPC, "ENOSPC" }, { EMSGSIZE, "EMSGSIZE" },
		{ EPROTO, "EPROTO" }, { ENOTSUP, "ENOTSUP" }, { EAGAIN, "EAGAIN" },
	};

	for (size_t i = 0; i < GPUD_ARRAY_SIZE(names); i++) {
		if (names[i].e == -err) {
			snprintf(buf, len, "-%s", names[i].n);
			return buf;
		}
	}
	snprintf(buf, len, "-E%d", -err);
	return buf;
}

int gpud_netdev_open(bool need_bind, struct gpud_nl **out)
{
	struct gpud_nl *nl;
	int err;

	err = gpud_nl_open(GPUD_NETDEV_FAMILY_NAME, &nl);
	if (err == -ENOENT)
		return gpud_err(-EOPNOTSUPP, "the kernel has no \"netdev\" generic netlink family: "
				"devmem TCP needs Linux 6.12 or later");
	if (err)
		return gpud_err(err, "netdev family: cannot open a generic netlink socket: %s",
				strerror(-err));
	if (need_bind && !gpud_genl_has_op(&nl->fam, GPUD_NETDEV_CMD_BIND_RX)) {
		gpud_nl_close(nl);
		return gpud_err(-EOPNOTSUPP, "the kernel's netdev family has no BIND_RX "
				"command: devmem TCP needs Linux 6.12 or later");
	}
	*out = nl;
	return 0;
}

/* ---- requests ---- */

struct nlmsghdr *gpud_netdev_bind_msg(void *buf, size_t len, uint16_t family,
				      uint32_t seq, int ifindex, int dmabuf_fd,
				      const unsigned int *queues, size_t nqueues)
{
	struct nlmsghdr *nlh;
	struct nlattr *nest;

	if (len < MNL_NLMSG_HDRLEN + GENL_HDRLEN)
		return NULL;
	nlh = gpud_genl_msg_start(buf, family, GPUD_NETDEV_CMD_BIND_RX, 1, NLM_F_ACK, seq);
	if (!mnl_attr_put_u32_check(nlh, len, GPUD_NETDEV_A_DMABUF_IFINDEX, ifindex) ||
	    !mnl_attr_put_u32_check(nlh, len, GPUD_NETDEV_A_DMABUF_FD, dmabuf_fd))
		return NULL;
	/* The queue list is a repeated (multi-attr) nest, one per queue. */
	for (size_t i = 0; i < nqueues; i++) {
		nest = mnl_attr_nest_start_check(nlh, len, GPUD_NETDEV_A_DMABUF_QUEUES);
		if (!nest ||
		    !mnl_attr_put_u32_check(nlh, len, GPUD_NETDEV_A_QUEUE_ID, queues[i]) ||
		    !mnl_attr_put_u32_check(nlh, len, GPUD_NETDEV_A_QUEUE_TYPE,
					    GPUD_NETDEV_QUEUE_TYPE_RX))
			return NULL;
		mnl_attr_nest_end(nlh, nest);
	}
	return nlh;
}

struct nlmsghdr *gpud_netdev_queue_dump_msg(void *buf, size_t len, uint16_t family,
					    uint32_t seq, int ifindex)
{
	struct nlmsghdr *nlh;

	if (len < MNL_NLMSG_HDRLEN + GENL_HDRLEN)
		return NULL;
	nlh = gpud_genl_msg_start(buf, family, GPUD_NETDEV_CMD_QUEUE_GET, 1, NLM_F_DUMP, seq);
	if (ifindex &&
	    !mnl_attr_put_u32_check(nlh, len, GPUD_NETDEV_A_QUEUE_IFINDEX, ifindex))
		return NULL;
	return nlh;
}

struct nlmsghdr *gpud_netdev_pool_dump_msg(void *buf, size_t len, uint16_t family,
					   uint32_t seq)
{
	if (len < MNL_NLMSG_HDRLEN + GENL_HDRLEN)
		return NULL;
	/* 6.12 cannot filter page-pool dumps by device: filtered while parsing. */
	return gpud_genl_msg_start(buf, family, GPUD_NETDEV_CMD_PAGE_POOL_GET, 1, NLM_F_DUMP,
				   seq);
}

/* ---- replies ---- */

static uint32_t attr_u32(const struct nlattr *a)
{
	return mnl_attr_validate(a, MNL_TYPE_U32) == 0 ? mnl_attr_get_u32(a) : 0;
}

/* The kernel sends uint attributes as 4 or 8 bytes ("uint" in the spec). */
static uint64_t attr_uint(const struct nlattr *a)
{
	if (mnl_attr_get_payload_len(a) == sizeof(uint64_t))
		return mnl_attr_get_u64(a);
	return attr_u32(a);
}

int gpud_netdev_parse_queue(const struct nlmsghdr *nlh, struct gpud_queue_info *q)
{
	struct gpud_queue_info v = { 0 };
	const struct nlattr *a;
	unsigned int seen = 0;

	mnl_attr_for_each(a, nlh, GENL_HDRLEN) {
		uint16_t type = mnl_attr_get_type(a);

		switch (type) {
		case GPUD_NETDEV_A_QUEUE_ID:
			v.id = attr_u32(a);
			break;
		case GPUD_NETDEV_A_QUEUE_IFINDEX:
			v.ifindex = (int)attr_u32(a);
			break;
		case GPUD_NETDEV_A_QUEUE_TYPE:
			v.type = attr_u32(a);
			break;
		case GPUD_NETDEV_A_QUEUE_NAPI_ID:
			v.napi_id = attr_u32(a);
			break;
		case GPUD_NETDEV_A_QUEUE_DMABUF:
			v.dmabuf_id = attr_u32(a);
			break;
		default:
			continue;
		}
		seen |= 1u << type;
	}
	if (!(seen & (1u << GPUD_NETDEV_A_QUEUE_ID)) ||
	    !(seen & (1u << GPUD_NETDEV_A_QUEUE_IFINDEX)))
		return -EINVAL;
	*q = v;
	return 0;
}

int gpud_netdev_parse_pool(const struct nlmsghdr *nlh, struct gpud_page_pool_info *pp)
{
	struct gpud_page_pool_info v = { 0 };
	const struct nlattr *a;
	bool have_id = false;

	mnl_attr_for_each(a, nlh, GENL_HDRLEN) {
		switch (mnl_attr_get_type(a)) {
		case GPUD_NETDEV_A_PAGE_POOL_ID:
			v.id = (uint32_t)attr_uint(a);
			have_id = true;
			break;
		case GPUD_NETDEV_A_PAGE_POOL_IFINDEX:
			v.ifindex = (int)attr_u32(a);
			break;
		case GPUD_NETDEV_A_PAGE_POOL_NAPI_ID:
			v.napi_id = (uint32_t)attr_uint(a);
			break;
		case GPUD_NETDEV_A_PAGE_POOL_INFLIGHT:
			v.inflight = attr_uint(a);
			break;
		case GPUD_NETDEV_A_PAGE_POOL_INFLIGHT_MEM:
			v.inflight_mem = attr_uint(a);
			break;
		case GPUD_NETDEV_A_PAGE_POOL_DETACH_TIME:
			v.detach_time = attr_uint(a);
			break;
		case GPUD_NETDEV_A_PAGE_POOL_DMABUF:
			v.dmabuf_id = attr_u32(a);
			break;
		}
	}
	if (!have_id)
		return -EINVAL;
	*pp = v;
	return 0;
}

int gpud_netdev_parse_bind(const struct nlmsghdr *nlh, uint32_t *id)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, GENL_HDRLEN) {
		if (mnl_attr_get_type(a) == GPUD_NETDEV_A_DMABUF_ID &&
		    mnl_attr_validate(a, MNL_TYPE_U32) == 0) {
			*id = mnl_attr_get_u32(a);
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- dumps ---- */

struct dump_ctx {
	int ifindex;		/* 0 = all */
	void *out;
	size_t max, n;
	bool pools;
};

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *d = data;
	struct gpud_page_pool_info pp;
	struct gpud_queue_info q;

	if (d->pools) {
		if (gpud_netdev_parse_pool(nlh, &pp))
			return MNL_CB_OK;
		if (d->ifindex && pp.ifindex != d->ifindex)
			return MNL_CB_OK;
		if (d->n < d->max)
			((struct gpud_page_pool_info *)d->out)[d->n] = pp;
	} else {
		if (gpud_netdev_parse_queue(nlh, &q))
			return MNL_CB_OK;
		if (d->ifindex && q.ifindex != d->ifindex)
			return MNL_CB_OK;
		if (d->n < d->max)
			((struct gpud_queue_info *)d->out)[d->n] = q;
	}
	d->n++;
	return MNL_CB_OK;
}

/* Returns the entry count or the kernel's -errno; says nothing itself. */
static int netdev_dump_quiet(struct gpud_nl *nl, bool pools, int ifindex, void *out,
			     size_t max, struct gpud_nl_ext *ext)
{
	struct dump_ctx d = { .ifindex = ifindex, .out = out, .max = max, .pools = pools };
	struct nlmsghdr *req;
	char buf[128];
	int err;

	if (pools)
		req = gpud_netdev_pool_dump_msg(buf, sizeof(buf), nl->fam.id, 0);
	else
		req = gpud_netdev_queue_dump_msg(buf, sizeof(buf), nl->fam.id, 0, ifindex);
	err = gpud_nl_talk(nl, req, dump_cb, &d, ext);
	return err ? err : (int)d.n;
}

static int netdev_dump(struct gpud_nl *nl, bool pools, int ifindex, void *out, size_t max)
{
	struct gpud_nl_ext ext;
	char extbuf[256];
	int err;

	err = netdev_dump_quiet(nl, pools, ifindex, out, max, &ext);
	if (err < 0) {
		gpud_nl_ext_str(&ext, NULL, NULL, extbuf, sizeof(extbuf));
		return gpud_err(err, "netdev %s dump%s: %s (%s)", pools ? "page-pool" : "queue",
				ifindex ? " for one device" : "", strerror(-err), extbuf);
	}
	return err;
}

int gpud_netdev_queues(struct gpud_nl *nl, int ifindex, struct gpud_queue_info *out,
		       size_t max)
{
	return netdev_dump(nl, false, ifindex, out, max);
}

static int dump_public(bool pools, int ifindex, void *out, size_t max)
{
	struct gpud_nl *nl;
	int ret;

	if (ifindex < 0 || (max && !out))
		return gpud_err(-EINVAL, "netdev dump: bad arguments");
	ret = gpud_netdev_open(false, &nl);
	if (ret)
		return ret;
	ret = netdev_dump(nl, pools, ifindex, out, max);
	gpud_nl_close(nl);
	return ret;
}

int gpud_queues_get(int ifindex, struct gpud_queue_info *out, size_t max)
{
	return dump_public(false, ifindex, out, max);
}

int gpud_page_pools_get(int ifindex, struct gpud_page_pool_info *out, size_t max)
{
	return dump_public(true, ifindex, out, max);
}

/* ---- bind ---- */

static const struct gpud_queue_info *find_rxq(const struct gpud_queue_info *qi, int nqi,
					      unsigned int id)
{
	for (int i = 0; i < nqi; i++)
		if (qi[i].type == GPUD_NETDEV_QUEUE_TYPE_RX && qi[i].id == id)
			return &qi[i];
	return NULL;
}

/* Our words for the errors BIND_RX gives (net/core/devmem.c, netdev-genl.c). */
static void explain_bind(int err, const char *kmsg, const char *ifname,
			 const unsigned int *queues, size_t nqueues, int nrxq,
			 const struct gpud_queue_info *qi, int nqi, char *buf, size_t len)
{
	const struct gpud_queue_info *q;

	/* Newer kernels (6.14+) name the setting that is in the way. */
	if (strstr(kmsg, "tcp-data-split")) {
		snprintf(buf, len, "header split is off on %s: enable it "
			 "(gpud_nic_set_header_split() or ethtool -G %s tcp-data-split on)",
			 ifname, ifname);
		return;
	}
	if (strstr(kmsg, "hds-thresh")) {
		snprintf(buf, len, "the header-split threshold of %s is not 0: "
			 "ethtool -G %s hds-thresh 0", ifname, ifname);
		return;
	}
	if (strstr(kmsg, "XDP")) {
		snprintf(buf, len, "an XDP program is attached to %s: detach it "
			 "(ip link set %s xdp off)", ifname, ifname);
		return;
	}
	switch (-err) {
	case EOPNOTSUPP:
		snprintf(buf, len, "%s has no queue management API: devmem needs a NIC driver "
			 "that supports it (see docs/setup.md)", ifname);
		return;
	case ERANGE:
		for (size_t i = 0; i < nqueues && nrxq >= 0; i++) {
			if (queues[i] >= (unsigned int)nrxq) {
				snprintf(buf, len, "queue %u out of range, %s has %d RX queues",
					 queues[i], ifname, nrxq);
				return;
			}
		}
		snprintf(buf, len, "a queue is out of range for %s", ifname);
		return;
	case EEXIST:
		for (size_t i = 0; i < nqueues; i++) {
			q = find_rxq(qi, nqi, queues[i]);
			if (q && q->dmabuf_id) {
				snprintf(buf, len, "queue %u of %s is already bound (dma-buf id "
					 "%u): free that binding first (gpudctl status shows it)",
					 queues[i], ifname, q->dmabuf_id);
				return;
			}
		}
		snprintf(buf, len, "a queue of %s is already bound, or an XDP program is "
			 "attached (detach it: ip link set %s xdp off)", ifname, ifname);
		return;
	case EPERM:
		snprintf(buf, len, "binding needs CAP_NET_ADMIN: run as root or grant the "
			 "capability");
		return;
	case EBADF:
		snprintf(buf, len, "the dma-buf fd is not an open file");
		return;
	case EINVAL:
		snprintf(buf, len, "the fd is not a dma-buf, or %s rejects the request "
			 "(if the kernel mentions tcp-data-split: header split is off, "
			 "enable it with gpud_nic_set_header_split() or ethtool -G %s "
			 "tcp-data-split on)", ifname, ifname);
		return;
	case ENODATA:
		snprintf(buf, len, "%s's driver did not create a page pool for the dma-buf: "
			 "it does not support unreadable (devmem) memory", ifname);
		return;
	case EBUSY:
		snprintf(buf, len, "a queue of %s is in use by AF_XDP", ifname);
		return;
	case ENODEV:
		snprintf(buf, len, "no such device (ifindex gone or in another namespace)");
		return;
	case ENOMEM:
		snprintf(buf, len, "the kernel ran out of memory mapping the dma-buf for %s",
			 ifname);
		return;
	default:
		snprintf(buf, len, "binding to %s failed: %s", ifname, strerror(-err));
	}
}

void gpud_netdev_explain_bind(int err, const char *kmsg, const char *ifname,
			      const unsigned int *queues, size_t nqueues, int nrxq,
			      const struct gpud_queue_info *qi, int nqi, char *buf, size_t len)
{
	explain_bind(err, kmsg ? kmsg : "", ifname, queues, nqueues, nrxq, qi, nqi, buf, len);
}

/* After a failure: reads the device's queues to say which one was at fault. */
/* Whether ethtool reports tcp-data-split disabled on @ifindex. */
static bool hds_is_off(int ifindex)
{
	struct gpud_nl *nl;
	uint8_t hds = 0;
	bool off;

	if (gpud_ethtool_open(&nl))
		return false;
	off = !gpud_ethtool_get_hds(nl, ifindex, &hds) && hds == ETHTOOL_TCP_DATA_SPLIT_DISABLED;
	gpud_nl_close(nl);
	return off;
}

/* Whether @fd is a dma-buf: its fdinfo names the exporter (exp_name). */
static bool fd_is_dmabuf(int fd)
{
	char path[64], line[128];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return true;	/* cannot tell: do not accuse the fd */
	while (!found && fgets(line, sizeof(line), f))
		found = !strncmp(line, "exp_name:", 9);
	fclose(f);
	return found;
}

static int bind_fail(struct gpud_nl *nl, int err, const struct gpud_nl_ext *ext,
		     const struct nlmsghdr *req, int ifindex, int dmabuf_fd,
		     const unsigned int *queues, size_t nqueues)
{
	char ifname[IF_NAMESIZE] = "", why[320], kext[320], ename[16];
	struct gpud_queue_info qi[256];
	struct gpud_nl_ext dump_ext;
	int nqi, nrxq = -1;

	if (!if_indextoname(ifindex, ifname))
		snprintf(ifname, sizeof(ifname), "ifindex %d", ifindex);
	nqi = netdev_dump_quiet(nl, false, ifindex, qi, GPUD_ARRAY_SIZE(qi), &dump_ext);
	if (nqi > (int)GPUD_ARRAY_SIZE(qi))
		nqi = GPUD_ARRAY_SIZE(qi);
	if (nqi >= 0) {
		nrxq = 0;
		for (int i = 0; i < nqi; i++)
			nrxq += qi[i].type == GPUD_NETDEV_QUEUE_TYPE_RX;
	}
	explain_bind(err, ext->msg, ifname, queues, nqueues, nrxq, qi, nqi < 0 ? 0 : nqi, why,
		     sizeof(why));
	/*
	 * 6.12 has no core check for header split, so a driver that refuses
	 * the bind because tcp-data-split is off can only answer -EINVAL,
	 * without a message (ndo_queue_mem_alloc takes no extack). Ask ethtool
	 * whether that is the reason before guessing.
	 */
	if ((err == -EINVAL || err == -EBADF) && !fd_is_dmabuf(dmabuf_fd))
		snprintf(why, sizeof(why), "fd %d is not a dma-buf (export the memory with "
			 "gpud_mem_create(), or pass the fd the exporter returned)", dmabuf_fd);
	else if (err == -EINVAL && !ext->msg[0] && hds_is_off(ifindex))
		snprintf(why, sizeof(why), "header split is off on %s: enable it "
			 "(gpud_nic_set_header_split(), or gpudctl bind, which does)", ifname);
	gpud_nl_ext_str(ext, req, gpud_netdev_bind_attr_names, kext, sizeof(kext));
	return gpud_err(err, "bind %s: %s: %s [%s]", ifname,
			gpud_errno_name(err, ename, sizeof(ename)), why, kext);
}

static int bind_reply_cb(const struct nlmsghdr *nlh, void *data)
{
	return gpud_netdev_parse_bind(nlh, data) ? MNL_CB_ERROR : MNL_CB_OK;
}

int gpud_bind_rx_fd(int ifindex, int dmabuf_fd, const unsigned int *queues, size_t nqueues,
		    struct gpud_binding **out)
{
	struct gpud_nl_ext ext;
	struct gpud_binding *b;
	struct nlmsghdr *req;
	uint32_t id = 0;
	void *buf;
	int err;

	if (ifindex <= 0 || dmabuf_fd < 0 || !queues || !nqueues || !out)
		return gpud_err(-EINVAL, "bind: needs an ifindex, a dma-buf fd and at least "
				"one queue");
	b = calloc(1, sizeof(*b));
	buf = malloc(GPUD_NL_TXBUF);
	if (!b || !buf) {
		err = gpud_err(-ENOMEM, "bind: out of memory");
		goto err_free;
	}
	err = gpud_netdev_open(true, &b->nl);
	if (err)
		goto err_free;
	req = gpud_netdev_bind_msg(buf, GPUD_NL_TXBUF, b->nl->fam.id, 0, ifindex, dmabuf_fd,
				   queues, nqueues);
	if (!req) {
		err = gpud_err(-E2BIG, "bind: %zu queues do not fit in one request", nqueues);
		goto err_close;
	}
	err = gpud_nl_talk(b->nl, req, bind_reply_cb, &id, &ext);
	if (err) {
		err = bind_fail(b->nl, err, &ext, req, ifindex, dmabuf_fd, queues, nqueues);
		goto err_close;
	}
	b->id = id;
	b->ifindex = ifindex;
	free(buf);
	gpud_log(GPUD_LOG_INFO, "bound dma-buf fd %d to %zu queue(s) of ifindex %d: id %u",
		 dmabuf_fd, nqueues, ifindex, id);
	*out = b;
	return 0;

err_close:
	gpud_nl_close(b->nl);
err_free:
	free(buf);
	free(b);
	return err;
}

/* Through gpudd: the agent binds the fd we pass and owns the netlink socket. */
static int bind_via_agent(struct gpud_agent_conn *c, int ifindex, int fd,
			  const unsigned int *queues, size_t nqueues, struct gpud_binding **out)
{
	char ifname[IF_NAMESIZE];
	uint8_t req[GPUD_PROTO_REQ_MAX];
	struct gpud_proto_msg rep;
	struct gpud_proto_buf b;
	struct gpud_binding *bd;
	void *rbuf;
	int err;

	if (!if_indextoname((unsigned int)ifindex, ifname))
		return gpud_err(-ENODEV, "bind: no interface with ifindex %d here", ifindex);
	if (nqueues > GPUD_PROTO_MAX_QUEUES)
		return gpud_err(-E2BIG, "bind: at most %d queues per binding through gpudd",
				GPUD_PROTO_MAX_QUEUES);
	bd = calloc(1, sizeof(*bd));
	rbuf = malloc(GPUD_PROTO_REPLY_MAX);
	if (!bd || !rbuf) {
		err = gpud_err(-ENOMEM, "bind: out of memory");
		goto err_free;
	}
	gpud_agent_req(c, &b, req, GPUD_MSG_BIND);
	gpud_proto_put_str(&b, GPUD_A_IFNAME, ifname, GPUD_PROTO_IFNAME_MAX);
	gpud_proto_put_u32(&b, GPUD_A_IFINDEX, (uint32_t)ifindex);
	for (size_t i = 0; i < nqueues; i++)
		gpud_proto_put_u32(&b, GPUD_A_QUEUE, queues[i]);
	err = gpud_agent_call(c, &b, fd, &rep, rbuf, "bind");
	if (err)
		goto err_free;
	bd->agent = c;
	bd->id = rep.binding;
	bd->ifindex = ifindex;
	free(rbuf);
	gpud_log(GPUD_LOG_INFO, "gpudd bound dma-buf fd %d to %zu queue(s) of %s: id %u", fd,
		 nqueues, ifname, bd->id);
	*out = bd;
	return 0;

err_free:
	free(rbuf);
	free(bd);
	return err;
}

int gpud_bind_rx_opts(int ifindex, struct gpud_mem *mem, const unsigned int *queues,
		      size_t nqueues, const struct gpud_agent_opts *opts,
		      struct gpud_binding **out)
{
	struct gpud_agent_conn *c;
	int fd, err;

	if (!mem)
		return gpud_err(-EINVAL, "bind: no memory given");
	fd = gpud_mem_dmabuf_fd(mem);
	if (fd < 0)
		return gpud_err(fd, "bind: the memory was not exported as a dma-buf "
				"(created with GPUD_MEM_F_NO_DMABUF?)");
	if (ifindex <= 0 || !queues || !nqueues || !out)
		return gpud_err(-EINVAL, "bind: needs an ifindex, a dma-buf fd and at least "
				"one queue");
	err = gpud_agent_conn_open(opts, &c);
	if (err)
		return err;
	if (!c)
		return gpud_bind_rx_fd(ifindex, fd, queues, nqueues, out);
	err = bind_via_agent(c, ifindex, fd, queues, nqueues, out);
	if (err)
		gpud_agent_conn_close(c);
	return err;
}

int gpud_bind_rx(int ifindex, struct gpud_mem *mem, const unsigned int *queues,
		 size_t nqueues, struct gpud_binding **out)
{
	return gpud_bind_rx_opts(ifindex, mem, queues, nqueues, NULL, out);
}

void gpud_binding_free(struct gpud_binding *b)
{
	if (!b)
		return;
	/* Closing the socket is the unbind: the kernel releases the binding. */
	gpud_nl_close(b->nl);
	/* Through the agent: closing our connection makes it close its socket. */
	gpud_agent_conn_close(b->agent);
	free(b);
}

uint32_t gpud_binding_id(const struct gpud_binding *b)
{
	return b ? b->id : 0;
}

int gpud_devmem_probe(void)
{
	struct gpud_nl *nl;
	int err;

	err = gpud_netdev_open(true, &nl);
	if (err)
		return err;
	gpud_nl_close(nl);
	return 0;
}
