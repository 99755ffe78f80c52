// SPDX-License-Identifier: MIT
/* Shared setup of the devmem recycling tests; see recycle_common.h. */
#define _GNU_SOURCE
#include "recycle_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

void rc_setup(struct rc_env *e, uint16_t port, size_t mem_size)
{
	memset(e, 0, sizeof(*e));
	e->lfd = -1;
	t_devmem_setup(&e->d, RC_RXQ, port);
	T_ASSERT_OK(t_netpair_enter(&e->d.np, 0));
	t_devmem_nic_setup(&e->d);
	t_devmem_mem_create(&e->d, mem_size);
	e->b = t_devmem_bind(&e->d);
	e->lfd = t_devmem_listen(&e->d);
	/* Several flows connect at once: a longer accept queue. */
	T_ASSERT_OK(listen(e->lfd, 64) ? -errno : 0);
}

static int connect_flow(const struct rc_env *e, int flow)
{
	struct sockaddr_in src = { .sin_family = AF_INET,
				   .sin_port = htons(RC_SPORT_BASE + flow) };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(e->d.port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, e->d.np.addr[1], &src.sin_addr);
	inet_pton(AF_INET, e->d.np.addr[0], &dst.sin_addr);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)))
		return -1;
	for (int tries = 0; connect(fd, (struct sockaddr *)&dst, sizeof(dst)); tries++) {
		if (tries > 500)
			return -1;
		usleep(10000);
	}
	return fd;
}

/* One flow: the whole pattern, then an orderly close. Runs in a child. */
static int send_flow(const struct rc_env *e, const struct rc_send *s, int flow)
{
	size_t chunk = s->chunk ? s->chunk : 256 << 10;
	uint64_t seed = s->seed + (uint64_t)flow, off = 0;
	char *buf = malloc(chunk);
	int fd = connect_flow(e, flow);

	if (fd < 0 || !buf)
		return 3;
	while (off < s->bytes) {
		size_t len = chunk < s->bytes - off ? chunk : (size_t)(s->bytes - off);

		t_pattern_fill(seed, off, buf, len);
		for (size_t done = 0; done < len;) {
			ssize_t w = send(fd, buf + done, len - done, MSG_NOSIGNAL);

			if (w <= 0)
				return 4;
			done += (size_t)w;
		}
		off += len;
	}
	close(fd);
	free(buf);
	return 0;
}

