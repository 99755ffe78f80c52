// SPDX-License-Identifier: MIT
/*
 * Unit: netlink request building and reply parsing, on bytes captured from
 * a real kernel (nic_captured.h), no sockets.
 */
#include "gpud_test.h"
#include "nic/nic_internal.h"
#include "uapi_compat.h"

#include "nic_captured.h"

#define FAM_NETDEV 20	/* the family id in the captures */

/* Calls @fn on each message of a captured buffer; returns how many. */
static int for_each_msg(const uint8_t *buf, size_t len,
			void (*fn)(const struct nlmsghdr *nlh, int i, void *data), void *data)
{
	const struct nlmsghdr *nlh = (const void *)buf;
	int rem = (int)len, i = 0;

	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem))
		fn(nlh, i++, data);
	T_ASSERT_EQ(0, rem);
	return i;
}

static void test_bind_request(void)
{
	static const unsigned int q2[] = { 0, 1 }, q3[] = { 4, 5, 7 };
	uint8_t buf[512];
	struct nlmsghdr *nlh;
	const struct nlattr *a, *in;
	int nests = 0;

	/* Byte-identical to the request that got cap_bind_err from the kernel. */
	nlh = gpud_netdev_bind_msg(buf, sizeof(buf), FAM_NETDEV, 0, 3, 4, q2, 2);
	T_ASSERT(nlh);
	T_ASSERT_EQ(sizeof(cap_bind_req), nlh->nlmsg_len);
	T_ASSERT(!memcmp(buf, cap_bind_req, sizeof(cap_bind_req)));

	/* Three queues: one nest each, {id, type = rx}, in order. */
	nlh = gpud_netdev_bind_msg(buf, sizeof(buf), FAM_NETDEV, 7, 9, 11, q3, 3);
	T_ASSERT(nlh);
	T_ASSERT_EQ(7, nlh->nlmsg_seq);
	T_ASSERT_EQ(NLM_F_REQUEST | NLM_F_ACK, nlh->nlmsg_flags);
	T_ASSERT_EQ(GPUD_NETDEV_CMD_BIND_RX,
		    ((struct genlmsghdr *)mnl_nlmsg_get_payload(nlh))->cmd);
	mnl_attr_for_each(a, nlh, GENL_HDRLEN) {
		switch (mnl_attr_get_type(a)) {
		case GPUD_NETDEV_A_DMABUF_IFINDEX:
			T_ASSERT_EQ(9, mnl_attr_get_u32(a));
			break;
		case GPUD_NETDEV_A_DMABUF_FD:
			T_ASSERT_EQ(11, mnl_attr_get_u32(a));
			break;
		case GPUD_NETDEV_A_DMABUF_QUEUES: {
			int seen = 0;

			T_ASSERT(a->nla_type & NLA_F_NESTED);
			mnl_attr_for_each_nested(in, a) {
				if (mnl_attr_get_type(in) == GPUD_NETDEV_A_QUEUE_ID)
					T_ASSERT_EQ(q3[nests], mnl_attr_get_u32(in));
				else if (mnl_attr_get_type(in) == GPUD_NETDEV_A_QUEUE_TYPE)
					T_ASSERT_EQ(GPUD_NETDEV_QUEUE_TYPE_RX, mnl_attr_get_u32(in));
				else
					T_FAIL("unexpected attr %u in queue nest", mnl_attr_get_type(in));
				seen++;
			}
			T_ASSERT_EQ(2, seen);
			nests++;
			break;
		}
		default:
			T_FAIL("unexpected attr %u", mnl_attr_get_type(a));
		}
	}
	T_ASSERT_EQ(3, nests);

	/* Does not fit: NULL, never a truncated request. */
	T_ASSERT(!gpud_netdev_bind_msg(buf, 60, FAM_NETDEV, 0, 3, 4, q3, 3));
	T_ASSERT(!gpud_netdev_bind_msg(buf, 8, FAM_NETDEV, 0, 3, 4, q3, 3));
}

static void family_msg(const struct nlmsghdr *nlh, int i, void *data)
{
	struct gpud_genl_family *fam = data;
	struct gpud_nl_ext ext;

	if (i == 0) {
		T_ASSERT_EQ(GENL_ID_CTRL, nlh->nlmsg_type);
		T_ASSERT_OK(gpud_ctrl_parse_family(nlh, fam));
	} else {
		T_ASSERT_EQ(NLMSG_ERROR, nlh->nlmsg_type);
		T_ASSERT_EQ(0, gpud_nl_parse_ack(nlh, &ext));
	}
}

