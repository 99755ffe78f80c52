// SPDX-License-Identifier: MIT
/*
 * The ring's transport through the plugin, as NCCL's net proxy uses it: per
 * channel one listen comm (its handle goes to rank - 1 over the bootstrap),
 * a send comm to rank + 1 and a receive comm from rank - 1, connect and
 * accept polled in one loop; each channel's FIFO registered once with
 * regMr; isend/irecv of one slot each (tag 0; NULL request = retry later).
 */
#include "coll.h"
#include "plugin_lib.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pb_lplugin {
	struct pb_plugin_lib lib;
	void *lcomm[PB_MAX_CHANNELS];
	void *scomm[PB_MAX_CHANNELS], *rcomm[PB_MAX_CHANNELS];
	void *smh[PB_MAX_CHANNELS], *rmh[PB_MAX_CHANNELS];
};

static int connect_all(struct pb_link *l, struct pb_lplugin *p, char (*next)[NCCL_NET_HANDLE_MAXSIZE])
{
	ncclNetDeviceHandle_v11_t *dh = NULL;
	double end = pb_now() + PB_TIMEOUT_S;
	unsigned int up;

	do {
		up = 0;
		for (unsigned int ch = 0; ch < l->nch; ch++) {
			if (!p->scomm[ch] && p->lib.net->connect(p->lib.ctx, 0, next[ch], &p->scomm[ch],
								 &dh) != ncclSuccess)
				return pb_plugin_why(l->err, sizeof(l->err), -ECONNREFUSED,
						     "channel %u: connect failed", ch);
			if (!p->rcomm[ch] && p->lib.net->accept(p->lcomm[ch], &p->rcomm[ch], &dh) !=
						     ncclSuccess)
				return pb_plugin_why(l->err, sizeof(l->err), -ECONNREFUSED,
						     "channel %u: accept failed", ch);
			up += !!p->scomm[ch] + !!p->rcomm[ch];
		}
		if (up < 2 * l->nch && pb_now() > end)
			return pb_plugin_why(l->err, sizeof(l->err), -ETIMEDOUT,
					     "%u of %u comms up after %.0f s", up, 2 * l->nch,
					     PB_TIMEOUT_S);
		if (up < 2 * l->nch)
			usleep(100);
	} while (up < 2 * l->nch);
	return 0;
}

static int listen_all(struct pb_link *l, struct pb_lplugin *p, char (*mine)[NCCL_NET_HANDLE_MAXSIZE])
{
	int err = pb_plugin_lib_open(&p->lib, l->o, l->ifname, l->err, sizeof(l->err));

	for (unsigned int ch = 0; !err && ch < l->nch; ch++)
		if (p->lib.net->listen(p->lib.ctx, 0, mine[ch], &p->lcomm[ch]) != ncclSuccess)
			err = pb_plugin_why(l->err, sizeof(l->err), -EIO, "listen on dev 0 failed");
	return err;
}

static int register_fifos(struct pb_link *l, struct pb_lplugin *p)
{
	size_t len = PB_FIFO_STEPS * l->slot_bytes;

	for (unsigned int ch = 0; ch < l->nch; ch++) {
		if (p->lib.net->regMr(p->scomm[ch], l->sfifo[ch], len, NCCL_PTR_HOST, &p->smh[ch]) ||
		    p->lib.net->regMr(p->rcomm[ch], l->rfifo[ch], len, NCCL_PTR_HOST, &p->rmh[ch]))
			return pb_plugin_why(l->err, sizeof(l->err), -EIO,
					     "channel %u: regMr of a FIFO failed", ch);
	}
	return 0;
}

