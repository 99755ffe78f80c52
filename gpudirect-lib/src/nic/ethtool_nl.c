// SPDX-License-Identifier: MIT
/*
 * ethtool over generic netlink: ring parameters (for tcp-data-split, i.e.
 * header split, which devmem needs: payload must land in its own buffers)
 * and channel counts. Both have netlink get and set in 6.12; n-tuple and RSS
 * indirection do not, and live in ethtool_ioctl.c.
 */
#include "nic/nic_internal.h"

#include <linux/ethtool_netlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

/* The values are ABI; Debian 12's 6.1 header already has them (checked). */
_Static_assert(ETHTOOL_A_RINGS_TCP_DATA_SPLIT == 11, "ETHTOOL_A_RINGS_TCP_DATA_SPLIT is 11");
_Static_assert(ETHTOOL_TCP_DATA_SPLIT_ENABLED == 2, "ETHTOOL_TCP_DATA_SPLIT_ENABLED is 2");
_Static_assert(ETHTOOL_A_CHANNELS_COMBINED_COUNT == 9, "ETHTOOL_A_CHANNELS_COMBINED_COUNT is 9");
_Static_assert(ETHTOOL_A_RINGS_HEADER == 1 && ETHTOOL_A_CHANNELS_HEADER == 1,
	       "every ethtool request carries its header nest as attribute 1");

static const struct gpud_nl_attr_name header_names[] = {
	{ ETHTOOL_A_HEADER_DEV_INDEX, "dev-index", NULL },
	{ ETHTOOL_A_HEADER_DEV_NAME, "dev-name", NULL },
	{ ETHTOOL_A_HEADER_FLAGS, "flags", NULL },
	{ 0, NULL, NULL },
};

static const struct gpud_nl_attr_name rings_names[] = {
	{ ETHTOOL_A_RINGS_HEADER, "header", header_names },
	{ ETHTOOL_A_RINGS_TCP_DATA_SPLIT, "tcp-data-split", NULL },
	{ 0, NULL, NULL },
};

static const struct gpud_nl_attr_name channels_names[] = {
	{ ETHTOOL_A_CHANNELS_HEADER, "header", header_names },
	{ ETHTOOL_A_CHANNELS_RX_COUNT, "rx-count", NULL },
	{ ETHTOOL_A_CHANNELS_TX_COUNT, "tx-count", NULL },
	{ ETHTOOL_A_CHANNELS_OTHER_COUNT, "other-count", NULL },
	{ ETHTOOL_A_CHANNELS_COMBINED_COUNT, "combined-count", NULL },
	{ 0, NULL, NULL },
};

int gpud_ethtool_open(struct gpud_nl **out)
{
	int err = gpud_nl_open(ETHTOOL_GENL_NAME, out);

	if (err == -ENOENT)
		return gpud_err(-EOPNOTSUPP, "the kernel has no ethtool netlink family "
				"(CONFIG_ETHTOOL_NETLINK)");
	if (err)
		return gpud_err(err, "ethtool: cannot open a generic netlink socket: %s",
				strerror(-err));
	return 0;
}

/* Starts an ethtool request for @ifindex (header nest is attribute 1). */
static struct nlmsghdr *ethtool_msg(void *buf, size_t len, uint16_t family, uint32_t seq,
				    uint8_t cmd, uint16_t flags, int ifindex)
{
	struct nlmsghdr *nlh;
	struct nlattr *hdr;

	if (len < MNL_NLMSG_HDRLEN + GENL_HDRLEN)
		return NULL;
	nlh = gpud_genl_msg_start(buf, family, cmd, ETHTOOL_GENL_VERSION, flags, seq);
	hdr = mnl_attr_nest_start_check(nlh, len, 1);
	if (!hdr || !mnl_attr_put_u32_check(nlh, len, ETHTOOL_A_HEADER_DEV_INDEX, ifindex))
		return NULL;
	mnl_attr_nest_end(nlh, hdr);
	return nlh;
}

/* Error from an ethtool request, with the kernel's extack and a hint. */
static int ethtool_fail(int err, const struct gpud_nl_ext *ext, const struct nlmsghdr *req,
			const struct gpud_nl_attr_name *names, int ifindex, const char *what)
{
	char ifname[IF_NAMESIZE] = "", kext[320], ename[16];
	const char *hint = "";

	if (!if_indextoname(ifindex, ifname))
		snprintf(ifname, sizeof(ifname), "ifindex %d", ifindex);
	if (err == -EPERM)
		hint = ": changing NIC settings needs CAP_NET_ADMIN (run as root)";
	else if (err == -EOPNOTSUPP)
		hint = ": the driver does not support it";
	gpud_nl_ext_str(ext, req, names, kext, sizeof(kext));
	return gpud_err(err, "%s %s: %s%s [%s]", what, ifname,
			gpud_errno_name(err, ename, sizeof(ename)), hint, kext);
}

int gpud_ethtool_parse_rings_hds(const struct nlmsghdr *nlh, uint8_t *hds)
{
	const struct nlattr *a;

	*hds = ETHTOOL_TCP_DATA_SPLIT_UNKNOWN;
	/* 6.12 leaves the attribute out when the driver reports "unknown". */
	mnl_attr_for_each(a, nlh, GENL_HDRLEN) {
		if (mnl_attr_get_type(a) == ETHTOOL_A_RINGS_TCP_DATA_SPLIT &&
		    mnl_attr_validate(a, MNL_TYPE_U8) == 0)
			*hds = mnl_attr_get_u8(a);
	}
	return 0;
}

static int rings_cb(const struct nlmsghdr *nlh, void *data)
{
	gpud_ethtool_parse_rings_hds(nlh, data);
	return MNL_CB_OK;
}