pid_t rc_sender_start(struct rc_env *e, const struct rc_send *s)
{
	pid_t pid = fork(), kids[64];
	int st, rc = 0;

	T_ASSERT(pid >= 0);
	if (pid)
		return pid;
	/* The sender: never outlive the test. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close(e->d.np.guardian_fd);
	if (e->lfd >= 0)
		close(e->lfd);
	if (t_netpair_enter(&e->d.np, 1) || s->nflows < 1 || s->first_flow < 0 ||
	    s->first_flow + s->nflows > 64)
		_exit(2);
	for (int i = 0; i < s->nflows; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			_exit(send_flow(e, s, s->first_flow + i));
		}
	}
	for (int i = 0; i < s->nflows; i++) {
		if (kids[i] < 0 || waitpid(kids[i], &st, 0) != kids[i])
			rc = 5;
		else if (!WIFEXITED(st) || WEXITSTATUS(st))
			rc = rc ? rc : (WIFEXITED(st) ? WEXITSTATUS(st) : 6);
	}
	_exit(rc);
}

void rc_sender_wait(pid_t pid)
{
	int st;

	T_ASSERT_EQ(pid, waitpid(pid, &st, 0));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		T_FAIL("sender failed: %s %d", WIFEXITED(st) ? "exit" : "signal",
		       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

int rc_accept(struct rc_env *e, int *flow)
{
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	int fd = accept4(e->lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);

	T_ASSERT(fd >= 0);
	*flow = ntohs(peer.sin_port) - RC_SPORT_BASE;
	if (*flow < 0 || *flow >= 64)
		T_FAIL("unexpected peer port %u", ntohs(peer.sin_port));
	return fd;
}

void rc_check_mem(struct gpud_mem *m, uint64_t off, uint32_t len, uint64_t seed, uint64_t pos)
{
	static uint8_t buf[4 << 20];
	long bad;

	T_ASSERT(len <= sizeof(buf));
	T_ASSERT_OK(gpud_mem_read(m, off, buf, len));
	bad = t_pattern_check(seed, pos, buf, len);
	if (bad >= 0)
		T_FAIL("stream %llu byte %llu differs (fragment at offset %llu, len %u)",
		       (unsigned long long)seed, (unsigned long long)(pos + (uint64_t)bad),
		       (unsigned long long)off, len);
}

uint64_t rc_recv_flow(struct rc_env *e, int fd, uint64_t seed, const struct rc_recv *r,
		      struct gpud_rx_stats *st)
{
	struct gpud_rx_opts o = { .sz = sizeof(o), .mode = GPUD_RX_DEVMEM, .binding = e->b,
				  .copy_chunk = r->copy_chunk };
	size_t maxf = r->max_frags ? r->max_frags : 256;
	struct gpud_frag *f = calloc(maxf, sizeof(*f));
	struct gpud_rx *rx = NULL;
	unsigned long calls = 0;
	uint64_t pos = 0;
	int n;

	T_ASSERT(f);
	T_ASSERT_OK(gpud_rx_open(fd, &o, &rx));
	for (;;) {
		if (r->each)
			r->each(fd, calls++);
		if (r->delay_us)
			usleep(r->delay_us);
		n = t_devmem_recv(rx, e->d.mem, f, maxf, 0, seed, &pos);
		if (n <= 0)
			break;
		T_ASSERT_OK(gpud_rx_release(rx, f, (size_t)n));
	}
	if (n < 0)
		T_FAIL("gpud_rx_recv after %llu bytes: %d: %s", (unsigned long long)pos, n,
		       gpud_errmsg());
	gpud_rx_get_stats(rx, st);
	T_ASSERT_EQ(pos, st->bytes);
	T_ASSERT_EQ(st->bytes, st->bytes_devmem + st->bytes_copied);
	T_ASSERT_EQ(0, st->tokens_outstanding);
	gpud_rx_free(rx);
	free(f);
	return pos;
}

void rc_log_stats(const char *what, const struct gpud_rx_stats *st, double secs)
{
	t_log("%s: %llu bytes in %.2f s (%.0f Mbit/s), %llu fragments, devmem %llu B, copied %llu B, %llu tokens returned in %llu DONTNEED calls, %llu recvmsg calls",
	      what, (unsigned long long)st->bytes, secs, st->bytes * 8 / (secs > 0 ? secs : 1) / 1e6,
	      (unsigned long long)st->frags, (unsigned long long)st->bytes_devmem,
	      (unsigned long long)st->bytes_copied, (unsigned long long)st->tokens_released,
	      (unsigned long long)st->dontneed_calls, (unsigned long long)st->recv_calls);
}

/*
 * skbs freed on another CPU than their NAPI's wait on that CPU's defer list
 * (see tests/common/softnet.c); flush before judging inflight.
 */
static int wait_pools_gone(struct rc_env *e, uint64_t *inflight)
{
	int found = 0;

	for (int i = 0; i < 100; i++) {
		T_ASSERT(t_skb_defer_flush() > 0);
		found = t_devmem_pools(e->d.ifindex, e->d.dmabuf_id, inflight);
		if (!found)
			break;
		usleep(50000);
	}
	return found;
}

/*
 * A page pool's inflight is hold minus release: the netmems sitting in its own
 * alloc cache and ptr_ring count too, and only page_pool_destroy() (unbind)
 * empties those. So with the binding alive "back to 0" means "back into the
 * pool": at most what its caches hold. Unbind then proves the exact 0.
 */
void rc_check_closed(struct rc_env *e)
{
	uint64_t inflight = 0;
	int found = 0;

	for (int i = 0; i < 100; i++) {
		T_ASSERT(t_skb_defer_flush() > 0);
		found = t_devmem_pools(e->d.ifindex, e->d.dmabuf_id, &inflight);
		if (!found || inflight <= RC_POOL_CACHE)
			break;
		usleep(50000);
	}
	if (!found)
		T_FAIL("the devmem pool of dma-buf %u vanished while bound", e->d.dmabuf_id);
	if (inflight > RC_POOL_CACHE)
		T_FAIL("%llu net_iovs of dma-buf %u in flight with every socket closed; the pool caches at most %d",
		       (unsigned long long)inflight, e->d.dmabuf_id, RC_POOL_CACHE);
	t_log("sockets closed: devmem pool inflight %llu (<= %d, the pool's own caches)",
	      (unsigned long long)inflight, RC_POOL_CACHE);
}

void rc_teardown(struct rc_env *e)
{
	uint64_t inflight = 0;
	int found;

	if (e->lfd >= 0)
		close(e->lfd);
	gpud_binding_free(e->b);
	found = wait_pools_gone(e, &inflight);
	if (found)
		T_FAIL("devmem pool of dma-buf %u not destroyed after unbind (inflight %llu)",
		       e->d.dmabuf_id, (unsigned long long)inflight);
	t_log("unbound: devmem pool destroyed");
	gpud_nic_free(e->d.nic);
	gpud_mem_free(e->d.mem);
	t_netpair_teardown(&e->d.np);
}

long long rc_netstat(const char *group, const char *name)
{
	static const char *const files[] = { "/proc/net/netstat", "/proc/net/snmp" };
	char names[4096], vals[4096];
	size_t glen = strlen(group);

	for (size_t f = 0; f < 2; f++) {
		FILE *fp = fopen(files[f], "r");

		if (!fp)
			continue;
		while (fgets(names, sizeof(names), fp) && fgets(vals, sizeof(vals), fp)) {
			char *sn, *sv, *n, *v;

			if (strncmp(names, group, glen) || names[glen] != ':')
				continue;
			n = strtok_r(names + glen + 1, " \n", &sn);
			v = strtok_r(vals + glen + 1, " \n", &sv);
			for (; n && v; n = strtok_r(NULL, " \n", &sn), v = strtok_r(NULL, " \n", &sv))
				if (!strcmp(n, name)) {
					fclose(fp);
					return atoll(v);
				}
		}
		fclose(fp);
	}
	return -1;
}

void rc_tcpext_snap(const char *const *names, size_t n, long long *vals)
{
	for (size_t i = 0; i < n; i++)
		vals[i] = rc_netstat("TcpExt", names[i]);
}

void rc_tcpext_delta(const char *const *names, size_t n, long long *vals)
{
	char line[1024];
	int len = 0;

	for (size_t i = 0; i < n; i++) {
		vals[i] = rc_netstat("TcpExt", names[i]) - vals[i];
		if (len < (int)sizeof(line))
			len += snprintf(line + len, sizeof(line) - (size_t)len, " %s %lld",
					names[i], vals[i]);
	}
	t_log("receiver TcpExt deltas:%s", line);
}