static int lplugin_open(struct pb_link *l)
{
	char (*all)[PB_MAX_CHANNELS][NCCL_NET_HANDLE_MAXSIZE];
	char mine[PB_MAX_CHANNELS][NCCL_NET_HANDLE_MAXSIZE] = { { 0 } };
	int next = (l->g->rank + 1) % l->g->nranks;
	ncclNetProperties_v11_t props;
	struct pb_lplugin *p;
	int err;

	p = calloc(1, sizeof(*p));
	all = calloc(PB_MAX_RANKS, sizeof(*all));
	if (!p || !all) {
		free(p);
		free(all);
		return -ENOMEM;
	}
	l->priv = p;
	/* agree after each step that could leave another rank waiting */
	err = pb_grp_agree(l->g, listen_all(l, p, mine));
	if (!err)
		err = pb_grp_allgather(l->g, mine, all, sizeof(mine));
	if (!err)
		err = pb_grp_agree(l->g, connect_all(l, p, all[next]));
	if (!err)
		err = pb_grp_agree(l->g, register_fifos(l, p));
	free(all);
	if (err)
		return err;
	l->conns = l->nch * (l->o->nsocks + 1);
	snprintf(l->mode, sizeof(l->mode), "%s", pb_plugin_recv_mode());
	if (p->lib.net->getProperties(0, &props) == ncclSuccess)
		snprintf(l->desc, sizeof(l->desc),
			 "%s v11 on %s, %u channels x (%u data sockets + 1 control) per direction",
			 l->o->plugin_path, props.name, l->nch, l->o->nsocks);
	return 0;
}

static int lplugin_isend(struct pb_link *l, unsigned int ch, unsigned int slot, size_t len,
			 void **req)
{
	struct pb_lplugin *p = l->priv;

	*req = NULL;
	if (p->lib.net->isend(p->scomm[ch], l->sfifo[ch] + slot * l->slot_bytes, len, 0,
			      p->smh[ch], NULL, req) != ncclSuccess)
		return pb_plugin_why(l->err, sizeof(l->err), -EIO, "channel %u: isend of %zu bytes failed",
				     ch, len);
	return *req ? 0 : -EAGAIN;
}

static int lplugin_irecv(struct pb_link *l, unsigned int ch, unsigned int slot, size_t len,
			 void **req)
{
	struct pb_lplugin *p = l->priv;
	void *data = l->rfifo[ch] + slot * l->slot_bytes, *ph = NULL;
	size_t size = len;
	int tag = 0;

	*req = NULL;
	if (p->lib.net->irecv(p->rcomm[ch], 1, &data, &size, &tag, &p->rmh[ch], &ph, req) !=
	    ncclSuccess)
		return pb_plugin_why(l->err, sizeof(l->err), -EIO, "channel %u: irecv of %zu bytes failed",
				     ch, len);
	return *req ? 0 : -EAGAIN;
}

static int lplugin_test(struct pb_link *l, unsigned int ch, void *req, int *done, size_t *got)
{
	struct pb_lplugin *p = l->priv;
	int size = 0;

	*done = 0;
	if (p->lib.net->test(req, done, &size) != ncclSuccess)
		return pb_plugin_why(l->err, sizeof(l->err), -EIO, "channel %u: test failed", ch);
	*got = size > 0 ? (size_t)size : 0;
	return 0;
}

static void lplugin_close(struct pb_link *l)
{
	struct pb_lplugin *p = l->priv;

	if (!p)
		return;
	for (unsigned int ch = 0; p->lib.net && ch < PB_MAX_CHANNELS; ch++) {
		if (p->smh[ch])
			p->lib.net->deregMr(p->scomm[ch], p->smh[ch]);
		if (p->rmh[ch])
			p->lib.net->deregMr(p->rcomm[ch], p->rmh[ch]);
		if (p->scomm[ch])
			p->lib.net->closeSend(p->scomm[ch]);
		if (p->rcomm[ch])
			p->lib.net->closeRecv(p->rcomm[ch]);
		if (p->lcomm[ch])
			p->lib.net->closeListen(p->lcomm[ch]);
	}
	pb_plugin_lib_close(&p->lib);
	free(p);
	l->priv = NULL;
}

const struct pb_link_ops pb_link_plugin_ops = {
	.open = lplugin_open,
	.isend = lplugin_isend,
	.irecv = lplugin_irecv,
	.test = lplugin_test,
	.close = lplugin_close,
};
