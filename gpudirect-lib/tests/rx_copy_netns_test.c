// SPDX-License-Identifier: MIT
/*
 * netns: copy-mode receive through gpud_rx over a veth pair on the host
 * kernel (which has no devmem-capable NIC and no /dev/udmabuf).
 *
 *  1. AUTO without a binding reports copy and why; 1 GiB of a pattern from a
 *     sender in namespace b arrives byte-exact in a host gpud_mem, through
 *     gpud_rx_recv/gpud_rx_release; stats add up; EOF is 0, twice.
 *  2. DEVMEM demanded without a binding fails with a message, out untouched.
 *  3. The copy ring fills when fragments are held (-ENOBUFS), and recovers.
 *  4. Release misuse: twice, altered flags -> -EINVAL, nothing released.
 *  5. The sender is killed mid-stream: the data before is intact, the end
 *     is reported as EOF (or a reset), stickily, and nothing leaks (ASan).
 *  6. Not a TCP socket -> a clear error.
 *  7. No wasted reads: with everything already queued, one call is one
 *     recv() (a short read means the queue is empty; no EAGAIN probe).
 */
#define _GNU_SOURCE
#include "gpud_test.h"

#include <gpudirect/gpudirect.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PORT 5201
#define SEED 0x5eed
#define BIG (1ull << 30)
#define MAXF 64

static struct t_netpair np;

/* Sender in namespace b: @total bytes of the pattern (0 = until killed). */
static void sender(uint64_t total)
{
	int fd;

	close(np.guardian_fd);
	if (t_netpair_enter(&np, 1))
		_exit(2);
	fd = t_tcp_connect(np.addr[0], PORT, 200);
	if (fd < 0)
		_exit(3);
	if (t_send_pattern(fd, SEED, total))
		_exit(4);
	close(fd);
	_exit(0);
}

static int listen_a(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	T_ASSERT(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, np.addr[0], &a.sin_addr);
	T_ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0);
	T_ASSERT_OK(listen(fd, 4) ? -errno : 0);
	return fd;
}

/* Forks a sender and returns the accepted connection. */
static int connect_pair(int lfd, uint64_t total, pid_t *pid)
{
	int cfd;

	*pid = fork();
	T_ASSERT(*pid >= 0);
	if (*pid == 0)
		sender(total);
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	T_ASSERT(cfd >= 0);
	return cfd;
}

static int wait_child(pid_t pid)
{
	int st;

	T_ASSERT_EQ(pid, waitpid(pid, &st, 0));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void check_frags(struct gpud_rx *rx, const struct gpud_frag *f, int n, uint64_t *off)
{
	const uint8_t *base = gpud_mem_host_ptr(gpud_rx_copy_mem(rx));

	T_ASSERT(base);
	for (int i = 0; i < n; i++) {
		long bad;

		T_ASSERT(f[i].flags & GPUD_FRAG_COPY);
		T_ASSERT(f[i].offset + f[i].len <= gpud_mem_size(gpud_rx_copy_mem(rx)));
		bad = t_pattern_check(SEED, *off, base + f[i].offset, f[i].len);
		if (bad >= 0)
			T_FAIL("stream byte %llu (fragment %d at mem offset %llu) differs",
			       (unsigned long long)(*off + (uint64_t)bad), i,
			       (unsigned long long)f[i].offset);
		*off += f[i].len;
	}
}

static struct gpud_mem *host_mem(size_t size)
{
	struct gpud_mem_opts mo = { .sz = sizeof(mo), .flags = GPUD_MEM_F_NO_DMABUF };
	struct gpud_mem *m = NULL;

	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, size, &mo, &m));
	return m;
}

