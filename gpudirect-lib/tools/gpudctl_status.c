// SPDX-License-Identifier: MIT
/* gpudctl status: bindings, queues and page pools from the netdev family. */
#include "gpudctl.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

struct snapshot {
	struct gpud_queue_info *q;
	int nq;
	struct gpud_page_pool_info *pp;
	int npp;
};

/* Dumps twice: once for the count, once into a buffer with some slack. */
static int snap_take(int ifindex, struct snapshot *s)
{
	int n;

	n = gpud_queues_get(ifindex, NULL, 0);
	if (n < 0)
		return n;
	s->q = calloc((size_t)n + 16, sizeof(*s->q));
	if (!s->q)
		return -ENOMEM;
	n = gpud_queues_get(ifindex, s->q, (size_t)n + 16);
	if (n < 0)
		return n;
	s->nq = n;
	n = gpud_page_pools_get(ifindex, NULL, 0);
	if (n < 0)
		return n;
	s->pp = calloc((size_t)n + 16, sizeof(*s->pp));
	if (!s->pp)
		return -ENOMEM;
	n = gpud_page_pools_get(ifindex, s->pp, (size_t)n + 16);
	if (n < 0)
		return n;
	s->npp = n;
	return 0;
}

static const char *ifname_of(int ifindex, char *buf)
{
	if (!if_indextoname((unsigned int)ifindex, buf))
		snprintf(buf, IF_NAMESIZE, "if%d", ifindex);
	return buf;
}

static void pool_text(const struct gpud_page_pool_info *p)
{
	printf("  page pool %u: napi %u, inflight %llu (%llu bytes)", p->id, p->napi_id,
	       (unsigned long long)p->inflight, (unsigned long long)p->inflight_mem);
	if (p->dmabuf_id)
		printf(", dma-buf %u", p->dmabuf_id);
	if (p->detach_time)
		printf(", detached (at %llu)", (unsigned long long)p->detach_time);
	putchar('\n');
}

static void pool_json(const struct gpud_page_pool_info *p, bool first)
{
	printf("%s{\"id\":%u,\"ifindex\":%d,\"napi_id\":%u,\"inflight\":%llu,"
	       "\"inflight_mem\":%llu,\"dmabuf_id\":%u,\"detach_time\":%llu}",
	       first ? "" : ",", p->id, p->ifindex, p->napi_id,
	       (unsigned long long)p->inflight, (unsigned long long)p->inflight_mem,
	       p->dmabuf_id, (unsigned long long)p->detach_time);
}

/* Distinct dma-buf ids bound to queues of @ifindex, each with its queues. */
static void bindings_print(const struct snapshot *s, int ifindex, bool json)
{
	bool first_b = true;

	for (int i = 0; i < s->nq; i++) {
		const struct gpud_queue_info *q = &s->q[i];
		bool first_q = true, dup = false;

		if (q->ifindex != ifindex || !q->dmabuf_id)
			continue;
		for (int j = 0; j < i; j++)
			dup |= s->q[j].ifindex == ifindex && s->q[j].dmabuf_id == q->dmabuf_id;
		if (dup)
			continue;
		printf(json ? "%s{\"dmabuf_id\":%u,\"queues\":[" : "%s  binding: dma-buf %u, rx queues ",
		       json && !first_b ? "," : "", q->dmabuf_id);
		first_b = false;
		for (int j = i; j < s->nq; j++) {
			if (s->q[j].ifindex != ifindex || s->q[j].dmabuf_id != q->dmabuf_id)
				continue;
			printf("%s%u", first_q ? "" : ",", s->q[j].id);
			first_q = false;
		}
		printf(json ? "]}" : "\n");
	}
	if (!json && first_b)
		printf("  bindings: none\n");
}

