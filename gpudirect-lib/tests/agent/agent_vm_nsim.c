// SPDX-License-Identifier: MIT
/*
 * vm: gpudd on a patched-netdevsim port with 8 queues. Four unprivileged
 * receivers (uid 65534, in the agent's group) each bind their own udmabuf
 * through the agent to the queue of their local rank and receive a pattern
 * stream byte-exact in devmem mode, concurrently; meanwhile 200 plain TCP
 * connections to the same port's address must all succeed (RSS never sends
 * them to a bound queue). One more receiver is killed with SIGKILL
 * mid-transfer: its binding, queue and rule disappear from the agent and the
 * NIC, the others are not disturbed. A rule whose socket the client closes
 * goes within seconds, while the client stays. A bound client asking for a
 * rule for another process's connection is refused, and that process reads
 * its whole stream plainly.
 *
 * The port is found with 4 of its 8 channels in use: gpudd, given the pool
 * 1-7, raises the count to 8 before its first client and spreads RSS over
 * the new count at once; the held queues (the new ones among them) stay out
 * of RSS. A pool past the driver's maximum stops gpudd with the fix. When
 * gpudd stops, the channel count, header split and the RSS table are as
 * they were before it started; after a kill -9 the next gpudd puts them
 * back.
 *
 * Then `gpudctl agent bench` times a rank's connect + bind through it.
 *
 * argv[1] = gpudd, argv[2] = gpudctl. The netdevsim pair is the shared
 * fixture's (t_netpair, 8 queues). Outside the VM: skip.
 */
#define _GNU_SOURCE
#include "gpud_devmem_test.h"
#include "nic/nic_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define IF_A "nsim0"
#define ADDR_A "198.18.0.1"
#define NRECV 4
#define KILLED NRECV	/* the fifth receiver, rank 4, is killed */
#define PORT0 6100
#define PLAIN_PORT 6200
#define NPLAIN 200
#define TOTAL (48ull << 20)
#define MEM_SIZE (16u << 20)
#define NQUEUES 8	/* the driver's maximum */
#define NQUEUES0 4	/* in use when gpudd starts */

static char sock_path[108], dir[64], logpath[96], state[96];
static struct t_netpair np;
static pid_t agent_pid;
static int ns_a, ns_b;
static int hold[2] = { -1, -1 };	/* receivers stay bound until its write end closes */

static void cleanup(void)
{
	char cmd[400];

	if (agent_pid > 0)
		kill(agent_pid, SIGKILL);
	/* the namespaces and netdevsim devices are the fixture guardian's */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "cleanup: %s failed\n", cmd);
}

