// SPDX-License-Identifier: MIT
/*
 * netns: the devmem engine against the real kernel's recvmsg(MSG_SOCK_DEVMEM)
 * on a veth pair, with a pretended binding (white-box hook): veth cannot
 * bind a dma-buf, so the data arrives in host memory. AUTO must fall back to
 * copy with the reason and deliver the stream byte-exact through the copy
 * ring (staging + gpud_mem_write); DEVMEM must refuse on the first data.
 */
#define _GNU_SOURCE
#include "gpud_test.h"
#include "rx/rx_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PORT 5202
#define SEED 0xa070
#define TOTAL (64ull << 20)

static struct t_netpair np;

static void sender(void)
{
	int fd;

	close(np.guardian_fd);
	if (t_netpair_enter(&np, 1))
		_exit(2);
	fd = t_tcp_connect(np.addr[0], PORT, 200);
	if (fd < 0)
		_exit(3);
	if (t_send_pattern(fd, SEED, TOTAL))
		_exit(4);
	close(fd);
	_exit(0);
}

static int accept_one(int lfd, pid_t *pid)
{
	int cfd;

	*pid = fork();
	T_ASSERT(*pid >= 0);
	if (*pid == 0)
		sender();
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	T_ASSERT(cfd >= 0);
	return cfd;
}

static void run(int lfd, enum gpud_rx_mode mode)
{
	struct gpud_rx_opts o = { .sz = sizeof(o), .mode = mode };
	struct gpud_rx_hooks h = { .binding_id = 42 };
	static uint8_t buf[1 << 20];
	struct gpud_frag f[16];
	struct gpud_rx_stats st;
	struct gpud_rx *rx;
	uint64_t off = 0;
	pid_t pid;
	int cfd, n;

	cfd = accept_one(lfd, &pid);
	T_ASSERT_OK(gpud_rx_open_hooked(cfd, &o, &h, &rx));
	if (mode == GPUD_RX_DEVMEM) {
		T_ASSERT_EQ(-EOPNOTSUPP, gpud_rx_recv(rx, f, 16, 0));
		t_log("DEVMEM on veth: %s", gpud_errmsg());
		gpud_rx_free(rx);
		close(cfd);
		waitpid(pid, NULL, 0);
		return;
	}
	while ((n = gpud_rx_recv(rx, f, 16, 0)) > 0) {
		for (int i = 0; i < n; i++) {
			T_ASSERT(f[i].flags & GPUD_FRAG_COPY);
			T_ASSERT_OK(gpud_mem_read(gpud_rx_copy_mem(rx), f[i].offset, buf, f[i].len));
			T_ASSERT_EQ(-1, t_pattern_check(SEED, off, buf, f[i].len));
			off += f[i].len;
		}
		T_ASSERT_OK(gpud_rx_release(rx, f, (size_t)n));
	}
	T_ASSERT_OK(n);
	T_ASSERT_EQ(TOTAL, off);
	T_ASSERT_EQ(GPUD_RX_COPY, gpud_rx_mode(rx));
	T_ASSERT(strstr(gpud_rx_mode_reason(rx), "host memory"));
	t_log("AUTO on veth: %s", gpud_rx_mode_reason(rx));
	gpud_rx_get_stats(rx, &st);
	T_ASSERT_EQ(TOTAL, st.bytes_copied);
	T_ASSERT_EQ(0, st.tokens_outstanding);
	gpud_rx_free(rx);
	close(cfd);
	waitpid(pid, NULL, 0);
}

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	int lfd, one = 1;

	t_netpair_setup(&np, T_LINK_VETH);
	T_ASSERT_OK(t_netpair_enter(&np, 0));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, np.addr[0], &a.sin_addr);
	T_ASSERT_OK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0);
	T_ASSERT_OK(listen(lfd, 2) ? -errno : 0);
	run(lfd, GPUD_RX_DEVMEM);
	run(lfd, GPUD_RX_AUTO);
	close(lfd);
	t_netpair_teardown(&np);
	t_log("rx_auto_netns: pass");
	return T_EXIT_PASS;
}