static void test_family(void)
{
	struct gpud_genl_family fam = { 0 };
	struct gpud_nl_ext ext;
	uint8_t buf[64];
	struct nlmsghdr *req;

	T_ASSERT_EQ(2, for_each_msg(cap_family_netdev, sizeof(cap_family_netdev), family_msg,
				    &fam));
	T_ASSERT_EQ(FAM_NETDEV, fam.id);
	T_ASSERT_EQ(1, fam.version);
	/* 6.18 lists ops 1, 5, 10-15; BIND_RX (13) is a do needing admin. */
	T_ASSERT(gpud_genl_has_op(&fam, GPUD_NETDEV_CMD_BIND_RX));
	T_ASSERT((fam.ops_do >> GPUD_NETDEV_CMD_BIND_RX) & 1);
	T_ASSERT((fam.ops_admin >> GPUD_NETDEV_CMD_BIND_RX) & 1);
	T_ASSERT((fam.ops_dump >> GPUD_NETDEV_CMD_QUEUE_GET) & 1);
	T_ASSERT((fam.ops_dump >> GPUD_NETDEV_CMD_PAGE_POOL_GET) & 1);
	T_ASSERT(!((fam.ops_admin >> GPUD_NETDEV_CMD_QUEUE_GET) & 1));
	T_ASSERT(!gpud_genl_has_op(&fam, GPUD_NETDEV_CMD_DEV_ADD_NTF));
	T_ASSERT_EQ(0xfc22ULL, fam.ops_do | fam.ops_dump);

	/* Unknown family: -ENOENT in a capped ACK without TLVs. */
	T_ASSERT_EQ(-ENOENT, gpud_nl_parse_ack((const void *)cap_family_missing, &ext));
	T_ASSERT_EQ(-ENOENT, ext.err);
	T_ASSERT_STREQ("", ext.msg);
	T_ASSERT(!ext.has_off);

	/* Our request matches what the capture tool sent. */
	req = gpud_ctrl_getfamily_msg(buf, sizeof(buf), "netdev", 5);
	T_ASSERT(req);
	T_ASSERT_EQ(GENL_ID_CTRL, req->nlmsg_type);
	T_ASSERT_EQ(NLMSG_HDRLEN + GENL_HDRLEN + 4 + 8, req->nlmsg_len);
	T_ASSERT(!gpud_ctrl_getfamily_msg(buf, 20, "netdev", 5));
}

struct qdump {
	struct gpud_queue_info q[8];
	int n, done;
};

static void queue_msg(const struct nlmsghdr *nlh, int i, void *data)
{
	struct qdump *d = data;
	struct gpud_nl_ext ext;

	if (nlh->nlmsg_type == NLMSG_DONE) {
		T_ASSERT_EQ(0, gpud_nl_parse_ack(nlh, &ext));
		d->done++;
		return;
	}
	T_ASSERT_EQ(FAM_NETDEV, nlh->nlmsg_type);
	T_ASSERT_OK(gpud_netdev_parse_queue(nlh, &d->q[d->n++]));
}

/* The VM's kernel numbers the family differently (19). */
static void queue_msg_any(const struct nlmsghdr *nlh, int i, void *data)
{
	struct qdump *d = data;
	struct gpud_nl_ext ext;

	if (nlh->nlmsg_type == NLMSG_DONE) {
		T_ASSERT_EQ(0, gpud_nl_parse_ack(nlh, &ext));
		d->done++;
		return;
	}
	T_ASSERT_OK(gpud_netdev_parse_queue(nlh, &d->q[d->n++]));
}

static void test_queue_dump(void)
{
	struct qdump d = { 0 };

	T_ASSERT_EQ(5, for_each_msg(cap_queue_dump, sizeof(cap_queue_dump), queue_msg, &d));
	T_ASSERT_EQ(1, d.done);
	T_ASSERT_EQ(4, d.n);
	for (int i = 0; i < 4; i++) {
		T_ASSERT_EQ(3, d.q[i].ifindex);
		T_ASSERT_EQ(i & 1, d.q[i].id);
		T_ASSERT_EQ(i >> 1, d.q[i].type);	/* rx 0, rx 1, tx 0, tx 1 */
		T_ASSERT_EQ(0, d.q[i].napi_id);		/* veth: no NAPI by default */
		T_ASSERT_EQ(0, d.q[i].dmabuf_id);
	}
}