/* gpudd with --pool @pool (NULL: none); its log replaces the last one. */
static pid_t agent_spawn(const char *gpudd, const char *group, const char *pool)
{
	pid_t pid = fork();

	T_ASSERT(pid >= 0);
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 2);
		if (pool)
			execl(gpudd, "gpudd", "-f", "-s", sock_path, "-g", group, "--pool", pool,
			      (char *)NULL);
		else
			execl(gpudd, "gpudd", "-f", "-s", sock_path, "-g", group, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void agent_start(const char *gpudd, const char *group, const char *pool)
{
	agent_pid = agent_spawn(gpudd, group, pool);
	for (int i = 0; i < 400 && access(sock_path, F_OK); i++)
		usleep(50000);
	if (access(sock_path, F_OK))
		T_FAIL("gpudd did not listen on %s within 20 s (log %s)", sock_path, logpath);
}

static void agent_log(char *buf, size_t len)
{
	FILE *f = fopen(logpath, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	buf[n] = 0;
	if (f)
		fclose(f);
}

/* RX queues of IF_A now, read directly. */
static int rx_queues(void)
{
	struct gpud_agent_opts off = { .sz = sizeof(off), .mode = GPUD_AGENT_OFF };
	struct gpud_nic *nic;
	int n;

	T_ASSERT_OK(gpud_nic_open_opts(IF_A, &off, &nic));
	n = gpud_nic_rx_queues(nic);
	gpud_nic_free(nic);
	return n;
}

/* The NIC as the test finds it: @n combined channels, set behind gpud_nic's back (kept). */
static void set_channels_kept(unsigned int n)
{
	struct gpud_channels ch = { .combined = n };
	struct gpud_nl *eth;

	T_ASSERT_OK(gpud_ethtool_open(&eth));
	T_ASSERT_OK(gpud_ethtool_set_channels(eth, (int)if_nametoindex(IF_A), &ch,
					      GPUD_CH_COMBINED));
	gpud_nl_close(eth);
	T_ASSERT_EQ(n, rx_queues());
}

/* A pool past the driver's maximum: gpudd does not start, names the maximum and the fix. */
static void pool_too_big(const char *gpudd, const char *group)
{
	char text[2048];
	pid_t pid = agent_spawn(gpudd, group, IF_A ":1-8");
	int st;

	T_ASSERT_EQ(pid, waitpid(pid, &st, 0));
	agent_log(text, sizeof(text));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 1 || !strstr(text, "at most 8") ||
	    !strstr(text, "--pool " IF_A ":1-7"))
		T_FAIL("pool 1-8 on an 8-channel maximum: status 0x%x, log: %s", st, text);
	T_ASSERT_EQ(NQUEUES0, rx_queues());
	t_log("pool past the driver's maximum: %s", text);
}

struct recv_report {
	uint64_t bytes, devmem;
	double setup_ms;	/* connect + hello + queue + header split + bind, through gpudd */
	unsigned int queue;
	int err;
	char msg[400];
};

/* Sender in namespace b: connects, waits for the receiver's go byte (its flow rule is in), sends. */
static pid_t sender(uint16_t port, uint64_t seed, uint64_t total)
{
	static char buf[128 << 10];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	pid_t pid = fork();
	uint64_t off = 0;
	char go;
	int fd;

	T_ASSERT(pid >= 0);
	if (pid)
		return pid;
	close(hold[1]);
	if (setns(ns_b, CLONE_NEWNET))
		_exit(2);
	t_pin_cpu(1);
	inet_pton(AF_INET, ADDR_A, &a.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	for (int t = 0; connect(fd, (struct sockaddr *)&a, sizeof(a)); t++) {
		if (t > 1000)
			_exit(3);
		close(fd);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		usleep(10000);
	}
	if (recv(fd, &go, 1, MSG_WAITALL) != 1)
		_exit(5);
	while (off < total) {
		size_t len = sizeof(buf) < total - off ? sizeof(buf) : (size_t)(total - off);

		t_pattern_fill(seed, off, buf, len);
		for (size_t done = 0; done < len;) {
			ssize_t w = send(fd, buf + done, len - done, MSG_NOSIGNAL);

			if (w <= 0)
				_exit(4);
			done += (size_t)w;
		}
		off += len;
	}
	close(fd);
	_exit(0);
}

/*
 * Receiver of rank @rank: memory made as root (/dev/udmabuf is root's),
 * then uid 65534 for everything else: agent, bind, rule, receive.
 */
static void __attribute__((noreturn)) receiver(unsigned int rank, int rfd, int progress_fd,
					       int hold_fd)
{
	struct gpud_agent_opts ao = { .sz = sizeof(ao), .path = sock_path };
	struct gpud_rx_opts ro = { .sz = sizeof(ro), .mode = GPUD_RX_DEVMEM };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT0 + rank) };
	struct recv_report rep = { 0 };
	struct gpud_mem_opts mo = { .sz = sizeof(mo) };
	static struct gpud_frag f[256];
	struct gpud_binding *b = NULL;
	struct gpud_nic *nic = NULL;
	struct gpud_rx *rx = NULL;
	struct gpud_mem *mem = NULL;
	struct gpud_rx_stats st;
	uint32_t rule;
	int lfd, cfd = -1, one = 1, n;
	uint64_t off = 0, next_report = 4u << 20;
	double t0;

	close(hold[1]);
	t_pin_cpu(0);
	rep.err = gpud_mem_create(GPUD_MEM_HOST, MEM_SIZE, &mo, &mem);
	if (rep.err)
		goto out;
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) {
		rep.err = -EPERM;
		goto out;
	}
	t0 = t_now();
	rep.err = gpud_nic_open_opts(IF_A, &ao, &nic);
	if (!rep.err && !gpud_nic_via_agent(nic))
		rep.err = -ENOTCONN;
	if (!rep.err)
		rep.err = gpud_nic_alloc_queues(nic, 1, (int)rank, &rep.queue);
	if (!rep.err)
		rep.err = gpud_nic_set_header_split(nic, true);
	if (!rep.err)
		rep.err = gpud_bind_rx_opts(gpud_nic_ifindex(nic), mem, &rep.queue, 1, &ao, &b);
	if (rep.err)
		goto out;
	rep.setup_ms = (t_now() - t0) * 1e3;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, ADDR_A, &a.sin_addr);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1)) {
		rep.err = -errno;
		goto out;
	}
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	rep.err = cfd < 0 ? -errno : gpud_nic_add_flow_sock(nic, cfd, rep.queue, &rule);
	if (rep.err)
		goto out;
	if (send(cfd, "g", 1, MSG_NOSIGNAL) != 1) {
		rep.err = -errno;
		goto out;
	}
	ro.binding = b;
	rep.err = gpud_rx_open(cfd, &ro, &rx);
	if (rep.err)
		goto out;
	while ((n = t_devmem_recv(rx, mem, f, 256, 0, 0x5eed + rank, &off)) > 0) {
		gpud_rx_release(rx, f, (size_t)n);
		if (progress_fd >= 0 && off >= next_report) {
			if (write(progress_fd, "p", 1) != 1)
				break;
			next_report = UINT64_MAX;	/* once */
		}
	}
	if (n < 0)
		rep.err = n;
	gpud_rx_get_stats(rx, &st);
	rep.bytes = st.bytes;
	rep.devmem = st.bytes_devmem;
