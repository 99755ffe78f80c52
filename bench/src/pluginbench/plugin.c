// SPDX-License-Identifier: MIT
/*
 * The plugin transport: libnccl-net-devmem.so loaded with dlopen and driven
 * through ncclNetPlugin_v11 the way NCCL's proxy does. Connection setup
 * polls connect and accept in one loop (neither may block, and each side's
 * connect needs the other's accept); a message is cut into requests of
 * --chunk bytes (NCCL's proxy posts slices of its FIFO, 128 KiB by default)
 * with up to --depth in flight per direction, each tested in order.
 */
#include "pluginbench.h"
#include "plugin_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pb_dir {
	void *comm, *mh;
	void *req[PB_MAX_DEPTH];	/* ring of requests in flight */
	uint64_t posted, done, total;	/* requests of this message */
};

struct pb_plugin {
	struct pb_plugin_lib lib;
	void *lcomm;
	char handle[NCCL_NET_HANDLE_MAXSIZE];
	struct pb_dir tx, rx;
};

static char last_warn[256];
static char recv_mode[256];	/* "copy mode (NCCL_DEVMEM_MODE=auto, ...)" */
static bool verbose;

static void logger(ncclDebugLogLevel level, unsigned long flags, const char *file, int line,
		   const char *fmt, ...)
{
	const char *rc, *colon;
	char msg[256];
	va_list ap;

	(void)flags;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (level == NCCL_LOG_WARN)
		snprintf(last_warn, sizeof(last_warn), "%s", msg);
	/* the receive side logs which mode it runs in and why: worth reporting */
	rc = strstr(msg, "recv comm ");
	colon = rc ? strstr(rc, ": ") : NULL;
	if (colon && strstr(colon, " mode ("))
		snprintf(recv_mode, sizeof(recv_mode), "%s", colon + 2);
	if (level == NCCL_LOG_WARN || (verbose && level <= NCCL_LOG_INFO))
		fprintf(stderr, "%s[%d]: plugin %s %s:%d %s\n", PB_TOOL, getpid(),
			level == NCCL_LOG_WARN ? "WARN" : "INFO", file, line, msg);
}

const char *pb_plugin_default(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	/* build tree: <build>/bench/gpud-pluginbench, <build>/nccl-net-plugin/lib... */
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(buf, len, "%s/../nccl-net-plugin/libnccl-net-devmem.so", exe);
			if (!access(buf, R_OK))
				return buf;
		}
	}
	/* installed: the loader's search path, as NCCL finds it */
	snprintf(buf, len, "libnccl-net-devmem.so");
	return buf;
}

int pb_plugin_vwhy(char *buf, size_t len, int err, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf, len, fmt, ap);

	/* the plugin's own WARN says why; keep as much of it as fits */
	if (last_warn[0] && n > 0 && (size_t)n + 12 < len)
		snprintf(buf + n, len - (size_t)n, " (plugin: %.*s)", (int)(len - (size_t)n - 12),
			 last_warn);
	return err;
}

int pb_plugin_why(char *buf, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = pb_plugin_vwhy(buf, len, err, fmt, ap);
	va_end(ap);
	return err;
}

static int fail(struct pb_xport *x, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = pb_plugin_vwhy(x->err, sizeof(x->err), err, fmt, ap);
	va_end(ap);
	return err;
}

const char *pb_plugin_recv_mode(void)
{
	return recv_mode;
}

int pb_plugin_lib_open(struct pb_plugin_lib *lib, const struct pb_opts *o, const char *ifname,
		       char *why, size_t wlen)
{
	ncclNetCommConfig_v11_t cfg = { .trafficClass = NCCL_NET_TRAFFIC_CLASS_UNDEF };
	char nsocks[16];

	verbose = o->verbose;
	memset(lib, 0, sizeof(*lib));
	/* the plugin reads its settings once, at init */
	setenv("NCCL_DEVMEM_IFNAME", ifname, 1);
	snprintf(nsocks, sizeof(nsocks), "%u", o->nsocks);
	setenv("NCCL_DEVMEM_NSOCKS", nsocks, 1);
	lib->so = dlopen(o->plugin_path, RTLD_NOW | RTLD_LOCAL);
	if (!lib->so)
		return pb_plugin_why(why, wlen, -ENOENT, "dlopen %s: %s", o->plugin_path, dlerror());
	lib->net = dlsym(lib->so, "ncclNetPlugin_v11");
	if (!lib->net)
		return pb_plugin_why(why, wlen, -ENOENT, "%s exports no ncclNetPlugin_v11",
				     o->plugin_path);
	if (lib->net->init(&lib->ctx, 0x70626e63, &cfg, logger, NULL) != ncclSuccess) {
		lib->net = NULL;
		return pb_plugin_why(why, wlen, -EIO, "init failed");
	}
	return 0;
}

