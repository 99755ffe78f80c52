// SPDX-License-Identifier: MIT
/* See harness.h. */
#include "harness.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int h_warns;
char h_last_warn[512];
bool h_keep_loaded;
char h_log_needle[128];
int h_log_hits;
char h_log_hit[512];

static void logger(ncclDebugLogLevel level, unsigned long flags, const char *file, int line,
		   const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (level == NCCL_LOG_WARN) {
		h_warns++;
		snprintf(h_last_warn, sizeof(h_last_warn), "%s", msg);
	}
	if (h_log_needle[0] && strstr(msg, h_log_needle)) {
		h_log_hits++;
		snprintf(h_log_hit, sizeof(h_log_hit), "%s", msg);
	}
	if (level <= NCCL_LOG_INFO || getenv("H_TRACE")) {
		struct timespec ts;

		/* CLOCK_MONOTONIC, as gpudd's log: one timeline across processes. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t_log("[%d %ld.%03ld] %s %s:%d %s", getpid(), (long)ts.tv_sec,
		      ts.tv_nsec / 1000000, level == NCCL_LOG_WARN ? "WARN" : "INFO", file, line,
		      msg);
	}
}

const char *h_plugin_path(void)
{
	const char *p = getenv("DM_PLUGIN");

	return p ? p : DM_PLUGIN_DEFAULT;
}

int h_tclass(void)
{
	const char *v = getenv("H_TCLASS");

	return v && *v ? (int)strtol(v, NULL, 0) : NCCL_NET_TRAFFIC_CLASS_UNDEF;
}

void h_load(struct h_plugin *p, int version)
{
	char sym[32];
	void *t;

	memset(p, 0, sizeof(*p));
	p->version = version;
	p->so = dlopen(h_plugin_path(), RTLD_NOW | RTLD_LOCAL);
	if (!p->so)
		T_FAIL("dlopen %s: %s", h_plugin_path(), dlerror());
	snprintf(sym, sizeof(sym), "ncclNetPlugin_v%d", version);
	t = dlsym(p->so, sym);
	if (!t)
		T_FAIL("%s not exported", sym);
	switch (version) {
	case 8:
		p->v8 = t;
		T_ASSERT_EQ(ncclSuccess, p->v8->init(logger));
		break;
	case 9:
		p->v9 = t;
		T_ASSERT_EQ(ncclSuccess, p->v9->init(logger));
		break;
	case 10:
		p->v10 = t;
		T_ASSERT_EQ(ncclSuccess, p->v10->init(logger, NULL));
		break;
	case 11: {
		ncclNetCommConfig_v11_t cfg = { .trafficClass = h_tclass() };

		p->v11 = t;
		T_ASSERT_EQ(ncclSuccess, p->v11->init(&p->ctx, 0x1234, &cfg, logger, NULL));
		break;
	}
	case 12: {
		ncclNetCommConfig_v12_t cfg = { .trafficClass = h_tclass() };

		p->v12 = t;
		T_ASSERT_EQ(ncclSuccess, p->v12->init(&p->ctx, 0x1234, &cfg, logger, NULL));
		break;
	}
	default:
		T_FAIL("unknown version %d", version);
	}
}

void h_unload(struct h_plugin *p)
{
	if (p->v11)
		T_ASSERT_EQ(ncclSuccess, p->v11->finalize(p->ctx));
	if (p->v12)
		T_ASSERT_EQ(ncclSuccess, p->v12->finalize(p->ctx));
	if (h_keep_loaded)
		return;
	/* NCCL dlcloses the plugin after its last comm: no thread may be left */
	T_ASSERT_EQ(0, dlclose(p->so));
}

/* Dispatch on version: the caller-visible semantics are the same everywhere. */
#define CALL(p, fn, ...)                                                          \
	((p)->version == 8 ? (p)->v8->fn(__VA_ARGS__)                               \
	 : (p)->version == 9 ? (p)->v9->fn(__VA_ARGS__)                             \
	 : (p)->version == 10 ? (p)->v10->fn(__VA_ARGS__)                           \
	 : (p)->version == 11 ? (p)->v11->fn(__VA_ARGS__)                           \
			      : (p)->v12->fn(__VA_ARGS__))

ncclResult_t h_listen(struct h_plugin *p, int dev, void *handle, void **lcomm)
{
	switch (p->version) {
	case 8:
		return p->v8->listen(dev, handle, lcomm);
	case 9:
		return p->v9->listen(dev, handle, lcomm);
	case 10:
		return p->v10->listen(dev, handle, lcomm);
	case 11:
		return p->v11->listen(p->ctx, dev, handle, lcomm);
	}
	return p->v12->listen(p->ctx, dev, handle, lcomm);
}

ncclResult_t h_connect(struct h_plugin *p, int dev, void *handle, void **scomm)
{
	ncclNetDeviceHandle_v11_t *dh = NULL;
	ncclNetCommConfig_v10_t cfg = { .trafficClass = h_tclass() };

	switch (p->version) {
	case 8:
		return p->v8->connect(dev, handle, scomm, &dh);
	case 9:
		return p->v9->connect(dev, handle, scomm, &dh);
	case 10:
		return p->v10->connect(dev, &cfg, handle, scomm, &dh);
	case 11:
		return p->v11->connect(p->ctx, dev, handle, scomm, &dh);
	}
	return p->v12->connect(p->ctx, dev, handle, scomm, &dh);
}

ncclResult_t h_accept(struct h_plugin *p, void *lcomm, void **rcomm)
{
	ncclNetDeviceHandle_v11_t *dh = NULL;

	return CALL(p, accept, lcomm, rcomm, &dh);
}

ncclResult_t h_accept_dev(struct h_plugin *p, void *lcomm, void **rcomm,
			  ncclNetDeviceHandle_v11_t **dh)
{
	return CALL(p, accept, lcomm, rcomm, dh);
}

ncclResult_t h_irecv_consumed(struct h_plugin *p, void *c, int n, void *req)
{
	return CALL(p, irecvConsumed, c, n, req);
}

void h_props_dev(struct h_plugin *p, int dev, int *type, int *version, int *max_recvs)
{
	if (p->version == 8) {
		ncclNetProperties_v8_t pr;

		T_ASSERT_EQ(ncclSuccess, p->v8->getProperties(dev, &pr));
		*type = pr.netDeviceType, *version = pr.netDeviceVersion, *max_recvs = pr.maxRecvs;
	} else if (p->version == 11) {
		ncclNetProperties_v11_t pr;

		T_ASSERT_EQ(ncclSuccess, p->v11->getProperties(dev, &pr));
		*type = pr.netDeviceType, *version = pr.netDeviceVersion, *max_recvs = pr.maxRecvs;
	} else if (p->version == 12) {
		ncclNetProperties_v12_t pr;

		T_ASSERT_EQ(ncclSuccess, p->v12->getProperties(dev, &pr));
		*type = pr.netDeviceType, *version = pr.netDeviceVersion, *max_recvs = pr.maxRecvs;
	} else {
		ncclNetProperties_v9_t pr;

		T_ASSERT_EQ(ncclSuccess, p->version == 9 ? p->v9->getProperties(dev, &pr)
							 : p->v10->getProperties(dev, &pr));
		*type = pr.netDeviceType, *version = pr.netDeviceVersion, *max_recvs = pr.maxRecvs;
	}
}

ncclResult_t h_regmr(struct h_plugin *p, void *comm, void *data, size_t size, void **mh)
{
	return CALL(p, regMr, comm, data, size, NCCL_PTR_HOST, mh);
}

ncclResult_t h_deregmr(struct h_plugin *p, void *comm, void *mh)
{
	return CALL(p, deregMr, comm, mh);
}

ncclResult_t h_isend(struct h_plugin *p, void *c, void *data, size_t size, int tag, void *mh,
		     void **req)
{
	switch (p->version) {
	case 8:
		return p->v8->isend(c, data, (int)size, tag, mh, req);
	case 9:
		return p->v9->isend(c, data, size, tag, mh, req);
	case 10:
		return p->v10->isend(c, data, size, tag, mh, NULL, req);
	case 11:
		return p->v11->isend(c, data, size, tag, mh, NULL, req);
	}
	return p->v12->isend(c, data, size, tag, mh, NULL, req);
}

ncclResult_t h_irecv(struct h_plugin *p, void *c, int n, void **data, size_t *sizes, int *tags,
		     void **mh, void **req)
{
	void *ph[8] = { 0 };
	int isz[8];

	switch (p->version) {
	case 8:
		for (int i = 0; i < n; i++)
			isz[i] = (int)sizes[i];
		return p->v8->irecv(c, n, data, isz, tags, mh, req);
	case 9:
		return p->v9->irecv(c, n, data, sizes, tags, mh, req);
	case 10:
		return p->v10->irecv(c, n, data, sizes, tags, mh, ph, req);
	case 11:
		return p->v11->irecv(c, n, data, sizes, tags, mh, ph, req);
	}
	return p->v12->irecv(c, n, data, sizes, tags, mh, ph, req);
}

ncclResult_t h_iflush(struct h_plugin *p, void *c, void *data, int size, void *mh, void **req)
{
	return CALL(p, iflush, c, 1, &data, &size, &mh, req);
}

ncclResult_t h_test(struct h_plugin *p, void *req, int *done, int *sizes)
{
	return CALL(p, test, req, done, sizes);
}

ncclResult_t h_close_send(struct h_plugin *p, void *c)
{
	return CALL(p, closeSend, c);
}

ncclResult_t h_close_recv(struct h_plugin *p, void *c)
{
	return CALL(p, closeRecv, c);
}

ncclResult_t h_close_listen(struct h_plugin *p, void *l)
{
	return CALL(p, closeListen, l);
}

void *h_connect_wait(struct h_plugin *p, int dev, void *handle, double secs)
{
	double end = t_now() + secs;
	void *c = NULL;

	while (!c) {
		ncclResult_t r = h_connect(p, dev, handle, &c);

		if (r != ncclSuccess)
			T_FAIL("connect returned %d (last WARN: %s)", r, h_last_warn);
		if (t_now() > end)
			T_FAIL("connect not done in %.0f s", secs);
		if (!c)
			usleep(100);
	}
	return c;
}

void *h_accept_wait(struct h_plugin *p, void *lcomm, double secs)
{
	double end = t_now() + secs;
	void *c = NULL;

	while (!c) {
		ncclResult_t r = h_accept(p, lcomm, &c);

		if (r != ncclSuccess)
			T_FAIL("accept returned %d (last WARN: %s)", r, h_last_warn);
		if (t_now() > end)
			T_FAIL("accept not done in %.0f s", secs);
		if (!c)
			usleep(100);
	}
	return c;
}

void *h_accept_wait_dev(struct h_plugin *p, void *lcomm, ncclNetDeviceHandle_v11_t **dh,
			double secs)
{
	double end = t_now() + secs;
	void *c = NULL;

	while (!c) {
		ncclResult_t r = h_accept_dev(p, lcomm, &c, dh);

		if (r != ncclSuccess)
			T_FAIL("accept returned %d (last WARN: %s)", r, h_last_warn);
		if (t_now() > end)
			T_FAIL("accept not done in %.0f s", secs);
		if (!c)
			usleep(100);
	}
	return c;
}

ncclResult_t h_wait(struct h_plugin *p, void *req, int *sizes, double secs)
{
	double end = t_now() + secs;
	int done = 0;

	for (;;) {
		ncclResult_t r = h_test(p, req, &done, sizes);

		if (r != ncclSuccess || done)
			return r;
		if (t_now() > end)
			T_FAIL("request %p not complete in %.0f s", req, secs);
	}
}

void *h_isend_wait(struct h_plugin *p, void *c, void *data, size_t size, int tag, void *mh)
{
	double end = t_now() + 30;
	void *req = NULL;

	while (!req) {
		ncclResult_t r = h_isend(p, c, data, size, tag, mh, &req);

		if (r != ncclSuccess)
			T_FAIL("isend returned %d (last WARN: %s)", r, h_last_warn);
		if (t_now() > end)
			T_FAIL("isend got no request slot in 30 s");
	}
	return req;
}

int h_pair_start(struct h_pair *hp)
{
	t_require_root();
	/* inside the patched-kernel VM: linked netdevsim ports, the devmem-capable link */
	t_netpair_setup(&hp->net, t_in_vm() ? T_LINK_NSIM : T_LINK_VETH);
	T_ASSERT_EQ(0, pipe(hp->hpipe));
	T_ASSERT_EQ(0, pipe(hp->spipe));
	fflush(stdout);
	hp->child = fork();
	T_ASSERT(hp->child >= 0);
	if (hp->child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		T_ASSERT_OK(t_netpair_enter(&hp->net, 1));
		return 1;
	}
	T_ASSERT_OK(t_netpair_enter(&hp->net, 0));
	return 0;
}

void h_pair_join(struct h_pair *hp, double secs)
{
	double end = t_now() + secs;
	int st;

	for (;;) {
		pid_t r = waitpid(hp->child, &st, WNOHANG);

		if (r == hp->child)
			break;
		if (t_now() > end) {
			kill(hp->child, SIGKILL);
			waitpid(hp->child, &st, 0);
			T_FAIL("sender process did not finish in %.0f s", secs);
		}
		usleep(10000);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		T_FAIL("sender process failed (status %#x)", st);
}

static void xfer(int fd, void *buf, size_t len, bool wr)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = wr ? write(fd, (char *)buf + done, len - done)
			       : read(fd, (char *)buf + done, len - done);

		if (n <= 0)
			T_FAIL("pipe %s: %s", wr ? "write" : "read", n ? strerror(errno) : "EOF");
		done += n;
	}
}

void h_send_handle(struct h_pair *hp, const void *handle)
{
	xfer(hp->hpipe[1], (void *)handle, NCCL_NET_HANDLE_MAXSIZE, true);
}

void h_recv_handle(struct h_pair *hp, void *handle)
{
	xfer(hp->hpipe[0], handle, NCCL_NET_HANDLE_MAXSIZE, false);
}

void h_sync_send(struct h_pair *hp)
{
	char c = 's';

	xfer(hp->spipe[1], &c, 1, true);
}

void h_sync_recv(struct h_pair *hp)
{
	char c;

	xfer(hp->spipe[0], &c, 1, false);
}

void *h_alloc(size_t size)
{
	void *p = mmap(NULL, size ? size : 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		T_FAIL("mmap %zu: %s", size, strerror(errno));
	return p;
}
