// SPDX-License-Identifier: MIT
/*
 * One interface as gpudd owns it. The library's gpud_nic records every
 * original setting the first time the agent changes it, so freeing it at
 * stop puts the NIC back as the agent found it. The RX channel count is
 * raised when the pool needs more queues than the interface has. Between,
 * the RSS table is recomputed whenever a queue is taken or given back (and
 * right after the channel count changed), so no queue a client holds ever
 * receives RSS-spread (plain) traffic.
 */
#include "gpudd.h"

#include "nic/nic_internal.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct gpudd_pool_cfg *pool_cfg(const struct gpudd *d, const char *ifname)
{
	for (int i = 0; i < d->cfg.npools; i++)
		if (!strcmp(d->cfg.pools[i].ifname, ifname) || !strcmp(d->cfg.pools[i].ifname, "*"))
			return &d->cfg.pools[i];
	return NULL;
}

/* --channels IF:N for @ifname, 0 when none names it. */
static unsigned int chan_cfg(const struct gpudd *d, const char *ifname)
{
	for (int i = 0; i < d->cfg.nchans; i++)
		if (!strcmp(d->cfg.chans[i].ifname, ifname))
			return d->cfg.chans[i].count;
	return 0;
}

/*
 * The RX channel count is the agent's like the rest of the NIC: when the
 * pool reaches past the queues the interface has, it is raised to what the
 * pool needs (or set to --channels). The library records the original and
 * journals it, so gpudd's stop puts it back, and after a kill -9 the next
 * gpudd does. *nrxq: the RX queue count, updated.
 */
static int nic_channels(struct gpudd *d, struct gpudd_nic *n, unsigned int first,
			unsigned int last, int *nrxq, char *why, size_t len)
{
	unsigned int cfg = chan_cfg(d, n->ifname), want = cfg, need = last + 1, count, max;
	unsigned int other;
	int err;

	if (!want && need <= (unsigned int)*nrxq)
		return 0;
	err = gpud_nic_rx_channels(n->nic, &count, &max);
	if (err) {
		snprintf(why, len, "%s has %d RX queue(s) and its pool %u-%u needs %u, but its "
			 "channel count cannot be read: %s", n->ifname, *nrxq, first, last, need,
			 gpud_errmsg());
		return err;
	}
	/* RX queues outside the count we change (a driver with both rx and combined) */
	other = (unsigned int)*nrxq > count ? (unsigned int)*nrxq - count : 0;
	if (!want)
		want = need - other;
	if (want > max && cfg) {
		snprintf(why, len, "%s: --channels %s:%u, but the driver allows at most %u RX "
			 "channels: lower gpudd --channels", n->ifname, n->ifname, want, max);
		return -ERANGE;
	}
	if (want > max) {
		snprintf(why, len, "%s: the pool %u-%u needs %u RX channels, but the driver "
			 "allows at most %u: end the pool at queue %u (gpudd --pool %s:%u-%u)",
			 n->ifname, first, last, want, max, max + other - 1, n->ifname,
			 first < max + other - 1 ? first : 1, max + other - 1);
		return -ERANGE;
	}
	if (want + other < need) {
		snprintf(why, len, "%s: --channels %u gives %u RX queues, but the pool %u-%u "
			 "needs %u: raise --channels or lower the pool's last queue", n->ifname,
			 want, want + other, first, last, need);
		return -ERANGE;
	}
	if (want == count)
		return 0;
	err = gpud_nic_set_rx_channels(n->nic, want);
	if (err) {
		snprintf(why, len, "%s: cannot set %u RX channels (pool %u-%u): %s", n->ifname,
			 want, first, last, gpud_errmsg());
		return err;
	}
	n->ch_set = n->ch_known = true;
	n->ch_orig = count;
	n->ch_count = want;
	gpudd_log("%s: RX channels %u -> %u for the pool %u-%u (driver maximum %u; put back "
		  "when gpudd stops)", n->ifname, count, want, first, last, max);
	*nrxq = gpud_nic_rx_queues(n->nic);
	if (*nrxq < 0) {
		snprintf(why, len, "%s: cannot count RX queues: %s", n->ifname, gpud_errmsg());
		return *nrxq;
	}
	return 0;
}