void pb_plugin_lib_close(struct pb_plugin_lib *lib)
{
	if (lib->net && lib->ctx)
		lib->net->finalize(lib->ctx);
	if (lib->so)
		dlclose(lib->so);
	memset(lib, 0, sizeof(*lib));
}

static int load(struct pb_xport *x, struct pb_plugin *p)
{
	return pb_plugin_lib_open(&p->lib, x->o, x->r->ifname, x->err, sizeof(x->err));
}

static int listen_dev0(struct pb_xport *x, struct pb_plugin *p)
{
	if (x->r->do_recv && p->lib.net->listen(p->lib.ctx, 0, p->handle, &p->lcomm) != ncclSuccess)
		return fail(x, -EIO, "listen on dev 0 failed");
	return 0;
}

/* Listen handles cross over the control channel, as over NCCL's bootstrap. */
static int exchange(struct pb_xport *x, struct pb_plugin *p, char *peer_handle)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE] = { 0 };
	int err;

	if (x->r->do_recv) {
		memcpy(handle, p->handle, sizeof(handle));
		err = pb_ctl_write(x->r->ctl, handle, sizeof(handle));
		if (err)
			return fail(x, err, "sending the listen handle: %s", strerror(-err));
	}
	if (x->r->do_send) {
		err = pb_ctl_read(x->r->ctl, peer_handle, NCCL_NET_HANDLE_MAXSIZE);
		if (err)
			return fail(x, err, "reading the peer's handle: %s", strerror(-err));
	}
	return 0;
}

static int connect_both(struct pb_xport *x, struct pb_plugin *p, char *peer_handle)
{
	ncclNetDeviceHandle_v11_t *dh = NULL;
	double end = pb_now() + PB_TIMEOUT_S;

	while ((x->r->do_send && !p->tx.comm) || (x->r->do_recv && !p->rx.comm)) {
		if (x->r->do_send && !p->tx.comm &&
		    p->lib.net->connect(p->lib.ctx, 0, peer_handle, &p->tx.comm, &dh) != ncclSuccess)
			return fail(x, -ECONNREFUSED, "connect failed");
		if (x->r->do_recv && !p->rx.comm &&
		    p->lib.net->accept(p->lcomm, &p->rx.comm, &dh) != ncclSuccess)
			return fail(x, -ECONNREFUSED, "accept failed");
		if (pb_now() > end)
			return fail(x, -ETIMEDOUT, "connection not up in %.0f s", PB_TIMEOUT_S);
		usleep(100);
	}
	return 0;
}

static int plugin_open(struct pb_xport *x)
{
	char peer_handle[NCCL_NET_HANDLE_MAXSIZE] = { 0 };
	int type = x->b->mem == PB_MEM_CUDA ? NCCL_PTR_CUDA : NCCL_PTR_HOST;
	ncclNetProperties_v11_t props;
	struct pb_plugin *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	x->priv = p;
	/* agree after each step that could leave the other rank waiting */
	err = pb_ctl_agree(x->r->ctl, load(x, p));
	if (!err)
		err = pb_ctl_agree(x->r->ctl, listen_dev0(x, p));
	if (!err)
		err = exchange(x, p, peer_handle);
	if (!err)
		err = connect_both(x, p, peer_handle);
	if (err)
		return err;
	snprintf(x->mode, sizeof(x->mode), "%s", recv_mode);
	if (p->tx.comm && p->lib.net->regMr(p->tx.comm, x->b->send, x->b->len, type, &p->tx.mh))
		return fail(x, -EIO, "regMr of the send buffer failed");
	if (p->rx.comm && p->lib.net->regMr(p->rx.comm, x->b->recv, x->b->len, type, &p->rx.mh))
		return fail(x, -EIO, "regMr of the receive buffer failed");
	if (p->lib.net->getProperties(0, &props) == ncclSuccess)
		snprintf(x->desc, sizeof(x->desc), "%s v11 on %s, %u data sockets, %s buffers",
			 x->o->plugin_path, props.name, x->o->nsocks,
			 type == NCCL_PTR_CUDA ? "CUDA" : "host");
	return 0;
}

static uint64_t req_len(const struct pb_xport *x, size_t size, uint64_t k)
{
	uint64_t c = x->o->chunk && x->o->chunk < size ? x->o->chunk : size;
	uint64_t off = k * c;

	return size - off < c ? size - off : c;
}