static void test_big(int lfd)
{
	struct gpud_rx_opts o = { .sz = sizeof(o), .mode = GPUD_RX_AUTO };
	struct gpud_frag f[MAXF];
	struct gpud_rx_stats st;
	struct gpud_rx *rx = NULL;
	uint64_t off = 0;
	double t0, dt;
	pid_t pid;
	int cfd, n;

	o.copy_mem = host_mem(16 << 20);
	cfd = connect_pair(lfd, BIG, &pid);
	T_ASSERT_OK(gpud_rx_open(cfd, &o, &rx));
	T_ASSERT_EQ(GPUD_RX_COPY, gpud_rx_mode(rx));
	T_ASSERT(strstr(gpud_rx_mode_reason(rx), "no dma-buf binding"));
	t_log("mode: %s", gpud_rx_mode_reason(rx));
	t0 = t_now();
	while ((n = gpud_rx_recv(rx, f, MAXF, 0)) > 0) {
		check_frags(rx, f, n, &off);
		T_ASSERT_OK(gpud_rx_release(rx, f, (size_t)n));
	}
	dt = t_now() - t0;
	T_ASSERT_OK(n);
	T_ASSERT_EQ(0, gpud_rx_recv(rx, f, MAXF, 0));	/* EOF stays EOF */
	T_ASSERT_EQ(BIG, off);
	gpud_rx_get_stats(rx, &st);
	T_ASSERT_EQ(BIG, st.bytes);
	T_ASSERT_EQ(BIG, st.bytes_copied);
	T_ASSERT_EQ(0, st.bytes_devmem);
	T_ASSERT_EQ(0, st.tokens_outstanding);
	T_ASSERT_EQ(0, wait_child(pid));
	t_log("copy mode: %llu bytes in %llu fragments, %llu recv calls, %.2f s, %.2f Gbit/s (validated)",
	      (unsigned long long)st.bytes, (unsigned long long)st.frags,
	      (unsigned long long)st.recv_calls, dt, st.bytes * 8 / dt / 1e9);
	gpud_rx_free(rx);
	gpud_mem_free(o.copy_mem);
	close(cfd);
}

static void test_devmem_without_binding(int lfd)
{
	struct gpud_rx_opts o = { .sz = sizeof(o), .mode = GPUD_RX_DEVMEM };
	struct gpud_rx *rx = (struct gpud_rx *)&o;	/* sentinel: must stay */
	pid_t pid;
	int cfd;

	cfd = connect_pair(lfd, 1 << 20, &pid);
	T_ASSERT_EQ(-EINVAL, gpud_rx_open(cfd, &o, &rx));
	T_ASSERT(rx == (struct gpud_rx *)&o);
	T_ASSERT(strstr(gpud_errmsg(), "gpud_bind_rx"));
	t_log("DEVMEM without binding: %s", gpud_errmsg());
	close(cfd);
	wait_child(pid);
}

static void test_ring_full_and_misuse(int lfd)
{
	struct gpud_rx_opts o = { .sz = sizeof(o), .copy_ring = 256 << 10, .copy_chunk = 64 << 10 };
	static struct gpud_frag held[4096];
	struct gpud_frag f[2], prev[2], bad;
	struct gpud_rx_stats st;
	struct gpud_rx *rx;
	uint64_t off = 0;
	size_t nheld = 0;
	int cfd, n, nprev = 0;
	pid_t pid;

	cfd = connect_pair(lfd, 8 << 20, &pid);
	/* copy_mem NULL: the library allocates its own host ring */
	T_ASSERT_OK(gpud_rx_open(cfd, &o, &rx));
	T_ASSERT(gpud_rx_copy_mem(rx) != NULL);
	for (;;) {
		n = gpud_rx_recv(rx, f, 1, 0);
		if (n == -ENOBUFS)
			break;
		T_ASSERT_EQ(1, n);
		T_ASSERT(nheld < sizeof(held) / sizeof(held[0]));
		check_frags(rx, f, 1, &off);
		held[nheld++] = f[0];
	}
	T_ASSERT(strstr(gpud_errmsg(), "release"));
	gpud_rx_get_stats(rx, &st);
	T_ASSERT_EQ(nheld, st.tokens_outstanding);
	T_ASSERT_EQ(256 << 10, off);	/* the whole ring, nothing lost */
	/* Misuse: an altered fragment, then a double release, release nothing. */
	bad = held[0];
	bad.flags = 0x80;
	T_ASSERT_EQ(-EINVAL, gpud_rx_release(rx, &bad, 1));
	T_ASSERT_OK(gpud_rx_release(rx, held, 1));
	T_ASSERT_EQ(-EINVAL, gpud_rx_release(rx, held, nheld));
	T_ASSERT(strstr(gpud_errmsg(), "not outstanding"));
	gpud_rx_get_stats(rx, &st);
	T_ASSERT_EQ(nheld - 1, st.tokens_outstanding);
	T_ASSERT_OK(gpud_rx_release(rx, held + 1, nheld - 1));
	/*
	 * Recovered: the rest of the stream arrives intact, each batch held
	 * until the next one is in (so released regions are reused while
	 * others are out), the last one still held at free.
	 */
	while ((n = gpud_rx_recv(rx, f, 2, 0)) > 0) {
		check_frags(rx, f, n, &off);
		T_ASSERT_OK(gpud_rx_release(rx, prev, (size_t)nprev));
		memcpy(prev, f, sizeof(f));
		nprev = n;
	}
	T_ASSERT_OK(n);
	T_ASSERT_EQ(8 << 20, off);
	gpud_rx_get_stats(rx, &st);
	T_ASSERT_EQ(nprev, st.tokens_outstanding);
	gpud_rx_free(rx);
	close(cfd);
	T_ASSERT_EQ(0, wait_child(pid));
}