static void test_queue_dump_612(void)
{
	struct qdump d = { 0 };

	T_ASSERT_EQ(9, for_each_msg(cap612_queue_dump, sizeof(cap612_queue_dump), queue_msg_any,
				    &d));
	T_ASSERT_EQ(1, d.done);
	T_ASSERT_EQ(8, d.n);
	for (int i = 0; i < 8; i++) {
		T_ASSERT_EQ(3, d.q[i].ifindex);
		T_ASSERT_EQ(i & 3, d.q[i].id);
		T_ASSERT_EQ(i >> 2, d.q[i].type);
		T_ASSERT_EQ(i < 4 ? 3 + i : 0, d.q[i].napi_id);	/* netdevsim: NAPI per rx queue */
		T_ASSERT_EQ(0, d.q[i].dmabuf_id);
	}
}

struct pdump {
	struct gpud_page_pool_info pp[8];
	int n, done;
};

static void pool_msg(const struct nlmsghdr *nlh, int i, void *data)
{
	struct pdump *d = data;
	struct gpud_nl_ext ext;

	if (nlh->nlmsg_type == NLMSG_DONE) {
		T_ASSERT_EQ(0, gpud_nl_parse_ack(nlh, &ext));
		d->done++;
		return;
	}
	T_ASSERT_OK(gpud_netdev_parse_pool(nlh, &d->pp[d->n++]));
}

static void test_pool_dump_612(void)
{
	struct pdump d = { 0 };

	T_ASSERT_EQ(5, for_each_msg(cap612_pool_dump, sizeof(cap612_pool_dump), pool_msg, &d));
	T_ASSERT_EQ(1, d.done);
	T_ASSERT_EQ(4, d.n);
	for (int i = 0; i < 4; i++) {
		T_ASSERT_EQ(6 - i, d.pp[i].id);
		T_ASSERT_EQ(3, d.pp[i].ifindex);
		T_ASSERT_EQ(6 - i, d.pp[i].napi_id);
		T_ASSERT_EQ(0, d.pp[i].inflight);
		T_ASSERT_EQ(0, d.pp[i].inflight_mem);
		T_ASSERT_EQ(0, d.pp[i].detach_time);
		T_ASSERT_EQ(0, d.pp[i].dmabuf_id);
	}
}

static void test_pool_parse(void)
{
	struct gpud_page_pool_info pp;
	struct gpud_nl_ext ext;
	uint8_t buf[256];
	struct nlmsghdr *nlh;

	/* The host's captured dump is only its end. */
	T_ASSERT_EQ(NLMSG_DONE, ((const struct nlmsghdr *)cap_pool_dump)->nlmsg_type);
	T_ASSERT_EQ(0, gpud_nl_parse_ack((const void *)cap_pool_dump, &ext));

	/*
	 * No host here exposes a page pool, so this one is built the way
	 * page_pool_nl_fill() lays it out: "uint" attributes are 4 bytes when
	 * the value fits and 8 otherwise.
	 */
	nlh = gpud_genl_msg_start(buf, FAM_NETDEV, GPUD_NETDEV_CMD_PAGE_POOL_GET, 1, 0, 0);
	mnl_attr_put_u32(nlh, GPUD_NETDEV_A_PAGE_POOL_ID, 17);
	mnl_attr_put_u32(nlh, GPUD_NETDEV_A_PAGE_POOL_IFINDEX, 5);
	mnl_attr_put_u32(nlh, GPUD_NETDEV_A_PAGE_POOL_NAPI_ID, 8193);
	mnl_attr_put_u32(nlh, GPUD_NETDEV_A_PAGE_POOL_INFLIGHT, 1024);
	mnl_attr_put_u64(nlh, GPUD_NETDEV_A_PAGE_POOL_INFLIGHT_MEM, 0x100000000ULL);
	mnl_attr_put_u32(nlh, GPUD_NETDEV_A_PAGE_POOL_DETACH_TIME, 1700000000);
	mnl_attr_put_u32(nlh, GPUD_NETDEV_A_PAGE_POOL_DMABUF, 3);
	T_ASSERT_OK(gpud_netdev_parse_pool(nlh, &pp));
	T_ASSERT_EQ(17, pp.id);
	T_ASSERT_EQ(5, pp.ifindex);
	T_ASSERT_EQ(8193, pp.napi_id);
	T_ASSERT_EQ(1024, pp.inflight);
	T_ASSERT_EQ(0x100000000LL, (long long)pp.inflight_mem);
	T_ASSERT_EQ(1700000000, pp.detach_time);
	T_ASSERT_EQ(3, pp.dmabuf_id);

	/* Without an id it is not a pool: -EINVAL, output untouched. */
	memset(&pp, 0xab, sizeof(pp));
	nlh = gpud_genl_msg_start(buf, FAM_NETDEV, GPUD_NETDEV_CMD_PAGE_POOL_GET, 1, 0, 0);
	mnl_attr_put_u32(nlh, GPUD_NETDEV_A_PAGE_POOL_IFINDEX, 5);
	T_ASSERT_EQ(-EINVAL, gpud_netdev_parse_pool(nlh, &pp));
	T_ASSERT_EQ(0xabababab, (uint32_t)pp.id);
}

