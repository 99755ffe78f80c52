// SPDX-License-Identifier: MIT
/*
 * The device table: interfaces first (api/props.c's dm_devs_scan), then the
 * fused devices makeVDevice adds. api/net.c fills it (dm_global_init under its
 * init lock, makeVDevice); every layer reads it by index.
 */
#include "base/base.h"

struct dm_dev dm_devs[DM_MAX_DEVS + DM_MAX_VDEVS];
int dm_devs_n;		/* all of them: NCCL asks devices() again after makeVDevice */
int dm_devs_nphys;	/* interfaces */

int dm_ndevs(void)
{
	return dm_devs_n;
}

const struct dm_dev *dm_dev_get(int dev)
{
	return &dm_devs[dev];
}

const struct dm_dev *dm_dev_member(int dev, int i)
{
	const struct dm_dev *d = &dm_devs[dev];

	return &dm_devs[d->members[i % d->nmembers]];
}
