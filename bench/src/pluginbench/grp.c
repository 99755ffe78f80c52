// SPDX-License-Identifier: MIT
/*
 * The ranks' control star: rank 0 (the parent) holds an AF_UNIX socketpair
 * to every other rank, made before the forks, as NCCL ranks hold their
 * bootstrap network. Everything goes through rank 0: it reads each rank's
 * part, then writes the whole to each. Parts are small (listen handles,
 * ports, times), so the other ranks' writes never block on a full buffer.
 */
#include "coll.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int pb_grp_allgather(const struct pb_grp *g, const void *mine, void *all, size_t len)
{
	uint8_t *a = all;
	int err = 0;

	if (g->rank) {
		err = pb_ctl_write(g->fd[0], mine, len);
		return err ? err : pb_ctl_read(g->fd[0], all, len * (size_t)g->nranks);
	}
	memcpy(a, mine, len);
	for (int i = 1; i < g->nranks && !err; i++)
		err = pb_ctl_read(g->fd[i], a + (size_t)i * len, len);
	for (int i = 1; i < g->nranks && !err; i++)
		err = pb_ctl_write(g->fd[i], all, len * (size_t)g->nranks);
	return err;
}

int pb_grp_barrier(const struct pb_grp *g)
{
	char c = 'b', all[PB_MAX_RANKS];

	return pb_grp_allgather(g, &c, all, 1);
}

int pb_grp_agree(const struct pb_grp *g, int err)
{
	int32_t mine = err, all[PB_MAX_RANKS];

	if (pb_grp_allgather(g, &mine, all, sizeof(mine)))
		return -EPIPE;
	if (err)
		return err;
	for (int i = 0; i < g->nranks; i++)
		if (all[i])
			return -ECANCELED;
	return 0;
}

int pb_grp_bcast(const struct pb_grp *g, void *buf, size_t len)
{
	int err = 0;

	if (g->rank)
		return pb_ctl_read(g->fd[0], buf, len);
	for (int i = 1; i < g->nranks && !err; i++)
		err = pb_ctl_write(g->fd[i], buf, len);
	return err;
}