static void test_extack(void)
{
	const struct nlmsghdr *req = (const void *)cap_bind_req;
	struct gpud_nl_ext ext;
	char path[64], s[256];
	uint32_t id = 0;

	/* Real veth answer: -EOPNOTSUPP, bad-attr only, no message text. */
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_nl_parse_ack((const void *)cap_bind_err, &ext));
	T_ASSERT_STREQ("", ext.msg);
	T_ASSERT(ext.has_off);
	T_ASSERT_EQ(20, ext.off);
	T_ASSERT(!ext.has_miss);
	T_ASSERT(gpud_nl_attr_path(req, ext.off, gpud_netdev_bind_attr_names, path,
				   sizeof(path)));
	T_ASSERT_STREQ(".ifindex", path);
	gpud_nl_ext_str(&ext, req, gpud_netdev_bind_attr_names, s, sizeof(s));
	T_ASSERT_STREQ("kernel gave no message, bad-attr: .ifindex", s);

	/* With message text (policy rejected ifindex 0). */
	T_ASSERT_EQ(-ERANGE, gpud_nl_parse_ack((const void *)cap_bind0_err, &ext));
	T_ASSERT_STREQ("integer out of range", ext.msg);
	T_ASSERT(ext.has_off);
	T_ASSERT_EQ(20, ext.off);
	gpud_nl_ext_str(&ext, (const void *)cap_bind0_req, gpud_netdev_bind_attr_names, s,
			sizeof(s));
	T_ASSERT_STREQ("kernel says \"integer out of range\", bad-attr: .ifindex", s);

	/* Paths into nests: 2nd queue nest at 56, its id at 60, type at 68. */
	T_ASSERT(gpud_nl_attr_path(req, 36, gpud_netdev_bind_attr_names, path, sizeof(path)));
	T_ASSERT_STREQ(".queues", path);
	T_ASSERT(gpud_nl_attr_path(req, 60, gpud_netdev_bind_attr_names, path, sizeof(path)));
	T_ASSERT_STREQ(".queues.id", path);
	T_ASSERT(gpud_nl_attr_path(req, 68, gpud_netdev_bind_attr_names, path, sizeof(path)));
	T_ASSERT_STREQ(".queues.type", path);
	T_ASSERT(gpud_nl_attr_path(req, 28, gpud_netdev_bind_attr_names, path, sizeof(path)));
	T_ASSERT_STREQ(".fd", path);
	/* Not the start of an attribute, or past the end. */
	T_ASSERT(!gpud_nl_attr_path(req, 22, gpud_netdev_bind_attr_names, path, sizeof(path)));
	T_ASSERT(!gpud_nl_attr_path(req, 400, gpud_netdev_bind_attr_names, path, sizeof(path)));
	T_ASSERT_STREQ("", path);

	/* No extack at all; offset without a request to name it. */
	memset(&ext, 0, sizeof(ext));
	ext.err = -EPERM;
	gpud_nl_ext_str(&ext, NULL, NULL, s, sizeof(s));
	T_ASSERT_STREQ("the kernel gave no extended ACK", s);
	ext.has_off = true;
	ext.off = 99;
	gpud_nl_ext_str(&ext, NULL, NULL, s, sizeof(s));
	T_ASSERT_STREQ("kernel gave no message, bad-attr: offset 99", s);

	/* A bind reply carries the id. */
	{
		uint8_t buf[64];
		struct nlmsghdr *nlh = gpud_genl_msg_start(buf, FAM_NETDEV,
							   GPUD_NETDEV_CMD_BIND_RX, 1, 0, 0);

		T_ASSERT_EQ(-EINVAL, gpud_netdev_parse_bind(nlh, &id));
		mnl_attr_put_u32(nlh, GPUD_NETDEV_A_DMABUF_ID, 42);
		T_ASSERT_OK(gpud_netdev_parse_bind(nlh, &id));
		T_ASSERT_EQ(42, id);
	}
}