out:
	if (rep.err)
		snprintf(rep.msg, sizeof(rep.msg), "%s", gpud_errmsg());
	if (write(rfd, &rep, sizeof(rep)) != sizeof(rep))
		_exit(9);
	/* Bound until the parent's plain TCP check is over (it closes the pipe). */
	while (read(hold_fd, &rep.queue, 1) > 0)
		;
	gpud_rx_free(rx);
	if (cfd >= 0)
		close(cfd);
	gpud_binding_free(b);
	gpud_nic_free(nic);
	gpud_mem_free(mem);
	_exit(rep.err ? 1 : 0);
}

/*
 * Connection @i's bytes, or another's whole: accept order is handshake
 * completion order, and under ASan in TCG a lost final ACK once let
 * connection 90 complete before 89 (both arrived exact, swapped).
 */
static bool plain_seed_matches(const char *buf, size_t len, int i)
{
	if (t_pattern_check(1000 + (uint64_t)i, 0, buf, len) < 0)
		return true;
	for (int j = 0; j < NPLAIN; j++) {
		if (j != i && t_pattern_check(1000 + (uint64_t)j, 0, buf, len) < 0) {
			t_log("plain connection %d accepted as number %d: exact, reordered", j, i);
			return true;
		}
	}
	return false;
}

/* Plain TCP meanwhile: a listener in a, NPLAIN connections from b, 16 KiB each, checked. */
static int plain_tcp(void)
{
	static char buf[16 << 10];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PLAIN_PORT) };
	int lfd, one = 1, failed = 0;
	pid_t pid;

	inet_pton(AF_INET, ADDR_A, &a.sin_addr);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	T_ASSERT_OK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0);
	T_ASSERT_OK(listen(lfd, 64) ? -errno : 0);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		if (setns(ns_b, CLONE_NEWNET))
			_exit(2);
		for (int i = 0; i < NPLAIN; i++) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);

			t_pattern_fill(1000 + (uint64_t)i, 0, buf, sizeof(buf));
			if (connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
			    send(fd, buf, sizeof(buf), MSG_NOSIGNAL) != (ssize_t)sizeof(buf))
				_exit(3);
			close(fd);
		}
		_exit(0);
	}
	for (int i = 0; i < NPLAIN; i++) {
		struct timeval tv = { .tv_sec = 30 };
		int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		ssize_t got = 0, r = 0;

		if (cfd < 0) {
			failed++;
			continue;
		}
		setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (got < (ssize_t)sizeof(buf) &&
		       (r = recv(cfd, buf + got, sizeof(buf) - (size_t)got, 0)) > 0)
			got += r;
		/* recv on a bound queue's data fails with EFAULT: that is the failure counted. */
		if (got != (ssize_t)sizeof(buf) || !plain_seed_matches(buf, sizeof(buf), i)) {
			t_log("plain connection %d: %zd of %zu bytes (%s)", i, got, sizeof(buf),
			      r < 0 ? strerror(errno) : "pattern");
			failed++;
		}
		close(cfd);
	}
	close(lfd);
	{
		int st;

		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			T_FAIL("the plain TCP client ended with 0x%x", st);
	}
	return failed;
}

static void read_rss(uint32_t **t, uint32_t *size)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	T_ASSERT_OK(gpud_rss_get(fd, IF_A, t, size));
	close(fd);
}

/* Every RSS entry below @nq and outside @first..@last (held); true if @want is in it. */
static bool rss_check(unsigned int nq, unsigned int first, unsigned int last, unsigned int want)
{
	uint32_t *t, size;
	bool has = false;

	read_rss(&t, &size);
	for (uint32_t i = 0; i < size; i++) {
		if (t[i] >= nq || (t[i] >= first && t[i] <= last))
			T_FAIL("RSS entry %u is queue %u (queues %u, held %u-%u)", i, t[i], nq,
			       first, last);
		has |= t[i] == want;
	}
	free(t);
	return has;
}

