// SPDX-License-Identifier: MIT
/*
 * The ethtool settings 6.12 offers only through the SIOCETHTOOL ioctl:
 * n-tuple flow rules (ETHTOOL_SRXCLSRLINS/DEL) and the RSS indirection table
 * (ETHTOOL_GRXFHINDIR/SRXFHINDIR). The ioctl works on any socket of the
 * device's namespace; gpud_nic keeps one from open time so restoration works
 * from any thread, whatever namespace that thread is in.
 */
#include "nic/nic_internal.h"

#include <arpa/inet.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static int ethtool_ioctl(int fd, const char *ifname, void *cmd)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = cmd;
	return ioctl(fd, SIOCETHTOOL, &ifr) ? -errno : 0;
}

int gpud_ntuple_count(int fd, const char *ifname, uint32_t *rules, uint32_t *table,
		      bool *loc_any)
{
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_GRXCLSRLCNT };
	int err = ethtool_ioctl(fd, ifname, &nfc);

	if (err)
		return err;
	*rules = nfc.rule_cnt;
	*table = nfc.data & ~RX_CLS_LOC_SPECIAL;
	*loc_any = nfc.data & RX_CLS_LOC_SPECIAL;
	return 0;
}

/*
 * Drivers that cannot choose a location themselves need one from us: like
 * ethtool(8), take the highest free slot, so rules added by hand (which
 * people number from 0) keep theirs.
 */
static int ntuple_free_loc(int fd, const char *ifname, uint32_t nrules, uint32_t table,
			   uint32_t *loc)
{
	struct ethtool_rxnfc *nfc;
	uint8_t *used;
	int err;

	if (!table)
		return -ENOSPC;
	nfc = calloc(1, sizeof(*nfc) + (size_t)nrules * sizeof(uint32_t));
	used = calloc(table, 1);
	if (!nfc || !used) {
		err = -ENOMEM;
		goto out;
	}
	nfc->cmd = ETHTOOL_GRXCLSRLALL;
	nfc->data = table;
	nfc->rule_cnt = nrules;
	err = ethtool_ioctl(fd, ifname, nfc);
	if (err)
		goto out;
	for (uint32_t i = 0; i < nfc->rule_cnt && i < nrules; i++)
		if (nfc->rule_locs[i] < table)
			used[nfc->rule_locs[i]] = 1;
	err = -ENOSPC;
	for (uint32_t i = table; i-- > 0;) {
		if (!used[i]) {
			*loc = i;
			err = 0;
			break;
		}
	}
out:
	free(used);
	free(nfc);
	return err;
}

/* Fills the match of @flow into @fs; zero fields stay wildcards (mask 0). */
static int ntuple_spec(const struct gpud_flow *flow, unsigned int queue,
		       struct ethtool_rx_flow_spec *fs)
{
	static const uint8_t zero[16];

	fs->ring_cookie = queue;
	if (flow->family == AF_INET) {
		struct ethtool_tcpip4_spec *h = &fs->h_u.tcp_ip4_spec, *m = &fs->m_u.tcp_ip4_spec;

		fs->flow_type = TCP_V4_FLOW;
		memcpy(&h->ip4dst, flow->dst_addr, 4);
		memcpy(&h->ip4src, flow->src_addr, 4);
		m->ip4dst = memcmp(flow->dst_addr, zero, 4) ? UINT32_MAX : 0;
		m->ip4src = memcmp(flow->src_addr, zero, 4) ? UINT32_MAX : 0;
		h->pdst = flow->dst_port;
		h->psrc = flow->src_port;
		m->pdst = flow->dst_port ? UINT16_MAX : 0;
		m->psrc = flow->src_port ? UINT16_MAX : 0;
		return 0;
	}
	if (flow->family == AF_INET6) {
		struct ethtool_tcpip6_spec *h = &fs->h_u.tcp_ip6_spec, *m = &fs->m_u.tcp_ip6_spec;

		fs->flow_type = TCP_V6_FLOW;
		memcpy(h->ip6dst, flow->dst_addr, 16);
		memcpy(h->ip6src, flow->src_addr, 16);
		memset(m->ip6dst, memcmp(flow->dst_addr, zero, 16) ? 0xff : 0, 16);
		memset(m->ip6src, memcmp(flow->src_addr, zero, 16) ? 0xff : 0, 16);
		h->pdst = flow->dst_port;
		h->psrc = flow->src_port;
		m->pdst = flow->dst_port ? UINT16_MAX : 0;
		m->psrc = flow->src_port ? UINT16_MAX : 0;
		return 0;
	}
	return -EAFNOSUPPORT;
}

int gpud_ntuple_insert(int fd, const char *ifname, const struct gpud_flow *flow,
		       unsigned int queue, uint32_t *loc)
{
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_SRXCLSRLINS };
	uint32_t nrules, table;
	bool loc_any;
	int err;

	err = ntuple_spec(flow, queue, &nfc.fs);
	if (err)
		return err;
	err = gpud_ntuple_count(fd, ifname, &nrules, &table, &loc_any);
	if (err)
		return err;
	if (loc_any) {
		nfc.fs.location = RX_CLS_LOC_ANY;
	} else {
		err = ntuple_free_loc(fd, ifname, nrules, table, &nfc.fs.location);
		if (err)
			return err;
	}
	err = ethtool_ioctl(fd, ifname, &nfc);
	if (err)
		return err;
	*loc = nfc.fs.location;
	return 0;
}

int gpud_ntuple_delete(int fd, const char *ifname, uint32_t loc)
{
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_SRXCLSRLDEL };

	nfc.fs.location = loc;
	return ethtool_ioctl(fd, ifname, &nfc);
}

int gpud_rss_rings(int fd, const char *ifname, uint32_t *rings)
{
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_GRXRINGS };
	int err = ethtool_ioctl(fd, ifname, &nfc);

	if (err)
		return err;
	*rings = (uint32_t)nfc.data;
	return 0;
}

int gpud_rss_get(int fd, const char *ifname, uint32_t **table, uint32_t *size)
{
	struct ethtool_rxfh_indir probe = { .cmd = ETHTOOL_GRXFHINDIR, .size = 0 };
	struct ethtool_rxfh_indir *ind;
	uint32_t *t;
	int err;

	/* Size 0 asks only for the table's size. */
	err = ethtool_ioctl(fd, ifname, &probe);
	if (err)
		return err;
	if (!probe.size)
		return -EOPNOTSUPP;
	ind = calloc(1, sizeof(*ind) + probe.size * sizeof(uint32_t));
	t = malloc(probe.size * sizeof(uint32_t));
	if (!ind || !t) {
		err = -ENOMEM;
		goto err_free;
	}
	ind->cmd = ETHTOOL_GRXFHINDIR;
	ind->size = probe.size;
	err = ethtool_ioctl(fd, ifname, ind);
	if (err)
		goto err_free;
	memcpy(t, ind->ring_index, probe.size * sizeof(uint32_t));
	free(ind);
	*table = t;
	*size = probe.size;
	return 0;

err_free:
	free(t);
	free(ind);
	return err;
}

int gpud_rss_set(int fd, const char *ifname, const uint32_t *table, uint32_t size)
{
	struct ethtool_rxfh_indir *ind;
	int err;

	ind = calloc(1, sizeof(*ind) + (size_t)size * sizeof(uint32_t));
	if (!ind)
		return -ENOMEM;
	ind->cmd = ETHTOOL_SRXFHINDIR;
	ind->size = size;
	if (size)
		memcpy(ind->ring_index, table, size * sizeof(uint32_t));
	err = ethtool_ioctl(fd, ifname, ind);
	free(ind);
	return err;
}
