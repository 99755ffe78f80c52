// SPDX-License-Identifier: MIT
/* The agent's state as one JSON document (gpudctl agent status -j). */
#include "gpudd.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->len + 1 >= o->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap - 1;
}

/* Names and flow texts are ours (ifnames, addresses): nothing to escape but quotes. */
static void put_str(struct out *o, const char *s)
{
	put(o, "\"");
	for (; *s; s++)
		put(o, (*s == '"' || *s == '\\') ? "\\%c" : "%c", *s);
	put(o, "\"");
}

static void put_nic(struct out *o, const struct gpudd_nic *n)
{
	uint32_t t[GPUDD_MAX_QUEUES];
	bool in_rss[GPUDD_MAX_QUEUES] = { false };
	bool first = true;

	put(o, "{\"ifname\":");
	put_str(o, n->ifname);
	put(o, ",\"ifindex\":%d,\"rx_queues\":%u,\"pool\":[%u,%u],\"header_split\":%s,"
	    "\"rss_managed\":%s,\"rx_channels\":", n->ifindex, n->pool.nrxq, n->pool.first,
	    n->pool.last, n->hds_on ? "true" : "false", n->rss_size ? "true" : "false");
	/* The RX channel count is gpudd's too: as set, and what stop puts back. */
	if (n->ch_known)
		put(o, "{\"count\":%u,\"original\":%u,\"changed\":%s}", n->ch_count,
		    n->ch_orig, n->ch_set ? "true" : "false");
	else
		put(o, "null");
	put(o, ",\"rss_queues\":[");
	/* The spread as gpudd set it: from the pool state it was computed from. */
	if (gpudd_rss_table(&n->pool, t, n->pool.nrxq) > 0)
		for (unsigned int i = 0; i < n->pool.nrxq; i++)
			in_rss[t[i]] = true;
	for (unsigned int q = 0; q < n->pool.nrxq; q++) {
		if (in_rss[q]) {
			put(o, "%s%u", first ? "" : ",", q);
			first = false;
		}
	}
	put(o, "],\"held\":[");
	first = true;
	for (unsigned int q = 0; q < n->pool.nrxq; q++) {
		if (!n->pool.conn[q])
			continue;
		put(o, "%s{\"queue\":%u,\"client\":%llu,\"pid\":%d}", first ? "" : ",", q,
		    (unsigned long long)n->pool.conn[q], (int)n->pool.pid[q]);
		first = false;
	}
	put(o, "]}");
}

static void put_client(struct out *o, const struct gpudd *d, const struct gpudd_client *c)
{
	bool first = true;

	put(o, "{\"id\":%llu,\"pid\":%d,\"uid\":%u,\"protocol\":%u,\"queues\":[",
	    (unsigned long long)c->id, (int)c->cred.pid, c->cred.uid, c->version);
	for (const struct gpudd_nic *n = d->nics; n; n = n->next) {
		for (unsigned int q = 0; q < n->pool.nrxq; q++) {
			if (n->pool.conn[q] != c->id)
				continue;
			put(o, "%s{\"ifname\":", first ? "" : ",");
			put_str(o, n->ifname);
			put(o, ",\"queue\":%u}", q);
			first = false;
		}
	}
	put(o, "],\"bindings\":[");
	for (const struct gpudd_bind *b = c->binds; b; b = b->next) {
		put(o, "{\"id\":%u,\"ifname\":", b->id);
		put_str(o, b->nic->ifname);
		put(o, ",\"queues\":[");
		for (unsigned int i = 0; i < b->nq; i++)
			put(o, "%s%u", i ? "," : "", b->queues[i]);
		put(o, "]}%s", b->next ? "," : "");
	}
	put(o, "],\"rules\":[");
	for (const struct gpudd_rule *r = c->rules; r; r = r->next) {
		put(o, "{\"ifname\":");
		put_str(o, r->nic->ifname);
		put(o, ",\"rule\":%u,\"queue\":%u,\"flow\":", r->loc, r->queue);
		put_str(o, r->flow);
		put(o, "}%s", r->next ? "," : "");
	}
	put(o, "]}");
}

/*
 * Each request type since start: how many were served and refused, how
 * long they waited behind other clients and how long they took, so a slow
 * start-up (or a node refusing its ranks) shows where it went.
 */
static void put_requests(struct out *o, const struct gpudd *d)
{
	bool first = true;

	put(o, "{");
	for (int t = 1; t <= GPUD_MSG_TYPE_MAX; t++) {
		const struct gpudd_req_stat *st = &d->req[t];

		if (!st->n && !st->nerr)
			continue;
		put(o, "%s", first ? "" : ",");
		put_str(o, gpud_proto_type_name((uint16_t)t));
		put(o, ":{\"n\":%llu,\"errors\":%llu,\"serve_ms\":", (unsigned long long)st->n,
		    (unsigned long long)st->nerr);
		if (st->n)
			put(o, "{\"mean\":%.3f,\"max\":%.3f,\"total\":%.3f}",
			    st->serve_s * 1e3 / (double)st->n, st->serve_max_s * 1e3,
			    st->serve_s * 1e3);
		else
			put(o, "null");
		put(o, ",\"wait_ms\":");
		if (st->nwait)
			put(o, "{\"mean\":%.3f,\"max\":%.3f}}", st->wait_s * 1e3 / (double)st->nwait,
			    st->wait_max_s * 1e3);
		else
			put(o, "null}");
		first = false;
	}
	put(o, "}");
}

size_t gpudd_status_json(const struct gpudd *d, char *buf, size_t len)
{
	struct out o = { buf, 0, len };
	bool first = true;

	buf[0] = 0;
	put(&o, "{\"agent\":{\"pid\":%d,\"protocol\":[%d,%d],\"socket\":", (int)getpid(),
	    GPUD_PROTO_VERSION_MIN, GPUD_PROTO_VERSION_MAX);
	put_str(&o, d->cfg.sock_path);
	put(&o, ",\"group\":");
	put_str(&o, d->cfg.group);
	put(&o, ",\"socket_activated\":%s,\"requests\":", d->socket_activated ? "true" : "false");
	put_requests(&o, d);
	put(&o, "},\"nics\":[");
	for (const struct gpudd_nic *n = d->nics; n; n = n->next) {
		put(&o, "%s", n == d->nics ? "" : ",");
		put_nic(&o, n);
	}
	put(&o, "],\"clients\":[");
	for (int i = 0; i < d->nclients; i++) {
		if (!d->clients[i]->hello)
			continue;
		put(&o, "%s", first ? "" : ",");
		put_client(&o, d, d->clients[i]);
		first = false;
	}
	put(&o, "]}");
	return o.len;
}