static bool status_has(const char *needle)
{
	struct gpud_agent_opts o = { .sz = sizeof(o), .path = sock_path };
	char *json = NULL;
	bool has;

	T_ASSERT_OK(gpud_agent_status(&o, &json));
	has = strstr(json, needle) != NULL;
	if (!has)
		t_log("status without %s: %s", needle, json);
	free(json);
	return has;
}

static int queue_dmabuf(int ifindex, unsigned int q)
{
	struct gpud_queue_info qi[64];
	int n = gpud_queues_get(ifindex, qi, 64);

	for (int i = 0; i < n && i < 64; i++)
		if (qi[i].type == 0 && qi[i].id == q)
			return (int)qi[i].dmabuf_id;
	return -1;
}

static bool agent_lists_pid(pid_t pid)
{
	struct gpud_agent_opts o = { .sz = sizeof(o), .path = sock_path };
	char needle[32], *json = NULL;
	bool has;

	T_ASSERT_OK(gpud_agent_status(&o, &json));
	snprintf(needle, sizeof(needle), "\"pid\":%d", (int)pid);
	has = strstr(json, needle) != NULL;
	free(json);
	return has;
}

static uint32_t ntuple_rules(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uint32_t rules, table;
	bool any;

	T_ASSERT_OK(gpud_ntuple_count(fd, IF_A, &rules, &table, &any));
	close(fd);
	return rules;
}

static bool agent_lists_rule(uint32_t loc)
{
	struct gpud_agent_opts o = { .sz = sizeof(o), .path = sock_path };
	char needle[32], *json = NULL;
	bool has;

	T_ASSERT_OK(gpud_agent_status(&o, &json));
	snprintf(needle, sizeof(needle), "\"rule\":%u,", loc);
	has = strstr(json, needle) != NULL;
	free(json);
	return has;
}

/* Rules gpudd lists, and whether one steers to queue @q. */
static unsigned int agent_rules(unsigned int q, bool *to_q)
{
	struct gpud_agent_opts o = { .sz = sizeof(o), .path = sock_path };
	char needle[32], *json = NULL;
	unsigned int n = 0;

	T_ASSERT_OK(gpud_agent_status(&o, &json));
	for (const char *p = json; (p = strstr(p, "\"rule\":")); p++)
		n++;
	snprintf(needle, sizeof(needle), ",\"queue\":%u,\"flow\"", q);
	*to_q = strstr(json, needle) != NULL;
	free(json);
	return n;
}

/*
 * The NIC holds exactly the rules gpudd lists, none to the killed
 * receiver's queue @q: its rule went from the NIC, not only from the agent.
 * Counted between two looks that agree, as a survivor may be adding its own.
 */
static void nic_rules_as_listed(unsigned int q)
{
	for (int tries = 0; tries < 100; tries++) {
		bool to_q, to_q2;
		unsigned int a = agent_rules(q, &to_q), nic = ntuple_rules();

		if (a != agent_rules(q, &to_q2))
			continue;
		if (to_q || nic != a)
			T_FAIL("after SIGKILL: gpudd lists %u rule(s)%s, the NIC has %u", a,
			       to_q ? ", one to the killed receiver's queue" : "", nic);
		t_log("after SIGKILL: %u rule(s) on the NIC, as gpudd lists, none to queue %u",
		      nic, q);
		return;
	}
	T_FAIL("gpudd's rule list kept changing");
}

static bool agent_has_rules(void)
{
	struct gpud_agent_opts o = { .sz = sizeof(o), .path = sock_path };
	char *json = NULL;
	bool has;

	T_ASSERT_OK(gpud_agent_status(&o, &json));
	has = strstr(json, "\"rules\":[{") != NULL;
	free(json);
	return has;
}

/*
 * A rule goes with its connection, not only with its client: the client
 * closes the steered socket and keeps its agent connection (no FLOW_DEL);
 * gpudd's sock_diag sweep removes the rule within a few seconds, and the
 * client's other state stays.
 */