/* Posts what the window allows; the plugin may answer "no slot" (NULL). */
static int post(struct pb_xport *x, struct pb_plugin *p, struct pb_dir *d, bool tx, size_t size)
{
	uint64_t c = x->o->chunk && x->o->chunk < size ? x->o->chunk : size;

	while (d->posted < d->total && d->posted - d->done < x->o->depth) {
		uint64_t off = d->posted * c;
		size_t len = req_len(x, size, d->posted);
		void **slot = &d->req[d->posted % PB_MAX_DEPTH];
		char *base = tx ? x->b->send : x->b->recv;
		void *data = base + off;
		void *ph = NULL;
		int tag = 1;
		ncclResult_t r;

		*slot = NULL;
		r = tx ? p->lib.net->isend(d->comm, data, len, tag, d->mh, NULL, slot)
		       : p->lib.net->irecv(d->comm, 1, &data, &len, &tag, &d->mh, &ph, slot);
		if (r != ncclSuccess)
			return fail(x, -EIO, "%s of %zu bytes failed", tx ? "isend" : "irecv", len);
		if (!*slot)
			break;
		d->posted++;
	}
	return 0;
}

/* Tests the oldest request; NCCL's proxy completes steps in order too. */
static int test(struct pb_xport *x, struct pb_plugin *p, struct pb_dir *d, bool tx, size_t size)
{
	int done = 0, got = -1;

	if (d->done == d->posted)
		return 0;
	if (p->lib.net->test(d->req[d->done % PB_MAX_DEPTH], &done, &got) != ncclSuccess)
		return fail(x, -EIO, "test of a %s request failed", tx ? "send" : "receive");
	if (!done)
		return 0;
	if (!tx && (uint64_t)got != req_len(x, size, d->done))
		return fail(x, -EPROTO, "received %d bytes, expected %llu", got,
			    (unsigned long long)req_len(x, size, d->done));
	d->done++;
	return 0;
}

static int plugin_sendrecv(struct pb_xport *x, size_t size)
{
	struct pb_plugin *p = x->priv;
	uint64_t c = x->o->chunk && x->o->chunk < size ? x->o->chunk : size;
	uint64_t n = c ? (size + c - 1) / c : 1;
	double end = pb_now() + PB_TIMEOUT_S;
	unsigned int spin = 0;
	int err = 0;

	p->tx = (struct pb_dir){ .comm = p->tx.comm, .mh = p->tx.mh, .total = p->tx.comm ? n : 0 };
	p->rx = (struct pb_dir){ .comm = p->rx.comm, .mh = p->rx.mh, .total = p->rx.comm ? n : 0 };
	while (!err && (p->tx.done < p->tx.total || p->rx.done < p->rx.total)) {
		uint64_t before = p->tx.posted + p->tx.done + p->rx.posted + p->rx.done;

		/* receives first: a posted receive lets the sender's payload flow */
		err = post(x, p, &p->rx, false, size);
		if (!err)
			err = post(x, p, &p->tx, true, size);
		if (!err)
			err = test(x, p, &p->rx, false, size);
		if (!err)
			err = test(x, p, &p->tx, true, size);
		/*
		 * Idle pass: let the progress threads have the core, as NCCL's
		 * proxy thread yields when it has nothing to do (matters on 2 cores).
		 */
		if (before == p->tx.posted + p->tx.done + p->rx.posted + p->rx.done)
			sched_yield();
		if (pb_interrupted)
			err = -EINTR;
		else if (!(++spin & 1023) && pb_now() > end)
			err = fail(x, -ETIMEDOUT, "a %zu-byte iteration took over %.0f s", size,
				   PB_TIMEOUT_S);
	}
	return err;
}

static void plugin_close(struct pb_xport *x)
{
	struct pb_plugin *p = x->priv;

	if (!p)
		return;
	if (p->lib.net) {
		if (p->tx.mh)
			p->lib.net->deregMr(p->tx.comm, p->tx.mh);
		if (p->rx.mh)
			p->lib.net->deregMr(p->rx.comm, p->rx.mh);
		if (p->tx.comm)
			p->lib.net->closeSend(p->tx.comm);
		if (p->rx.comm)
			p->lib.net->closeRecv(p->rx.comm);
		if (p->lcomm)
			p->lib.net->closeListen(p->lcomm);
	}
	pb_plugin_lib_close(&p->lib);
	free(p);
	x->priv = NULL;
}

const struct pb_xport_ops pb_plugin_ops = {
	.open = plugin_open,
	.sendrecv = plugin_sendrecv,
	.close = plugin_close,
};
