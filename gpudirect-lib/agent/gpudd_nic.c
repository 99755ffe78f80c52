// SPDX-License-Identifier: MIT
/*
 * One interface as gpudd owns it. The library's gpud_nic records every
 * original setting the first time the agent changes it, so freeing it at
 * stop puts the NIC back as the agent found it. Between, the RSS table is
 * recomputed whenever a queue is taken or given back, so no queue a client
 * holds ever receives RSS-spread (plain) traffic.
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

static int nic_open(struct gpudd *d, const char *ifname, struct gpudd_nic *n, char *why,
		    size_t len)
{
	const struct gpudd_pool_cfg *pc = pool_cfg(d, ifname);
	unsigned int first = 1, last;
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
			 "stays for plain traffic, so devmem needs at least 2 queues: raise the "
			 "channel count, or fix gpudd --pool)", ifname, nrxq, first, last);
		goto err_free;
	}
	/* No RSS table (veth, netdevsim without rxfh): nothing to keep off our queues. */
	if (gpud_nic_rss_size(n->nic, &n->rss_size))
		n->rss_size = 0;
	gpudd_log("%s: ifindex %d, %d RX queues, pool %u-%u, RSS table %u entries", ifname,
		  n->ifindex, nrxq, first, last, n->rss_size);
	return 0;

err_free:
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