static void device_text(const struct snapshot *s, int ifindex)
{
	char name[IF_NAMESIZE];
	int rx = 0, tx = 0;

	for (int i = 0; i < s->nq; i++) {
		if (s->q[i].ifindex == ifindex) {
			rx += s->q[i].type == 0;
			tx += s->q[i].type == 1;
		}
	}
	printf("%s (ifindex %d): %d RX queues, %d TX queues\n", ifname_of(ifindex, name),
	       ifindex, rx, tx);
	bindings_print(s, ifindex, false);
	for (int i = 0; i < s->nq; i++) {
		const struct gpud_queue_info *q = &s->q[i];

		if (q->ifindex != ifindex || q->type != 0)
			continue;
		printf("  rx queue %u: napi %u", q->id, q->napi_id);
		if (q->dmabuf_id)
			printf(", dma-buf %u", q->dmabuf_id);
		putchar('\n');
	}
	for (int i = 0; i < s->npp; i++)
		if (s->pp[i].ifindex == ifindex)
			pool_text(&s->pp[i]);
}

static void device_json(const struct snapshot *s, int ifindex, bool first)
{
	char name[IF_NAMESIZE];
	bool f = true;

	printf("%s{\"ifname\":", first ? "" : ",");
	gpudctl_json_str(stdout, ifname_of(ifindex, name));
	printf(",\"ifindex\":%d,\"bindings\":[", ifindex);
	bindings_print(s, ifindex, true);
	printf("],\"queues\":[");
	for (int i = 0; i < s->nq; i++) {
		const struct gpud_queue_info *q = &s->q[i];

		if (q->ifindex != ifindex)
			continue;
		printf("%s{\"id\":%u,\"type\":\"%s\",\"napi_id\":%u,\"dmabuf_id\":%u}",
		       f ? "" : ",", q->id, q->type ? "tx" : "rx", q->napi_id, q->dmabuf_id);
		f = false;
	}
	printf("],\"page_pools\":[");
	f = true;
	for (int i = 0; i < s->npp; i++) {
		if (s->pp[i].ifindex == ifindex) {
			pool_json(&s->pp[i], f);
			f = false;
		}
	}
	printf("]}");
}

static bool seen_ifindex(const struct snapshot *s, int upto, int ifindex)
{
	for (int j = 0; j < upto; j++)
		if (s->q[j].ifindex == ifindex)
			return true;
	return false;
}

static void snap_print(const struct gpudctl_opts *o, const struct snapshot *s)
{
	bool first = true, orphans = false;

	if (o->json)
		printf("{\"devices\":[");
	for (int i = 0; i < s->nq; i++) {
		if (seen_ifindex(s, i, s->q[i].ifindex))
			continue;
		if (o->json)
			device_json(s, s->q[i].ifindex, first);
		else
			device_text(s, s->q[i].ifindex);
		first = false;
	}
	/* Pools whose device is gone hang off no queue: still worth showing. */
	if (o->json)
		printf("],\"orphan_page_pools\":[");
	first = true;
	for (int i = 0; i < s->npp; i++) {
		if (s->pp[i].ifindex && seen_ifindex(s, s->nq, s->pp[i].ifindex))
			continue;
		if (o->json) {
			pool_json(&s->pp[i], first);
		} else {
			if (!orphans)
				printf("page pools of no listed device:\n");
			pool_text(&s->pp[i]);
		}
		orphans = true;
		first = false;
	}
	if (o->json)
		printf("]}\n");
}

int gpudctl_status(const struct gpudctl_opts *o, int argc, char **argv)
{
	struct snapshot s = { 0 };
	int ifindex = 0, err;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "gpudctl: status takes at most one IFNAME\n");
		gpudctl_usage(stderr);
		return GPUDCTL_EXIT_USAGE;
	}
	if (argc == 2) {
		ifindex = (int)if_nametoindex(argv[1]);
		if (!ifindex) {
			fprintf(stderr, "gpudctl: no interface %s in this network namespace\n",
				argv[1]);
			return GPUDCTL_EXIT_FAIL;
		}
	}
	err = snap_take(ifindex, &s);
	if (!err)
		snap_print(o, &s);
	free(s.q);
	free(s.pp);
	return err ? GPUDCTL_EXIT_FAIL : GPUDCTL_EXIT_OK;
}