static void rule_goes_with_conn(void)
{
	struct gpud_agent_opts ao = { .sz = sizeof(ao), .path = sock_path };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PLAIN_PORT + 1) };
	double t0 = t_now();
	int lfd, cfd, one = 1, pfd[2];
	struct gpud_nic *nic;
	uint32_t before, loc;
	unsigned int q;
	pid_t pid;
	char c;

	/* the receivers have exited, but gpudd may not have seen their hang-ups yet */
	while (agent_has_rules()) {
		if (t_now() - t0 > 20)
			T_FAIL("20 s after the receivers exited gpudd still lists rules");
		usleep(50000);
	}
	before = ntuple_rules();

	T_ASSERT_OK(gpud_nic_open_opts(IF_A, &ao, &nic));
	T_ASSERT_OK(gpud_nic_alloc_queues(nic, 1, -1, &q));
	inet_pton(AF_INET, ADDR_A, &a.sin_addr);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	T_ASSERT_OK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0);
	T_ASSERT_OK(listen(lfd, 1) ? -errno : 0);
	T_ASSERT_OK(pipe(pfd));
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		close(pfd[1]);
		if (setns(ns_b, CLONE_NEWNET) || connect(fd, (struct sockaddr *)&a, sizeof(a)))
			_exit(2);
		/* open until told: our side's close is the one under test */
		while (read(pfd[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(pfd[0]);
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	T_ASSERT(cfd >= 0);
	T_ASSERT_OK(gpud_nic_add_flow_sock(nic, cfd, q, &loc));
	T_ASSERT_EQ(before + 1, ntuple_rules());
	T_ASSERT(agent_lists_rule(loc));
	sleep(2);	/* two sweeps with the connection open: the rule stays */
	T_ASSERT(agent_lists_rule(loc));
	T_ASSERT_EQ(before + 1, ntuple_rules());
	close(cfd);
	t0 = t_now();
	while (agent_lists_rule(loc) || ntuple_rules() != before) {
		if (t_now() - t0 > 10)
			T_FAIL("10 s after the steered socket closed, rule %u is still there "
			       "(log %s)", loc, logpath);
		usleep(50000);
	}
	t_log("rule %u removed %.0f ms after its connection closed; the client stays", loc,
	      (t_now() - t0) * 1e3);
	T_ASSERT(agent_lists_pid(getpid()));
	T_ASSERT_EQ(-ENOENT, gpud_nic_del_flow(nic, loc));	/* gone: not ours any more */
	close(pfd[1]);
	waitpid(pid, NULL, 0);
	gpud_nic_free(nic);
}

/*
 * Another process's connection: a receiver holding a bound queue asks for a
 * rule for it by its 4-tuple (refused, -EPERM) and with a socket that is not
 * connected (refused by gpudd, -ENOTCONN); the NIC's rules do not change and
 * the other process reads its whole stream with plain recv() (had a byte of
 * it been steered into the asker's dma-buf, recv() would fail with EFAULT).
 */
#define STEAL_PORT (PLAIN_PORT + 2)
#define STEAL_SPORT 40123
#define STEAL_BYTES (4u << 20)

static void steal_refused(void)
{
	struct gpud_agent_opts ao = { .sz = sizeof(ao), .path = sock_path };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(STEAL_PORT) };
	struct gpud_mem_opts mo = { .sz = sizeof(mo) };
	struct gpud_flow f = { .sz = sizeof(f), .family = AF_INET };
	uint32_t before = ntuple_rules(), loc;
	int lfd, one = 1, go[2], st, tfd;
	struct gpud_binding *b;
	struct gpud_mem *mem;
	struct gpud_nic *nic;
	pid_t victim, snd;
	unsigned int q;

	T_ASSERT_OK(gpud_nic_open_opts(IF_A, &ao, &nic));
	T_ASSERT_OK(gpud_nic_alloc_queues(nic, 1, -1, &q));
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, MEM_SIZE, &mo, &mem));
	T_ASSERT_OK(gpud_bind_rx_opts(gpud_nic_ifindex(nic), mem, &q, 1, &ao, &b));
	inet_pton(AF_INET, ADDR_A, &a.sin_addr);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	T_ASSERT_OK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0);
	T_ASSERT_OK(listen(lfd, 1) ? -errno : 0);
	T_ASSERT_OK(pipe(go));
	victim = fork();	/* the other process: accepts, reads all of it plainly */
	T_ASSERT(victim >= 0);
	if (victim == 0) {
		static char buf[STEAL_BYTES];
		int cfd = accept4(lfd, NULL, NULL, 0);
		ssize_t got = 0, r = 1;

		while (cfd >= 0 && got < (ssize_t)sizeof(buf) &&
		       (r = recv(cfd, buf + got, sizeof(buf) - (size_t)got, 0)) > 0)
			got += r;
		if (got != (ssize_t)sizeof(buf))
			_exit(r < 0 && errno == EFAULT ? 4 : 3);
		_exit(t_pattern_check(77, 0, buf, sizeof(buf)) < 0 ? 0 : 5);
	}
	close(lfd);
	snd = fork();	/* from b, a source port the asker knows; sends when told */
	T_ASSERT(snd >= 0);
	if (snd == 0) {
		static char buf[STEAL_BYTES];
		struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(STEAL_SPORT) };
		int fd;
		char c;

		close(go[1]);
		if (setns(ns_b, CLONE_NEWNET))
			_exit(2);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
		    connect(fd, (struct sockaddr *)&a, sizeof(a)) || read(go[0], &c, 1) != 1)
			_exit(3);
		t_pattern_fill(77, 0, buf, sizeof(buf));
		_exit(send(fd, buf, sizeof(buf), MSG_NOSIGNAL) == (ssize_t)sizeof(buf) ? 0 : 4);
	}
	close(go[0]);
	usleep(200000);	/* connected: its 4-tuple exists */
	inet_pton(AF_INET, ADDR_A, f.dst_addr);
	inet_pton(AF_INET, "198.18.0.2", f.src_addr);
	f.dst_port = htons(STEAL_PORT);
	f.src_port = htons(STEAL_SPORT);
	T_ASSERT_EQ(-EPERM, gpud_nic_add_flow(nic, &f, q, &loc));
	t_log("rule by another connection's 4-tuple: %s", gpud_errmsg());
	tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	T_ASSERT_EQ(-ENOTCONN, gpud_nic_add_flow_sock(nic, tfd, q, &loc));
	t_log("rule with an unconnected socket: %s", gpud_errmsg());
	close(tfd);
	T_ASSERT_EQ(before, ntuple_rules());
	T_ASSERT_EQ(1, write(go[1], "g", 1));
	close(go[1]);
	T_ASSERT_EQ(snd, waitpid(snd, &st, 0));
	T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	T_ASSERT_EQ(victim, waitpid(victim, &st, 0));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		T_FAIL("the other process's stream, with the asker bound to queue %u: status 0x%x "
		       "(4: EFAULT, its bytes went to a dma-buf)", q, st);
	t_log("the other process read its %u MiB byte-exact, plainly; the asker's queue %u "
	      "got none of it", STEAL_BYTES >> 20, q);
	gpud_binding_free(b);
	gpud_mem_free(mem);
	gpud_nic_free(nic);
}