static int nic_open(struct gpudd *d, const char *ifname, struct gpudd_nic *n, char *why,
		    size_t len)
{
	const struct gpudd_pool_cfg *pc = pool_cfg(d, ifname);
	unsigned int first = 1, last, chmax;
	int nrxq, err;

	snprintf(n->ifname, sizeof(n->ifname), "%s", ifname);
	err = gpud_nic_open(ifname, &n->nic);
	if (err) {
		snprintf(why, len, "%s", gpud_errmsg());
		return err;
	}
	n->ifindex = gpud_nic_ifindex(n->nic);
	nrxq = gpud_nic_rx_queues(n->nic);
	if (nrxq < 0) {
		snprintf(why, len, "%s: cannot count RX queues: %s", ifname, gpud_errmsg());
		err = nrxq;
		goto err_free;
	}
	if (pc && pc->last) {
		err = nic_channels(d, n, pc->first, pc->last, &nrxq, why, len);
		if (err)
			goto err_free;
	} else if (chan_cfg(d, ifname)) {
		err = nic_channels(d, n, 1, 1, &nrxq, why, len);
		if (err)
			goto err_free;
	}
	/* For the status: the count as found, when we left it alone. */
	if (!n->ch_set && !gpud_nic_rx_channels(n->nic, &n->ch_count, &chmax)) {
		n->ch_orig = n->ch_count;
		n->ch_known = true;
	}
	if (nrxq > GPUDD_MAX_QUEUES)
		nrxq = GPUDD_MAX_QUEUES;
	last = (unsigned int)nrxq - 1;
	if (pc) {
		first = pc->first;
		last = pc->last ? pc->last : last;
	}
	err = gpudd_pool_init(&n->pool, (unsigned int)nrxq, first, last);
	if (err) {
		snprintf(why, len, "%s has %d RX queue(s); its pool %u-%u does not fit (queue 0 "
			 "stays for plain traffic, so devmem needs at least 2 queues: gpudd "
			 "--channels %s:N raises the count, or fix gpudd --pool)", ifname, nrxq,
			 first, last, ifname);
		goto err_free;
	}
	/* No RSS table (veth, netdevsim without rxfh): nothing to keep off our queues. */
	if (gpud_nic_rss_size(n->nic, &n->rss_size))
		n->rss_size = 0;
	/* New queues joined RSS with the count: spread as the pool is now, at once. */
	if (n->ch_set) {
		err = gpudd_nic_rss_update(n, why, len);
		if (err)
			goto err_free;
	}
	gpudd_log("%s: ifindex %d, %d RX queues, pool %u-%u, RSS table %u entries", ifname,
		  n->ifindex, nrxq, first, last, n->rss_size);
	return 0;

err_free:
	/* Puts back a channel count already changed. */
	gpud_nic_free(n->nic);
	n->nic = NULL;
	return err;
}

int gpudd_nic_get(struct gpudd *d, const char *ifname, struct gpudd_nic **out, char *why,
		  size_t len)
{
	struct gpudd_nic *n;
	int err;

	for (n = d->nics; n; n = n->next) {
		if (!strcmp(n->ifname, ifname)) {
			/* Renamed or replaced since: the old object acts on a gone device. */
			if ((int)if_nametoindex(ifname) == n->ifindex) {
				*out = n;
				return 0;
			}
		}
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	err = nic_open(d, ifname, n, why, len);
	if (err) {
		free(n);
		return err;
	}
	n->next = d->nics;
	d->nics = n;
	*out = n;
	return 0;
}

int gpudd_nic_rss_update(struct gpudd_nic *n, char *why, size_t len)
{
	uint32_t *t;
	int err;

	if (!n->rss_size)
		return 0;
	t = calloc(n->rss_size, sizeof(*t));
	if (!t) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	err = gpudd_rss_table(&n->pool, t, n->rss_size);
	if (err >= 0)
		err = gpud_nic_rss_set_table(n->nic, t, n->rss_size);
	if (err < 0)
		snprintf(why, len, "%s: cannot keep RSS off the held queues: %s", n->ifname,
			 err == -ENOSPC ? "every queue is held" : gpud_errmsg());
	else
		n->rss_touched = true;
	free(t);
	return err < 0 ? err : 0;
}

int gpudd_nic_hds_on(struct gpudd_nic *n, char *why, size_t len)
{
	int err;

	if (n->hds_on)
		return 0;
	err = gpud_nic_set_header_split(n->nic, true);
	if (err) {
		snprintf(why, len, "%s", gpud_errmsg());
		return err;
	}
	n->hds_on = true;
	return 0;
}

void gpudd_nics_free(struct gpudd *d)
{
	while (d->nics) {
		struct gpudd_nic *n = d->nics;

		d->nics = n->next;
		/* Rules, RSS, channels, header split: back to what we found. */
		gpud_nic_free(n->nic);
		gpudd_log("%s: restored", n->ifname);
		free(n);
	}
}