static void test_peer_killed(int lfd)
{
	struct gpud_rx_opts o = { .sz = sizeof(o) };
	struct gpud_frag f[MAXF];
	struct gpud_rx *rx;
	uint64_t off = 0;
	pid_t pid;
	int cfd, n, end;

	cfd = connect_pair(lfd, 0, &pid);
	T_ASSERT_OK(gpud_rx_open(cfd, &o, &rx));
	while ((n = gpud_rx_recv(rx, f, MAXF, 0)) > 0) {
		check_frags(rx, f, n, &off);
		if (off >= (32 << 20) && pid) {
			kill(pid, SIGKILL);
			T_ASSERT_EQ(128 + SIGKILL, wait_child(pid));
			pid = 0;
		}
		T_ASSERT_OK(gpud_rx_release(rx, f, (size_t)n));
	}
	end = n;
	T_ASSERT(end == 0 || end == -ECONNRESET);
	T_ASSERT_EQ(end, gpud_rx_recv(rx, f, MAXF, 0));	/* sticky / EOF again */
	t_log("sender killed after %llu bytes: recv reported %d (%s)", (unsigned long long)off, end,
	      end ? gpud_errmsg() : "EOF");
	gpud_rx_free(rx);
	close(cfd);
}

/* Waits until @want bytes are queued on @fd (at most 10 s). */
static void wait_queued(int fd, int want)
{
	double t0 = t_now();
	int q = 0;

	while (t_now() - t0 < 10) {
		if (!ioctl(fd, FIONREAD, &q) && q >= want)
			return;
		usleep(2000);
	}
	T_FAIL("only %d of %d bytes arrived in 10 s", q, want);
}

static void test_no_wasted_reads(int lfd)
{
	struct gpud_rx_opts o = { .sz = sizeof(o), .mode = GPUD_RX_COPY };
	const int len = 40 << 10;	/* less than one read's room */
	struct gpud_frag f[MAXF];
	struct gpud_rx_stats st;
	struct gpud_rx *rx = NULL;
	uint64_t off = 0;
	pid_t pid;
	int cfd;

	o.copy_mem = host_mem(16 << 20);
	o.copy_chunk = 256 << 10;
	cfd = connect_pair(lfd, (uint64_t)len, &pid);
	T_ASSERT_EQ(0, wait_child(pid));
	wait_queued(cfd, len);
	T_ASSERT_OK(gpud_rx_open(cfd, &o, &rx));
	T_ASSERT_EQ(1, gpud_rx_recv(rx, f, MAXF, 0));
	T_ASSERT_EQ((uint32_t)len, f[0].len);
	check_frags(rx, f, 1, &off);
	gpud_rx_get_stats(rx, &st);
	if (st.recv_calls != 1)
		T_FAIL("%llu recv() calls for one batch that one read took whole",
		       (unsigned long long)st.recv_calls);
	T_ASSERT_OK(gpud_rx_release(rx, f, 1));
	T_ASSERT_EQ(0, gpud_rx_recv(rx, f, MAXF, 0));	/* then EOF, in a call of its own */
	gpud_rx_get_stats(rx, &st);
	T_ASSERT_EQ(2, st.recv_calls);
	gpud_rx_free(rx);
	gpud_mem_free(o.copy_mem);
	close(cfd);
}

static void test_not_tcp(void)
{
	struct gpud_rx *rx = NULL;
	int p[2], u;

	T_ASSERT_OK(pipe(p) ? -errno : 0);
	T_ASSERT_EQ(-ENOTSOCK, gpud_rx_open(p[0], NULL, &rx));
	T_ASSERT(rx == NULL);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	T_ASSERT_EQ(-EPROTONOSUPPORT, gpud_rx_open(u, NULL, &rx));
	T_ASSERT(strstr(gpud_errmsg(), "not a TCP"));
	close(u);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	int lfd;

	t_netpair_setup(&np, T_LINK_VETH);
	T_ASSERT_OK(t_netpair_enter(&np, 0));
	lfd = listen_a();
	test_not_tcp();
	test_devmem_without_binding(lfd);
	test_ring_full_and_misuse(lfd);
	test_peer_killed(lfd);
	test_no_wasted_reads(lfd);
	test_big(lfd);
	close(lfd);
	t_netpair_teardown(&np);
	t_log("rx_copy_netns: pass");
	return T_EXIT_PASS;
}