/*
 * gpudctl agent bench: a rank's start-up through gpudd, measured by the tool
 * users run, at four dma-buf sizes so the bind's fixed cost shows apart from
 * its per-page part. Nothing else talks to gpudd now, so its own service
 * time of each step must come out (agent_ms), and it cannot exceed what the
 * client waited for the step.
 */
static void bench(const char *gpudctl)
{
	char cmd[400], out[8192] = "";
	const char *p;
	int sizes = 0;
	size_t n;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "GPUD_AGENT=%s %s -j agent bench " IF_A " -n 5 --size 64K "
		 "--size 1M --size 4M --size 16M", sock_path, gpudctl);
	f = popen(cmd, "r");
	T_ASSERT(f != NULL);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	if (pclose(f))
		T_FAIL("'%s' failed: %s", cmd, out);
	for (p = strstr(out, "{\"size\":"); p; p = strstr(p + 1, "{\"size\":")) {
		double total, agent;
		size_t size;
		const char *m = strstr(p, "\"mean_ms\":{"), *a = strstr(p, "\"agent_ms\":{");
		const char *next = strstr(p + 1, "{\"size\":");

		if (next && a > next)
			a = NULL;	/* this size's is null */
		if (!m || !a || sscanf(p, "{\"size\":%zu", &size) != 1 ||
		    !strstr(m, "\"total\":") || !strstr(a, "\"total\":") ||
		    sscanf(strstr(m, "\"total\":"), "\"total\":%lf", &total) != 1 ||
		    sscanf(strstr(a, "\"total\":"), "\"total\":%lf", &agent) != 1)
			T_FAIL("size %d of the bench has no mean or agent time: %s", sizes, out);
		/* gpudd's service of a request lies inside the client's wait for it */
		if (agent <= 0 || agent > total)
			T_FAIL("%zu bytes: gpudd served for %.3f ms of a %.3f ms start-up: %s", size,
			       agent, total, out);
		t_log("bench, %zu-byte dma-buf: connect + bind %.1f ms (mean), %.1f ms of it in "
		      "gpudd", size, total, agent);
		sizes++;
	}
	T_ASSERT_EQ(4, sizes);
	T_ASSERT(strstr(out, "\"within_target\":") != NULL);
	/* TCG runs the guest many times slower than a node: logged, not judged */
	t_log("gpudctl agent bench (TCG guest): %s", out);
}