static void test_explain(void)
{
	static const unsigned int q[] = { 1, 9 };
	struct gpud_queue_info qi[2] = {
		{ .ifindex = 4, .id = 0, .type = 0 },
		{ .ifindex = 4, .id = 1, .type = 0, .dmabuf_id = 3 },
	};
	char s[320], e[16];

	gpud_netdev_explain_bind(-EOPNOTSUPP, NULL, "veth0", q, 1, 1, NULL, 0, s, sizeof(s));
	T_ASSERT_STREQ("veth0 has no queue management API: devmem needs a NIC driver that "
		       "supports it (see docs/setup.md)", s);
	gpud_netdev_explain_bind(-ERANGE, NULL, "eth1", q, 2, 4, NULL, 0, s, sizeof(s));
	T_ASSERT_STREQ("queue 9 out of range, eth1 has 4 RX queues", s);
	gpud_netdev_explain_bind(-EEXIST, NULL, "eth1", q, 1, 2, qi, 2, s, sizeof(s));
	T_ASSERT_STREQ("queue 1 of eth1 is already bound (dma-buf id 3): free that binding "
		       "first (gpudctl status shows it)", s);
	gpud_netdev_explain_bind(-EPERM, NULL, "eth1", q, 1, 2, qi, 2, s, sizeof(s));
	T_ASSERT(strstr(s, "CAP_NET_ADMIN"));
	gpud_netdev_explain_bind(-EINVAL, NULL, "eth1", q, 1, 2, qi, 2, s, sizeof(s));
	T_ASSERT(strstr(s, "not a dma-buf") && strstr(s, "tcp-data-split on"));
	/* The kernel's own words win where it names the obstacle (6.14+). */
	gpud_netdev_explain_bind(-EINVAL, "tcp-data-split is disabled", "eth1", q, 1, 2, qi, 2,
				 s, sizeof(s));
	T_ASSERT_STREQ("header split is off on eth1: enable it (gpud_nic_set_header_split() "
		       "or ethtool -G eth1 tcp-data-split on)", s);
	gpud_netdev_explain_bind(-EEXIST, "unable to bind dmabuf to device with XDP program "
				 "attached", "eth1", q, 1, 2, qi, 2, s, sizeof(s));
	T_ASSERT(strstr(s, "an XDP program is attached to eth1"));
	T_ASSERT_STREQ("-EOPNOTSUPP", gpud_errno_name(-EOPNOTSUPP, e, sizeof(e)));
	T_ASSERT_STREQ("-E4095", gpud_errno_name(-4095, e, sizeof(e)));
}

static void test_channels(void)
{
	struct gpud_channels ch = { .rx = 3, .combined = 8 }, got;
	uint8_t buf[256];
	struct nlmsghdr *nlh;
	uint8_t hds;

	/* Only the counts asked for are sent; the header nest names the device. */
	nlh = gpud_ethtool_channels_set_msg(buf, sizeof(buf), 21, 0, 6, &ch, GPUD_CH_RX);
	T_ASSERT(nlh);
	T_ASSERT_OK(gpud_ethtool_parse_channels(nlh, &got));
	T_ASSERT_EQ(3, got.rx);
	T_ASSERT_EQ(0, got.combined);
	nlh = gpud_ethtool_channels_set_msg(buf, sizeof(buf), 21, 0, 6, &ch,
					    GPUD_CH_RX | GPUD_CH_COMBINED);
	T_ASSERT_OK(gpud_ethtool_parse_channels(nlh, &got));
	T_ASSERT_EQ(8, got.combined);
	T_ASSERT_EQ(3, got.rx);
	T_ASSERT(!gpud_ethtool_channels_set_msg(buf, 24, 21, 0, 6, &ch, GPUD_CH_RX));

	/* A rings reply without tcp-data-split means "driver does not say". */
	nlh = gpud_genl_msg_start(buf, 21, 0, 1, 0, 0);
	T_ASSERT_OK(gpud_ethtool_parse_rings_hds(nlh, &hds));
	T_ASSERT_EQ(0, hds);
	mnl_attr_put_u8(nlh, 11 /* ETHTOOL_A_RINGS_TCP_DATA_SPLIT */, 2);
	T_ASSERT_OK(gpud_ethtool_parse_rings_hds(nlh, &hds));
	T_ASSERT_EQ(2, hds);
}

int main(void)
{
	test_bind_request();
	test_family();
	test_queue_dump();
	test_queue_dump_612();
	test_pool_dump_612();
	test_pool_parse();
	test_extack();
	test_explain();
	test_channels();
	printf("nic_nl_unit: all checks passed\n");
	return T_EXIT_PASS;
}