int gpud_ethtool_get_hds(struct gpud_nl *nl, int ifindex, uint8_t *hds)
{
	struct gpud_nl_ext ext;
	struct nlmsghdr *req;
	uint8_t v = 0;
	char buf[128];
	int err;

	req = ethtool_msg(buf, sizeof(buf), nl->fam.id, 0, ETHTOOL_MSG_RINGS_GET, NLM_F_ACK,
			  ifindex);
	err = gpud_nl_talk(nl, req, rings_cb, &v, &ext);
	/* No get_ringparam at all (veth): quietly "unsupported", not an error. */
	if (err == -EOPNOTSUPP)
		return err;
	if (err)
		return ethtool_fail(err, &ext, req, rings_names, ifindex, "rings get");
	*hds = v;
	return 0;
}

int gpud_ethtool_set_hds(struct gpud_nl *nl, int ifindex, uint8_t hds)
{
	struct gpud_nl_ext ext;
	struct nlmsghdr *req;
	char buf[128];
	int err;

	req = ethtool_msg(buf, sizeof(buf), nl->fam.id, 0, ETHTOOL_MSG_RINGS_SET, NLM_F_ACK,
			  ifindex);
	mnl_attr_put_u8(req, ETHTOOL_A_RINGS_TCP_DATA_SPLIT, hds);
	err = gpud_nl_talk(nl, req, NULL, NULL, &ext);
	if (err)
		return ethtool_fail(err, &ext, req, rings_names, ifindex,
				    "setting tcp-data-split on");
	return 0;
}

/* Channel attributes and where each lives in struct gpud_channels. */
static const struct {
	uint16_t type;
	unsigned int bit;	/* GPUD_CH_* for the settable counts, else 0 */
	size_t off;
} channel_fields[] = {
	{ ETHTOOL_A_CHANNELS_RX_MAX, 0, offsetof(struct gpud_channels, max_rx) },
	{ ETHTOOL_A_CHANNELS_TX_MAX, 0, offsetof(struct gpud_channels, max_tx) },
	{ ETHTOOL_A_CHANNELS_OTHER_MAX, 0, offsetof(struct gpud_channels, max_other) },
	{ ETHTOOL_A_CHANNELS_COMBINED_MAX, 0, offsetof(struct gpud_channels, max_combined) },
	{ ETHTOOL_A_CHANNELS_RX_COUNT, GPUD_CH_RX, offsetof(struct gpud_channels, rx) },
	{ ETHTOOL_A_CHANNELS_TX_COUNT, GPUD_CH_TX, offsetof(struct gpud_channels, tx) },
	{ ETHTOOL_A_CHANNELS_OTHER_COUNT, GPUD_CH_OTHER, offsetof(struct gpud_channels, other) },
	{ ETHTOOL_A_CHANNELS_COMBINED_COUNT, GPUD_CH_COMBINED,
	  offsetof(struct gpud_channels, combined) },
};

static uint32_t *channel_field(struct gpud_channels *ch, size_t i)
{
	return (uint32_t *)((char *)ch + channel_fields[i].off);
}

int gpud_ethtool_parse_channels(const struct nlmsghdr *nlh, struct gpud_channels *ch)
{
	struct gpud_channels v = { 0 };
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, GENL_HDRLEN) {
		if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
			continue;
		for (size_t i = 0; i < GPUD_ARRAY_SIZE(channel_fields); i++)
			if (channel_fields[i].type == mnl_attr_get_type(a))
				*channel_field(&v, i) = mnl_attr_get_u32(a);
	}
	*ch = v;
	return 0;
}

static int channels_cb(const struct nlmsghdr *nlh, void *data)
{
	gpud_ethtool_parse_channels(nlh, data);
	return MNL_CB_OK;
}

int gpud_ethtool_get_channels(struct gpud_nl *nl, int ifindex, struct gpud_channels *ch)
{
	struct gpud_channels v = { 0 };
	struct gpud_nl_ext ext;
	struct nlmsghdr *req;
	char buf[128];
	int err;

	req = ethtool_msg(buf, sizeof(buf), nl->fam.id, 0, ETHTOOL_MSG_CHANNELS_GET, NLM_F_ACK,
			  ifindex);
	err = gpud_nl_talk(nl, req, channels_cb, &v, &ext);
	if (err)
		return ethtool_fail(err, &ext, req, channels_names, ifindex, "channels get");
	*ch = v;
	return 0;
}

struct nlmsghdr *gpud_ethtool_channels_set_msg(void *buf, size_t len, uint16_t family,
					       uint32_t seq, int ifindex,
					       const struct gpud_channels *ch,
					       unsigned int which)
{
	struct gpud_channels v = *ch;
	struct nlmsghdr *nlh;

	nlh = ethtool_msg(buf, len, family, seq, ETHTOOL_MSG_CHANNELS_SET, NLM_F_ACK, ifindex);
	for (size_t i = 0; nlh && i < GPUD_ARRAY_SIZE(channel_fields); i++) {
		if (!(which & channel_fields[i].bit))
			continue;
		if (!mnl_attr_put_u32_check(nlh, len, channel_fields[i].type,
					    *channel_field(&v, i)))
			return NULL;
	}
	return nlh;
}

int gpud_ethtool_set_channels(struct gpud_nl *nl, int ifindex, const struct gpud_channels *ch,
			      unsigned int which)
{
	struct gpud_nl_ext ext;
	struct nlmsghdr *req;
	char buf[256];
	int err;

	req = gpud_ethtool_channels_set_msg(buf, sizeof(buf), nl->fam.id, 0, ifindex, ch,
					    which);
	err = gpud_nl_talk(nl, req, NULL, NULL, &ext);
	if (err)
		return ethtool_fail(err, &ext, req, channels_names, ifindex, "channels set on");
	return 0;
}