int main(int argc, char **argv)
{
	struct recv_report rep[NRECV + 1];
	int rfd[NRECV + 1][2], prog[2], failed, st, ifindex, running = 0;
	pid_t rpid[NRECV + 1], spid[NRECV + 1];
	uint32_t *rss0, *rss1, size0, size1;
	enum gpud_hds hds0, hds1;
	struct gpud_nic *probe;
	struct group *gr;
	char text[4096], c;
	double t0;

	if (argc < 3)
		T_FAIL("usage: agent_vm_nsim GPUDD GPUDCTL");
	t_require_vm();
	t_require_root();
	t_require_file("/dev/udmabuf", "host memory as a dma-buf (CONFIG_UDMABUF)");
	gr = getgrgid(65534);
	if (!gr)
		t_skip("no group with gid 65534 to stand in for the gpudirect group");
	snprintf(dir, sizeof(dir), "/tmp/gpudd-vm-%d", (int)getpid());
	snprintf(sock_path, sizeof(sock_path), "%s/run/gpudd.sock", dir);
	snprintf(logpath, sizeof(logpath), "%s/gpudd.log", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	mkdir(dir, 0755);
	chmod(dir, 0755);
	setenv("GPUD_STATE_DIR", state, 1);
	t_netpair_setup_queues(&np, T_LINK_NSIM, NQUEUES);
	atexit(cleanup);
	ns_a = np.nsfd[0];
	ns_b = np.nsfd[1];
	T_ASSERT_OK(t_netpair_enter(&np, 0));
	ifindex = (int)if_nametoindex(IF_A);

	/* What the NIC looked like before the agent: 4 of 8 channels in use. */
	set_channels_kept(NQUEUES0);
	{
		struct gpud_agent_opts off = { .sz = sizeof(off), .mode = GPUD_AGENT_OFF };

		T_ASSERT_OK(gpud_nic_open_opts(IF_A, &off, &probe));
		T_ASSERT_OK(gpud_nic_get_header_split(probe, &hds0));
		gpud_nic_free(probe);
	}
	read_rss(&rss0, &size0);
	pool_too_big(argv[1], gr->gr_name);
	agent_start(argv[1], gr->gr_name, IF_A ":1-7");
	/* Raised before the first client, RSS over all 8 at once (none held yet). */
	T_ASSERT_EQ(NQUEUES, rx_queues());
	T_ASSERT(status_has("\"rx_channels\":{\"count\":8,\"original\":4,\"changed\":true}"));
	T_ASSERT(rss_check(NQUEUES, NQUEUES, NQUEUES, NQUEUES - 1));
	t_log("gpudd raised %s from %d to %d RX channels; RSS spreads over all %d", IF_A,
	      NQUEUES0, NQUEUES, NQUEUES);

	T_ASSERT_OK(pipe(prog));
	T_ASSERT_OK(pipe(hold));
	for (int r = 0; r <= NRECV; r++) {
		T_ASSERT_OK(pipe(rfd[r]));
		rpid[r] = fork();
		T_ASSERT(rpid[r] >= 0);
		if (rpid[r] == 0)
			receiver((unsigned int)r, rfd[r][1], r == KILLED ? prog[1] : -1, hold[0]);
		close(rfd[r][1]);
		spid[r] = sender((uint16_t)(PORT0 + r), 0x5eed + (uint64_t)r, TOTAL);
	}
	close(prog[1]);
	close(hold[0]);
	/* Kill the fifth receiver once it has 4 MiB: mid-transfer. */
	if (read(prog[0], &c, 1) != 1)
		T_FAIL("the receiver to be killed never got going (see the agent log %s)", logpath);
	T_ASSERT(agent_lists_pid(rpid[KILLED]));
	kill(rpid[KILLED], SIGKILL);
	waitpid(rpid[KILLED], NULL, 0);
	t0 = t_now();
	while (agent_lists_pid(rpid[KILLED]) || queue_dmabuf(ifindex, 8 - 1 - KILLED) > 0) {
		if (t_now() - t0 > 20)
			T_FAIL("20 s after SIGKILL: agent still lists pid %d, or queue %d still bound "
			       "(dma-buf %d)", (int)rpid[KILLED], 8 - 1 - KILLED,
			       queue_dmabuf(ifindex, 8 - 1 - KILLED));
		usleep(50000);
	}
	t_log("killed receiver's state gone %.0f ms after SIGKILL", (t_now() - t0) * 1e3);
	nic_rules_as_listed(8 - 1 - KILLED);
	/* Held: 7..4, all four raised by gpudd; the killed one's queue 3 is back in RSS. */
	T_ASSERT(rss_check(NQUEUES, NQUEUES - NRECV, NQUEUES - 1, NQUEUES - 1 - KILLED));

	failed = plain_tcp();
	for (int r = 0; r < NRECV; r++)
		running += queue_dmabuf(ifindex, 7u - (unsigned int)r) > 0;
	t_log("plain TCP meanwhile: %d of %d connections failed; %d of %d queues still bound "
	      "after it (they all stay bound until this check ends)", failed, NPLAIN, running,
	      NRECV);
	T_ASSERT_EQ(0, failed);
	T_ASSERT_EQ(NRECV, running);
	close(hold[1]);

	for (int r = 0; r < NRECV; r++) {
		T_ASSERT_EQ((ssize_t)sizeof(rep[r]), read(rfd[r][0], &rep[r], sizeof(rep[r])));
		waitpid(rpid[r], &st, 0);
		if (rep[r].err)
			T_FAIL("receiver %d: %d: %s", r, rep[r].err, rep[r].msg);
		t_log("receiver %d (uid 65534): queue %u, %llu bytes, %llu by devmem; connect + "
		      "bind through gpudd %.1f ms", r, rep[r].queue,
		      (unsigned long long)rep[r].bytes, (unsigned long long)rep[r].devmem,
		      rep[r].setup_ms);
		T_ASSERT_EQ(7 - r, rep[r].queue);
		T_ASSERT_EQ(TOTAL, rep[r].bytes);
		T_ASSERT(rep[r].devmem >= TOTAL / 100 * 99);
		waitpid(spid[r], &st, 0);
		T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	waitpid(spid[KILLED], NULL, 0);
	rule_goes_with_conn();
	steal_refused();
	bench(argv[2]);

	kill(agent_pid, SIGTERM);
	waitpid(agent_pid, &st, 0);
	agent_pid = 0;
	T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	{
		struct gpud_agent_opts off = { .sz = sizeof(off), .mode = GPUD_AGENT_OFF };

		T_ASSERT_OK(gpud_nic_open_opts(IF_A, &off, &probe));
		T_ASSERT_OK(gpud_nic_get_header_split(probe, &hds1));
		gpud_nic_free(probe);
	}
	T_ASSERT_EQ(NQUEUES0, rx_queues());
	read_rss(&rss1, &size1);
	T_ASSERT_EQ(hds0, hds1);
	T_ASSERT_EQ(size0, size1);
	T_ASSERT(!memcmp(rss0, rss1, size0 * sizeof(*rss0)));
	free(rss1);

	/* gpudd killed with SIGKILL holding queues: the next one restores the NIC. */
	agent_start(argv[1], gr->gr_name, IF_A ":1-7");
	{
		struct gpud_agent_opts ao = { .sz = sizeof(ao), .path = sock_path };
		unsigned int q[2];

		T_ASSERT_OK(gpud_nic_open_opts(IF_A, &ao, &probe));
		T_ASSERT_OK(gpud_nic_alloc_queues(probe, 2, -1, q));
		T_ASSERT(rss_check(NQUEUES, NQUEUES - 2, NQUEUES - 1, 0));	/* 7 and 6 left RSS */
		kill(agent_pid, SIGKILL);
		waitpid(agent_pid, NULL, 0);
		agent_pid = 0;
		T_ASSERT(gpud_nic_alloc_queues(probe, 1, -1, q) < 0);
		t_log("client after gpudd's SIGKILL: %s", gpud_errmsg());
		gpud_nic_free(probe);
	}
	T_ASSERT_EQ(NQUEUES, rx_queues());	/* SIGKILL: nothing ran */
	unlink(sock_path);
	/* No pool this time, so what it restored is what is left to see. */
	agent_start(argv[1], gr->gr_name, NULL);
	read_rss(&rss1, &size1);
	agent_log(text, sizeof(text));
	if (memcmp(rss0, rss1, size0 * sizeof(*rss0)) || rx_queues() != NQUEUES0 ||
	    !strstr(text, "1 channel count(s)"))
		T_FAIL("the restarted gpudd did not restore the RSS table and %d RX channels "
		       "(now %d; log: %s)", NQUEUES0, rx_queues(), text);
	free(rss1);
	kill(agent_pid, SIGTERM);
	waitpid(agent_pid, &st, 0);
	agent_pid = 0;
	free(rss0);
	t_log("agent_vm_nsim: pass");
	return T_EXIT_PASS;
}
