// SPDX-License-Identifier: MIT
/*
 * The network fixture works and always cleans up: TCP flows across the
 * pair, and the namespaces are gone after teardown and after a SIGKILL.
 */
#define _GNU_SOURCE
#include "gpud_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static bool ns_exists(const char *name)
{
	char path[96];

	snprintf(path, sizeof(path), "/var/run/netns/%s", name);
	return access(path, F_OK) == 0;
}

static void tcp_roundtrip(struct t_netpair *p)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(5201) };
	char buf[4096];
	int ls, cs, one = 1;
	size_t got = 0;
	pid_t pid;
	int st;

	T_ASSERT_OK(t_netpair_enter(p, 0));
	ls = socket(AF_INET, SOCK_STREAM, 0);
	T_ASSERT(ls >= 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, p->addr[0], &sa.sin_addr);
	T_ASSERT_EQ(0, bind(ls, (void *)&sa, sizeof(sa)));
	T_ASSERT_EQ(0, listen(ls, 1));

	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		int s, off = 0;

		if (t_netpair_enter(p, 1))
			_exit(2);
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(s, (void *)&sa, sizeof(sa)))
			_exit(3);
		for (int i = 0; i < 256; i++) {
			t_pattern_fill(42, off, buf, sizeof(buf));
			if (write(s, buf, sizeof(buf)) != sizeof(buf))
				_exit(4);
			off += sizeof(buf);
		}
		close(s);
		_exit(0);
	}
	cs = accept(ls, NULL, NULL);
	T_ASSERT(cs >= 0);
	for (;;) {
		ssize_t n = read(cs, buf, sizeof(buf));
		long bad;

		if (n < 0)
			T_FAIL("read: %s", strerror(errno));
		if (n == 0)
			break;
		bad = t_pattern_check(42, got, buf, n);
		if (bad >= 0)
			T_FAIL("byte %zu differs", got + bad);
		got += n;
	}
	T_ASSERT_EQ(256 * 4096, got);
	T_ASSERT_EQ(pid, waitpid(pid, &st, 0));
	T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(cs);
	close(ls);
}

int main(void)
{
	struct t_netpair p;
	char ns0[32];
	int pfd[2], st;
	pid_t pid;

	t_netpair_setup(&p, T_LINK_VETH);
	T_ASSERT(ns_exists(p.ns[0]) && ns_exists(p.ns[1]));
	T_ASSERT(p.ifindex[0] > 0 && p.ifindex[1] > 0);
	T_ASSERT_EQ(0, t_netpair_exec(&p, 1, "ping -c1 -W2 %s >/dev/null || "
				      "ip -4 route get %s >/dev/null", p.addr[0], p.addr[0]));
	tcp_roundtrip(&p);
	snprintf(ns0, sizeof(ns0), "%s", p.ns[0]);
	t_netpair_teardown(&p);
	T_ASSERT(!ns_exists(ns0));

	/* A test killed with SIGKILL still leaves nothing behind. */
	T_ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		struct t_netpair q;

		close(pfd[0]);
		t_netpair_setup(&q, T_LINK_VETH);
		if (write(pfd[1], q.ns[0], sizeof(q.ns[0])) != sizeof(q.ns[0]))
			_exit(2);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	T_ASSERT_EQ(sizeof(ns0), read(pfd[0], ns0, sizeof(ns0)));
	T_ASSERT(ns_exists(ns0));
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	for (int i = 0; i < 100 && ns_exists(ns0); i++)
		usleep(50000);
	if (ns_exists(ns0))
		T_FAIL("namespace %s survived its test's SIGKILL", ns0);
	t_log("ok: veth pair carried 1 MiB byte-exact; cleanup after exit and SIGKILL");
	return T_EXIT_PASS;
}
