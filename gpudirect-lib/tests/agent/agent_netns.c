// SPDX-License-Identifier: MIT
/*
 * gpudd in a namespace of its own, on a veth with 4 RX queues (no devmem
 * NIC needed): who may connect, every kind of malformed request answered
 * with its own error while the agent keeps serving, flow rules only for a
 * connected socket of the agent's namespace, queues distinct per process
 * and released when a client is killed with SIGKILL, bind errors through
 * the agent the same as without it, and `gpudctl agent status -j`. The RX
 * channel count is the agent's: raised for a pool past the interface's
 * queues (a second veth, 2 of 8 in use), shown in the status, refused to a
 * client, put back at stop and, after a kill -9, by the next gpudd; a pool
 * past the driver's maximum stops gpudd with the fix.
 *
 * The "gpudirect" group of the test is an existing one (gid 65534, nogroup
 * on Debian), so nothing on the host is changed: uid 65534 is in it by its
 * primary gid, uid 40001 by a supplementary group, uid 40002 not at all.
 *
 * argv[1] = gpudd, argv[2] = gpudctl.
 */
#define _GNU_SOURCE
#include "gpud_test.h"
#include "proto.h"
#include "nic/nic_internal.h"

#include <gpudirect/gpudirect.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define IFQ "mq0"	/* the 4-queue veth end in namespace a */
#define PORT 5301

static struct t_netpair np;
static char sock_path[108], dir[64], logpath[96], group[64], state[96];
static pid_t agent_pid;

/* ---- a raw client: what the library does, but able to send anything ---- */

struct raw {
	int fd;
	uint32_t seq;
	struct gpud_proto_msg rep;
	uint8_t rbuf[GPUD_PROTO_REPLY_MAX];
};

static int raw_connect(struct raw *r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 20 };

	memset(r, 0, sizeof(*r));
	strcpy(sa.sun_path, sock_path);
	r->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	T_ASSERT(r->fd >= 0);
	if (connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -errno;
	/* A hung agent fails the test instead of hanging it. */
	setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return 0;
}

/* Sends @len bytes (+ @fd) without waiting for the reply. */
static int raw_post(struct raw *r, const void *p, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)p, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *cm;

		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (sendmsg(r->fd, &mh, MSG_NOSIGNAL) != (ssize_t)len)
		return -errno;
	return 0;
}

/*
 * The next reply's errno; -ETIMEDOUT if none. @sent, when not NULL: when
 * the agent sent it (SO_TIMESTAMPNS, which the caller turned on).
 */
static int raw_wait(struct raw *r, double *sent)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { r->rbuf, sizeof(r->rbuf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	char why[256];
	ssize_t n;

	n = recvmsg(r->fd, &mh, 0);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	if (sent) {
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		struct timespec ts;

		T_ASSERT(cm && cm->cmsg_type == SCM_TIMESTAMPNS);
		memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
		*sent = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
	}
	if (n == 0)
		return -ECONNRESET;
	if (gpud_proto_parse(r->rbuf, (size_t)n, sizeof(r->rbuf), &r->rep, why, sizeof(why)))
		T_FAIL("the agent's reply does not parse: %s", why);
	T_ASSERT_EQ(GPUD_MSG_REPLY, r->rep.type);
	T_ASSERT(gpud_proto_has(&r->rep, GPUD_A_ERRNO));
	return r->rep.err;
}

/* Sends @len bytes (+ @fd) and returns the reply's errno; -ETIMEDOUT if none. */
static int raw_send(struct raw *r, const void *p, size_t len, int fd)
{
	int err = raw_post(r, p, len, fd);

	return err ? err : raw_wait(r, NULL);
}

static uint8_t req[8192];

static void start(struct gpud_proto_buf *b, uint16_t ver, uint16_t type, struct raw *r)
{
	gpud_proto_start(b, req, sizeof(req), ver, type, ++r->seq);
}

static int send_buf(struct raw *r, struct gpud_proto_buf *b, int fd)
{
	int len = gpud_proto_finish(b);

	T_ASSERT(len > 0);
	return raw_send(r, req, (size_t)len, fd);
}

static int raw_hello(struct raw *r, uint32_t vmin, uint32_t vmax)
{
	struct gpud_proto_buf b;

	gpud_proto_start(&b, req, sizeof(req), (uint16_t)vmax, GPUD_MSG_HELLO, 0);
	gpud_proto_put_u32(&b, GPUD_A_VMIN, vmin);
	gpud_proto_put_u32(&b, GPUD_A_VMAX, vmax);
	gpud_proto_put_u64(&b, GPUD_A_FEATURES, GPUD_F_ALL | (1ull << 50));
	return send_buf(r, &b, -1);
}

static void expect_err(int want, int got, const struct raw *r, const char *needle,
		       const char *what)
{
	const char *msg = r->rep.msg ? r->rep.msg : "";

	if (got != want || (needle && !strstr(msg, needle)))
		T_FAIL("%s: expected %d with \"%s\", got %d \"%s\"", what, want,
		       needle ? needle : "", got, msg);
	t_log("%s: %d \"%s\"", what, got, msg);
}

static int raw_status(struct raw *r)
{
	struct gpud_proto_buf b;

	start(&b, 1, GPUD_MSG_STATUS, r);
	return send_buf(r, &b, -1);
}

/* The agent still answers this connection and a fresh one. */
static void still_serving(struct raw *r)
{
	struct raw fresh;

	T_ASSERT_EQ(0, raw_status(r));
	T_ASSERT(r->rep.text && strstr(r->rep.text, "\"clients\""));
	T_ASSERT_OK(raw_connect(&fresh));
	T_ASSERT_EQ(0, raw_hello(&fresh, 1, 1));
	close(fresh.fd);
}

static int alloc_queues(struct raw *r, const char *ifname, int attr, uint32_t v)
{
	struct gpud_proto_buf b;

	start(&b, 1, GPUD_MSG_ALLOC, r);
	gpud_proto_put_str(&b, GPUD_A_IFNAME, ifname, 16);
	gpud_proto_put_u32(&b, (uint16_t)attr, v);
	return send_buf(r, &b, -1);
}

/* ---- the agent ---- */

static void agent_start(void)
{
	snprintf(dir, sizeof(dir), "/tmp/gpudd-test-%d", (int)getpid());
	snprintf(sock_path, sizeof(sock_path), "%s/run/gpudd.sock", dir);
	snprintf(logpath, sizeof(logpath), "%s/gpudd.log", dir);
	mkdir(dir, 0755);
	chmod(dir, 0755);
	snprintf(state, sizeof(state), "%s/state", dir);
	/* Journals of this test stay in its own directory. */
	setenv("GPUD_STATE_DIR", state, 1);
	agent_pid = fork();
	T_ASSERT(agent_pid >= 0);
	if (agent_pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 2);
		execl(getenv("GPUDD"), "gpudd", "-f", "-s", sock_path, "-g", group, "--pool",
		      IFQ ":1-3", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		struct raw r;

		if (raw_connect(&r) == 0) {
			close(r.fd);
			return;
		}
		close(r.fd);
		usleep(50000);
	}
	T_FAIL("gpudd did not listen on %s within 10 s (log %s)", sock_path, logpath);
}

static void agent_stop(void)
{
	int st;

	kill(agent_pid, SIGTERM);
	T_ASSERT_EQ(agent_pid, waitpid(agent_pid, &st, 0));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		T_FAIL("gpudd ended with status 0x%x (log %s)", st, logpath);
	T_ASSERT(access(sock_path, F_OK) && errno == ENOENT);
	agent_pid = 0;
}

static void cleanup(void)
{
	char cmd[160];

	if (agent_pid > 0)
		kill(agent_pid, SIGKILL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (dir[0] && system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- access by group ---- */

/*
 * In a child as @uid/@gid (+ @supp), opens the NIC through the agent and
 * asks for a rank's queue; exits 0 on success, 10 + errno when refused
 * (the message then printed on stdout for the parent to read).
 */
static int as_user(uid_t uid, gid_t gid, const gid_t *supp, int nsupp, unsigned int rank,
		   char *msg, size_t mlen)
{
	struct gpud_agent_opts o = { .sz = sizeof(o), .path = sock_path };
	int pfd[2], st;
	pid_t pid;
	ssize_t n;

	T_ASSERT_OK(pipe(pfd));
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		struct gpud_nic *nic;
		unsigned int q;
		int err;

		close(pfd[0]);
		if (setgroups((size_t)nsupp, supp) || setgid(gid) || setuid(uid))
			_exit(2);
		err = gpud_nic_open_opts(IFQ, &o, &nic);
		if (!err && !gpud_nic_via_agent(nic))
			_exit(3);
		if (!err)
			err = gpud_nic_alloc_queues(nic, 1, (int)rank, &q);
		if (err) {
			dprintf(pfd[1], "%s", gpud_errmsg());
			_exit(10 + -err);
		}
		dprintf(pfd[1], "queue %u", q);
		gpud_nic_free(nic);
		_exit(0);
	}
	close(pfd[1]);
	n = read(pfd[0], msg, mlen - 1);
	msg[n > 0 ? n : 0] = 0;
	close(pfd[0]);
	T_ASSERT_EQ(pid, waitpid(pid, &st, 0));
	T_ASSERT(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_access(void)
{
	gid_t supp[1] = { 65534 };
	char msg[600];
	int rc;

	rc = as_user(65534, 65534, NULL, 0, 0, msg, sizeof(msg));
	if (rc)
		T_FAIL("uid 65534 (primary group %s) refused: exit %d: %s", group, rc, msg);
	T_ASSERT_STREQ("queue 3", msg);
	rc = as_user(40001, 40001, supp, 1, 1, msg, sizeof(msg));
	if (rc)
		T_FAIL("uid 40001 (supplementary group %s) refused: exit %d: %s", group, rc, msg);
	T_ASSERT_STREQ("queue 2", msg);
	rc = as_user(40002, 40002, NULL, 0, 0, msg, sizeof(msg));
	T_ASSERT_EQ(10 + EACCES, rc);
	if (!strstr(msg, group) || !strstr(msg, "40002"))
		T_FAIL("the refusal does not name the group %s and the uid: \"%s\"", group, msg);
	t_log("outsider refused: %s", msg);
}

/* ---- malformed requests ---- */

static void test_malformed(void)
{
	struct gpud_proto_buf b;
	struct raw r, r2;
	int memfd, len;

	T_ASSERT_OK(raw_connect(&r));
	/* Anything but hello first. */
	expect_err(-EPROTO, raw_status(&r), &r, "hello first", "status before hello");
	/* A hello with no common version: a clear error at connect. */
	expect_err(-EPROTONOSUPPORT, raw_hello(&r, 7, 9), &r, "1..1", "hello for 7..9");
	T_ASSERT_EQ(0, raw_hello(&r, 1, 3));
	T_ASSERT_EQ(1, r.rep.vmax);
	/* The unknown feature bit 50 is not agreed, the known ones are. */
	T_ASSERT_EQ(GPUD_F_ALL, r.rep.features);

	/* Truncated: the header claims more than arrived. */
	start(&b, 1, GPUD_MSG_STATUS, &r);
	gpud_proto_put_u32(&b, GPUD_A_RULE, 1);
	len = gpud_proto_finish(&b);
	expect_err(-EMSGSIZE, raw_send(&r, req, (size_t)len - 4, -1), &r, "truncated",
		   "truncated request");
	/* Oversized. */
	memset(req, 0, sizeof(req));
	expect_err(-EMSGSIZE, raw_send(&r, req, 5000, -1), &r, "4096", "oversized request");
	/* Garbage. */
	expect_err(-EBADMSG, raw_send(&r, "hello agent", 11, -1), &r, "shorter",
		   "11 bytes of text");
	/* A version other than the one agreed. */
	start(&b, 2, GPUD_MSG_STATUS, &r);
	expect_err(-EPROTO, send_buf(&r, &b, -1), &r, "agreed on 1", "version 2 message");
	/* An fd where none belongs, none where one does. */
	memfd = memfd_create("not-a-dmabuf", MFD_CLOEXEC);
	T_ASSERT(memfd >= 0);
	start(&b, 1, GPUD_MSG_STATUS, &r);
	expect_err(-EBADF, send_buf(&r, &b, memfd), &r, "where none belongs", "status + fd");
	start(&b, 1, GPUD_MSG_BIND, &r);
	gpud_proto_put_str(&b, GPUD_A_IFNAME, IFQ, 16);
	gpud_proto_put_u32(&b, GPUD_A_QUEUE, 1);
	expect_err(-EBADF, send_buf(&r, &b, -1), &r, "without its fd", "bind without fd");
	/* Unknown queue, unknown interface, unknown request type. */
	expect_err(-ERANGE, alloc_queues(&r, IFQ, GPUD_A_QUEUE, 9), &r, "not in the pool",
		   "queue 9");
	expect_err(-ENODEV, alloc_queues(&r, "nosuch0", GPUD_A_QUEUE, 1), &r, "nosuch0",
		   "unknown interface");
	start(&b, 1, 42, &r);
	expect_err(-EPROTO, send_buf(&r, &b, -1), &r, "unknown request type", "type 42");
	/* A second client asking for a queue the first holds. */
	T_ASSERT_EQ(0, alloc_queues(&r, IFQ, GPUD_A_RANK, 0));
	T_ASSERT_EQ(3, r.rep.queues[0]);
	T_ASSERT_OK(raw_connect(&r2));
	T_ASSERT_EQ(0, raw_hello(&r2, 1, 1));
	/* r2 is the same process: the agent lets a process use its own queues. */
	T_ASSERT_EQ(0, alloc_queues(&r2, IFQ, GPUD_A_RANK, 0));
	close(r2.fd);
	{
		char msg[600];
		int rc = as_user(65534, 65534, NULL, 0, 0, msg, sizeof(msg));

		T_ASSERT_EQ(10 + EEXIST, rc);
		if (!strstr(msg, "held by another client"))
			T_FAIL("taken queue: \"%s\"", msg);
		t_log("taken queue refused: %s", msg);
	}
	/* Bind through the agent fails as a direct bind does, same words. */
	{
		struct gpud_binding *bd = NULL;
		char direct[512];
		int ifindex = (int)if_nametoindex(IFQ);
		int derr;

		derr = gpud_bind_rx_fd(ifindex, memfd, (unsigned int[]){ 3 }, 1, &bd);
		T_ASSERT(derr < 0);
		snprintf(direct, sizeof(direct), "%s", gpud_errmsg());
		start(&b, 1, GPUD_MSG_BIND, &r);
		gpud_proto_put_str(&b, GPUD_A_IFNAME, IFQ, 16);
		gpud_proto_put_u32(&b, GPUD_A_QUEUE, 3);
		expect_err(derr, send_buf(&r, &b, memfd), &r, direct, "bind of a memfd");
	}
	close(memfd);
	/* Only one's own: another connection's queue, a binding or rule never made. */
	T_ASSERT_OK(raw_connect(&r2));
	T_ASSERT_EQ(0, raw_hello(&r2, 1, 1));
	start(&b, 1, GPUD_MSG_FREE, &r2);
	gpud_proto_put_str(&b, GPUD_A_IFNAME, IFQ, 16);
	gpud_proto_put_u32(&b, GPUD_A_QUEUE, 3);
	expect_err(-ENOENT, send_buf(&r2, &b, -1), &r2, "not held by this connection",
		   "free of another connection's queue");
	start(&b, 1, GPUD_MSG_UNBIND, &r2);
	gpud_proto_put_u32(&b, GPUD_A_BINDING, 12345);
	expect_err(-ENOENT, send_buf(&r2, &b, -1), &r2, "not made by this connection",
		   "unbind of a binding not ours");
	start(&b, 1, GPUD_MSG_FLOW_DEL, &r2);
	gpud_proto_put_str(&b, GPUD_A_IFNAME, IFQ, 16);
	gpud_proto_put_u32(&b, GPUD_A_RULE, 1);
	expect_err(-ENOENT, send_buf(&r2, &b, -1), &r2, "not made by this connection",
		   "delete of a rule not ours");
	close(r2.fd);
	still_serving(&r);
	close(r.fd);
}

/* A connection that never says hello is dropped (requests are bounded in time too). */
static void test_silent(void)
{
	struct timeval tv = { .tv_sec = 15 };
	struct raw r;
	char c;
	double t0 = t_now();

	T_ASSERT_OK(raw_connect(&r));
	setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	T_ASSERT_EQ(0, recv(r.fd, &c, 1, 0));
	t_log("silent connection dropped after %.1f s", t_now() - t0);
	T_ASSERT(t_now() - t0 >= 4.5);
	close(r.fd);
}

/* ---- flow rules ---- */

static int tcp_pair(int nsfd_client, int *lfd, int *cfd, int *afd)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	int one = 1, self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

	inet_pton(AF_INET, np.addr[0], &sa.sin_addr);
	*lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(*lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(*lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(*lfd, 4))
		return -errno;
	if (setns(nsfd_client, CLONE_NEWNET))
		return -errno;
	*cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (setns(self, CLONE_NEWNET))
		return -errno;
	close(self);
	if (connect(*cfd, (struct sockaddr *)&sa, sizeof(sa)))
		return -errno;
	*afd = accept4(*lfd, NULL, NULL, SOCK_CLOEXEC);
	return *afd < 0 ? -errno : 0;
}

static int flow_add(struct raw *r, int fd, unsigned int q, bool with_addr)
{
	struct gpud_proto_buf b;
	uint8_t tuple[12] = { 198, 18, 0, 1, 198, 18, 0, 2, 0x14, 0xb5, 0x9c, 0x40 };

	start(&b, 1, GPUD_MSG_FLOW_ADD, r);
	gpud_proto_put_str(&b, GPUD_A_IFNAME, IFQ, 16);
	gpud_proto_put_u32(&b, GPUD_A_QUEUE, q);
	if (with_addr)
		gpud_proto_put(&b, GPUD_A_ADDR, tuple, sizeof(tuple));
	return send_buf(r, &b, fd);
}

static void test_rules(void)
{
	int lfd = -1, cfd = -1, afd = -1, ufd, tfd, err;
	struct raw r;

	T_ASSERT_OK(raw_connect(&r));
	T_ASSERT_EQ(0, raw_hello(&r, 1, 1));
	T_ASSERT_EQ(0, alloc_queues(&r, IFQ, GPUD_A_QUEUE, 2));
	/* By 4-tuple alone: refused, whatever fd comes along. */
	expect_err(-EPERM, flow_add(&r, -1, 2, true), &r, "connected socket", "rule by address");
	/* A TCP socket that is not connected. */
	tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	expect_err(-ENOTCONN, flow_add(&r, tfd, 2, false), &r, "not connected",
		   "rule for an unconnected socket");
	close(tfd);
	ufd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	expect_err(-EPROTOTYPE, flow_add(&r, ufd, 2, false), &r, "not TCP", "rule for UDP");
	close(ufd);
	/* A connected socket of another namespace (b's end of a connection). */
	T_ASSERT_OK(tcp_pair(np.nsfd[1], &lfd, &cfd, &afd));
	expect_err(-EXDEV, flow_add(&r, cfd, 2, false), &r, "another network namespace",
		   "rule for a socket of namespace b");
	/* Ours (a's end), but on a queue this process does not hold. */
	expect_err(-EPERM, flow_add(&r, afd, 1, false), &r, "not held by this process",
		   "rule to a queue not held");
	/* Ours, on our queue: it reaches the driver, which on veth has no n-tuple. */
	err = flow_add(&r, afd, 2, false);
	if (err == 0)
		T_FAIL("veth accepted an n-tuple rule: the test's premise is wrong");
	T_ASSERT(err != -EPERM && err != -ENOTCONN && err != -EXDEV);
	t_log("proven connection reaches the driver: %d \"%s\"", err, r.rep.msg);
	close(afd);
	close(cfd);
	close(lfd);
	still_serving(&r);
	close(r.fd);
}

/* ---- release on SIGKILL ---- */

static bool status_has_pid(pid_t pid)
{
	char needle[48];
	struct raw r;
	bool has;

	T_ASSERT_OK(raw_connect(&r));
	T_ASSERT_EQ(0, raw_hello(&r, 1, 1));
	T_ASSERT_EQ(0, raw_status(&r));
	snprintf(needle, sizeof(needle), "\"pid\":%d", (int)pid);
	has = strstr(r.rep.text, needle) != NULL;
	close(r.fd);
	return has;
}

static void test_kill9(void)
{
	struct gpud_agent_opts o = { .sz = sizeof(o), .path = sock_path };
	int pfd[2];
	pid_t pid;
	char c;
	double t0;

	T_ASSERT_OK(pipe(pfd));
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		struct gpud_nic *nic;
		unsigned int q[2];

		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(2);
		if (gpud_nic_open_opts(IFQ, &o, &nic) || gpud_nic_alloc_queues(nic, 2, -1, q))
			_exit(3);
		if (write(pfd[1], "k", 1) != 1)
			_exit(4);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	T_ASSERT_EQ(1, read(pfd[0], &c, 1));
	close(pfd[0]);
	T_ASSERT(status_has_pid(pid));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	t0 = t_now();
	while (status_has_pid(pid)) {
		if (t_now() - t0 > 10)
			T_FAIL("10 s after SIGKILL the agent still lists pid %d", (int)pid);
		usleep(20000);
	}
	t_log("pid %d's queues released %.0f ms after SIGKILL", (int)pid, (t_now() - t0) * 1e3);
	/* All three pool queues are free again: one client can take them all. */
	{
		struct raw r;

		T_ASSERT_OK(raw_connect(&r));
		T_ASSERT_EQ(0, raw_hello(&r, 1, 1));
		T_ASSERT_EQ(0, alloc_queues(&r, IFQ, GPUD_A_NQUEUES, 3));
		close(r.fd);
	}
}

static void test_gpudctl(const char *gpudctl)
{
	char cmd[400], out[4096];
	FILE *f;
	size_t n;
	int st;

	snprintf(cmd, sizeof(cmd), "GPUD_AGENT=%s %s -j agent status", sock_path, gpudctl);
	f = popen(cmd, "r");
	T_ASSERT(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	st = pclose(f);
	if (st || !strstr(out, "\"clients\"") || !strstr(out, "\"" IFQ "\""))
		T_FAIL("%s: status %d, output \"%s\"", cmd, st, out);
}


static bool starts(const char *s, const char *prefix)
{
	return s && !strncmp(s, prefix, strlen(prefix));
}

/* The "requests" entry of @type in the status @js: its counts, and whether it has times. */
static void req_counts(const char *js, const char *type, unsigned long long *n,
		       unsigned long long *nerr, bool *timed, bool *wait_timed)
{
	const char *reqs = strstr(js, "\"requests\":{"), *p, *end;
	char key[48];

	T_ASSERT(reqs != NULL);
	end = strstr(reqs, "},\"nics\"");
	snprintf(key, sizeof(key), "\"%s\":{\"n\":", type);
	p = strstr(reqs, key);
	*n = *nerr = 0;
	*timed = *wait_timed = false;
	if (!p || (end && p > end))
		return;
	T_ASSERT_EQ(2, sscanf(p + strlen(key), "%llu,\"errors\":%llu", n, nerr));
	*timed = starts(strstr(p, "\"serve_ms\":"), "\"serve_ms\":{\"mean\":");
	*wait_timed = starts(strstr(p, "\"wait_ms\":"), "\"wait_ms\":{\"mean\":");
}

/*
 * On a fresh agent: the status counts each request type served and refused,
 * with service and wait times (the wait from the kernel's receive stamp of
 * a request sent after accept()).
 */
static void test_request_stats(void)
{
	struct gpud_agent_opts o = { .sz = sizeof(o), .path = sock_path };
	unsigned long long n, nerr;
	bool timed, wait_timed;
	char *js = NULL;
	struct raw r;

	T_ASSERT_OK(raw_connect(&r));
	T_ASSERT_EQ(0, raw_hello(&r, 1, 1));
	T_ASSERT_EQ(0, alloc_queues(&r, IFQ, GPUD_A_NQUEUES, 1));
	T_ASSERT_EQ(0, alloc_queues(&r, IFQ, GPUD_A_NQUEUES, 1));
	/* the pool is 1-3: two held, two more asked */
	T_ASSERT_EQ(-EBUSY, alloc_queues(&r, IFQ, GPUD_A_NQUEUES, 2));
	T_ASSERT_OK(gpud_agent_status(&o, &js));
	req_counts(js, "alloc", &n, &nerr, &timed, &wait_timed);
	if (n != 2 || nerr != 1 || !timed || !wait_timed)
		T_FAIL("alloc: expected 2 served (timed, waits too) and 1 refused: %s", js);
	/* ours and the status call's own connection */
	req_counts(js, "hello", &n, &nerr, &timed, &wait_timed);
	if (n != 2 || nerr || !timed)
		T_FAIL("hello: expected 2 served: %s", js);
	req_counts(js, "bind", &n, &nerr, &timed, &wait_timed);
	if (n || nerr)
		T_FAIL("bind: none was asked, the status counts some: %s", js);
	t_log("request counts: %s", strstr(js, "\"requests\""));
	free(js);
	close(r.fd);
}

/*
 * A round's cheap requests go before its bind. With gpudd stopped, the newer
 * of two clients queues a BIND, the older an ALLOC; gpudd continued, the
 * ALLOC's reply must leave first. (Serving clients newest first, as gpudd
 * did before, answers the BIND first.) The bind of a memfd fails at once
 * here: the order is what is checked, not a slow bind.
 */
static void test_bind_order(void)
{
	struct raw older, newer;
	struct gpud_proto_buf b;
	double t_alloc, t_bind;
	int memfd, len, err;

	T_ASSERT_OK(raw_connect(&older));
	T_ASSERT_EQ(0, raw_hello(&older, 1, 1));
	T_ASSERT_OK(raw_connect(&newer));
	T_ASSERT_EQ(0, raw_hello(&newer, 1, 1));
	T_ASSERT_OK(setsockopt(older.fd, SOL_SOCKET, SO_TIMESTAMPNS, &(int){ 1 }, sizeof(int)));
	T_ASSERT_OK(setsockopt(newer.fd, SOL_SOCKET, SO_TIMESTAMPNS, &(int){ 1 }, sizeof(int)));
	memfd = memfd_create("not-a-dmabuf", MFD_CLOEXEC);
	T_ASSERT(memfd >= 0);
	T_ASSERT_OK(kill(agent_pid, SIGSTOP));
	start(&b, 1, GPUD_MSG_BIND, &newer);
	gpud_proto_put_str(&b, GPUD_A_IFNAME, IFQ, 16);
	gpud_proto_put_u32(&b, GPUD_A_QUEUE, 1);
	len = gpud_proto_finish(&b);
	T_ASSERT_OK(raw_post(&newer, req, (size_t)len, memfd));
	start(&b, 1, GPUD_MSG_ALLOC, &older);
	gpud_proto_put_str(&b, GPUD_A_IFNAME, IFQ, 16);
	gpud_proto_put_u32(&b, GPUD_A_NQUEUES, 1);
	len = gpud_proto_finish(&b);
	T_ASSERT_OK(raw_post(&older, req, (size_t)len, -1));
	T_ASSERT_OK(kill(agent_pid, SIGCONT));
	err = raw_wait(&older, &t_alloc);
	T_ASSERT_EQ(0, err);
	err = raw_wait(&newer, &t_bind);
	if (!err)
		T_FAIL("a memfd was bound as a dma-buf");
	if (t_alloc >= t_bind)
		T_FAIL("the bind (queued by the newer client) was answered %.3f ms before the "
		       "alloc queued with it", (t_alloc - t_bind) * 1e3);
	t_log("queued together: the alloc answered %.3f ms before the bind", (t_bind - t_alloc) * 1e3);
	close(memfd);
	close(newer.fd);
	close(older.fd);
}

/* ---- the agent killed: clients get an error at once, a new agent serves ---- */

static void test_agent_kill9(void)
{
	struct gpud_agent_opts o = { .sz = sizeof(o), .path = sock_path };
	struct gpud_nic *nic;
	unsigned int q;
	double t0;
	int err;

	t0 = t_now();
	T_ASSERT_OK(gpud_nic_open_opts(IFQ, &o, &nic));
	T_ASSERT_OK(gpud_nic_alloc_queues(nic, 1, -1, &q));
	/* A number to watch, not a bound: this machine is shared and loaded. */
	t_log("connect + hello + queue through gpudd: %.2f ms", (t_now() - t0) * 1e3);
	kill(agent_pid, SIGKILL);
	waitpid(agent_pid, NULL, 0);
	agent_pid = 0;
	t0 = t_now();
	err = gpud_nic_alloc_queues(nic, 1, -1, &q);
	if (err != -ECONNRESET && err != -EPIPE)
		T_FAIL("request after the agent died: expected -ECONNRESET or -EPIPE, got %d (%s)",
		       err, gpud_errmsg());
	if (t_now() - t0 > 2)
		T_FAIL("the error took %.1f s", t_now() - t0);
	if (!strstr(gpud_errmsg(), "gpudd"))
		T_FAIL("the error does not say the agent is gone: %s", gpud_errmsg());
	t_log("after kill -9 of gpudd: %d \"%s\"", err, gpud_errmsg());
	gpud_nic_free(nic);
	/* The socket file is left behind; a new agent takes it over. */
	agent_start();
	{
		struct raw r;

		T_ASSERT_OK(raw_connect(&r));
		T_ASSERT_EQ(0, raw_hello(&r, 1, 1));
		T_ASSERT_EQ(0, alloc_queues(&r, IFQ, GPUD_A_NQUEUES, 3));
		close(r.fd);
	}
}

/* ---- without an agent: a killed process's changes, undone by gpudctl cleanup ---- */

static int rx_queues_of(const char *ifname)
{
	struct gpud_agent_opts off = { .sz = sizeof(off), .mode = GPUD_AGENT_OFF };
	struct gpud_nic *nic;
	int n;

	T_ASSERT_OK(gpud_nic_open_opts(ifname, &off, &nic));
	T_ASSERT(!gpud_nic_via_agent(nic));
	n = gpud_nic_rx_queues(nic);
	gpud_nic_free(nic);
	return n;
}

static int rx_queues_direct(void)
{
	return rx_queues_of(IFQ);
}

static void cleanup_json(const char *gpudctl, char *out, size_t len)
{
	char cmd[300];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "%s -j cleanup " IFQ, gpudctl);
	f = popen(cmd, "r");
	T_ASSERT(f);
	n = fread(out, 1, len - 1, f);
	out[n] = 0;
	if (pclose(f))
		T_FAIL("%s failed: %s", cmd, out);
}

static void test_cleanup(const char *gpudctl)
{
	char out[1024], jpath[200];
	int before = rx_queues_direct(), pfd[2];
	pid_t pid;
	char c;

	T_ASSERT_EQ(4, before);
	T_ASSERT_OK(pipe(pfd));
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		struct gpud_agent_opts off = { .sz = sizeof(off), .mode = GPUD_AGENT_OFF };
		struct gpud_nic *nic;

		if (gpud_nic_open_opts(IFQ, &off, &nic) || gpud_nic_set_rx_channels(nic, 2))
			_exit(3);
		if (write(pfd[1], "k", 1) != 1)
			_exit(4);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1)
		T_FAIL("the child could not set 2 channels on " IFQ);
	close(pfd[0]);
	T_ASSERT_EQ(2, rx_queues_direct());
	snprintf(jpath, sizeof(jpath), "%s/" IFQ ".%d", state, (int)pid);
	T_ASSERT_OK(access(jpath, F_OK));
	/* Its owner lives: cleanup leaves it alone. */
	cleanup_json(gpudctl, out, sizeof(out));
	if (!strstr(out, "\"journals\":0") || !strstr(out, "\"live_owners\":1"))
		T_FAIL("cleanup with a live owner: %s", out);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	T_ASSERT_EQ(2, rx_queues_direct());	/* SIGKILL: nothing ran */
	cleanup_json(gpudctl, out, sizeof(out));
	if (!strstr(out, "\"journals\":1") || !strstr(out, "\"channels_restored\":1"))
		T_FAIL("cleanup after SIGKILL: %s", out);
	T_ASSERT_EQ(4, rx_queues_direct());
	T_ASSERT(access(jpath, F_OK) && errno == ENOENT);
	t_log("gpudctl cleanup after kill -9: %s", out);
}

/* ---- the RX channel count is gpudd's: raised for its pool, put back ---- */

#define IFC "mc0"	/* veth end with 8 RX queues, 2 in use */

static void log_text(const char *log, char *buf, size_t len);

/* gpudd on @sock with @opt @val (@opt NULL: neither), its log @log. */
static pid_t gpudd_spawn(const char *sock, const char *log, const char *opt, const char *val)
{
	pid_t pid = fork();

	T_ASSERT(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 2);
		execl(getenv("GPUDD"), "gpudd", "-f", "-s", sock, "-g", group, opt, val,
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* gpudd that must not start: its exit status 1 and log in @text. */
static void gpudd_refused(const char *sock, const char *log, const char *opt, const char *val,
			  char *text, size_t len)
{
	pid_t pid = gpudd_spawn(sock, log, opt, val);
	int st;

	T_ASSERT_EQ(pid, waitpid(pid, &st, 0));
	log_text(log, text, len);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 1)
		T_FAIL("gpudd %s %s: status 0x%x, expected exit 1; log: %s", opt, val, st, text);
	T_ASSERT(access(sock, F_OK) && errno == ENOENT);	/* never listened */
}

static void wait_listening(const char *sock, const char *log)
{
	for (int i = 0; i < 200 && access(sock, F_OK); i++)
		usleep(50000);
	if (access(sock, F_OK))
		T_FAIL("gpudd did not listen on %s within 10 s (log %s)", sock, log);
}

static void log_text(const char *log, char *buf, size_t len)
{
	FILE *f = fopen(log, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	buf[n] = 0;
	if (f)
		fclose(f);
}

static void stop_gpudd(pid_t pid, const char *log)
{
	int st;

	kill(pid, SIGTERM);
	T_ASSERT_EQ(pid, waitpid(pid, &st, 0));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		T_FAIL("gpudd ended with status 0x%x (log %s)", st, log);
}

/*
 * gpudd with @opt @val, listening, IFC raised from 2 to @nq RX queues and
 * the status saying so, with @also in it too.
 */
static pid_t gpudd_raised(const char *sock, const char *log, const char *opt, const char *val,
			  int nq, const char *also)
{
	struct gpud_agent_opts o = { .sz = sizeof(o), .path = sock };
	char want[96], *json = NULL;
	pid_t pid = gpudd_spawn(sock, log, opt, val);

	wait_listening(sock, log);
	T_ASSERT_EQ(nq, rx_queues_of(IFC));
	T_ASSERT_OK(gpud_agent_status(&o, &json));
	snprintf(want, sizeof(want), "\"rx_channels\":{\"count\":%d,\"original\":2,"
		 "\"changed\":true}", nq);
	if (!strstr(json, want) || !strstr(json, also))
		T_FAIL("gpudd %s %s: the status lacks %s or %s: %s", opt, val, want, also, json);
	free(json);
	return pid;
}

static void test_channels(void)
{
	struct gpud_agent_opts o = { .sz = sizeof(o) };
	char sock[120], log[120], text[4096];
	struct gpud_nic *nic;
	unsigned int q;
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/ch.sock", dir);
	snprintf(log, sizeof(log), "%s/gpudd-ch.log", dir);
	o.path = sock;
	T_ASSERT_EQ(2, rx_queues_of(IFC));

	/* A pool past the driver's maximum (8): gpudd does not start, and says why. */
	gpudd_refused(sock, log, "--pool", IFC ":1-9", text, sizeof(text));
	if (!strstr(text, "at most 8") || !strstr(text, "--pool " IFC ":1-7"))
		T_FAIL("pool 1-9 on an 8-queue maximum: %s", text);
	T_ASSERT_EQ(2, rx_queues_of(IFC));
	t_log("pool past the maximum refused: %s", text);
	gpudd_refused(sock, log, "--channels", IFC ":9", text, sizeof(text));
	if (!strstr(text, "at most 8"))
		T_FAIL("--channels 9 on an 8-queue maximum: %s", text);
	T_ASSERT_EQ(2, rx_queues_of(IFC));

	/* --channels: set outright (pool 1-7 then), put back at stop. */
	pid = gpudd_raised(sock, log, "--channels", IFC ":8", 8, "\"pool\":[1,7]");
	stop_gpudd(pid, log);
	T_ASSERT_EQ(2, rx_queues_of(IFC));

	/* Pool 1-5: raised to 6 before the first client, shown, put back at stop. */
	pid = gpudd_raised(sock, log, "--pool", IFC ":1-5", 6, "\"pool\":[1,5]");
	T_ASSERT_OK(gpud_nic_open_opts(IFC, &o, &nic));
	T_ASSERT_OK(gpud_nic_alloc_queues(nic, 1, 0, &q));
	T_ASSERT_EQ(5, q);	/* a queue that exists only because gpudd raised the count */
	T_ASSERT_EQ(-EPERM, gpud_nic_set_rx_channels(nic, 8));
	if (!strstr(gpud_errmsg(), "gpudd --pool"))
		T_FAIL("a client's channel change: the refusal does not name gpudd --pool: %s",
		       gpud_errmsg());
	t_log("client's channel change refused: %s", gpud_errmsg());
	gpud_nic_free(nic);
	stop_gpudd(pid, log);
	T_ASSERT_EQ(2, rx_queues_of(IFC));

	/* kill -9: the count stays; the next gpudd (no pool on IFC) puts it back first. */
	pid = gpudd_raised(sock, log, "--pool", IFC ":1-5", 6, "\"pool\":[1,5]");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	T_ASSERT_EQ(6, rx_queues_of(IFC));
	unlink(sock);
	pid = gpudd_spawn(sock, log, NULL, NULL);
	wait_listening(sock, log);
	T_ASSERT_EQ(2, rx_queues_of(IFC));
	log_text(log, text, sizeof(text));
	if (!strstr(text, "1 channel count(s)"))
		T_FAIL("the restarted gpudd does not say it restored the channel count: %s", text);
	stop_gpudd(pid, log);
	t_log("after kill -9 of gpudd: the next one restored " IFC " to 2 RX channels");
}

/*
 * Socket activation as gpudd.socket does it: systemd-socket-activate holds
 * the listening socket and starts gpudd on the first connection, which is
 * answered without the client waiting for anything but that start.
 */
static void test_socket_activation(void)
{
	const char *sa = "/usr/bin/systemd-socket-activate";
	char saved[108];
	double t0;
	pid_t pid;
	struct raw r;
	int err = -1;

	if (access(sa, X_OK)) {
		t_log("socket activation: %s not installed, not checked", sa);
		return;
	}
	snprintf(saved, sizeof(saved), "%s", sock_path);
	snprintf(sock_path, sizeof(sock_path), "%s/act.sock", dir);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fd, 2);
		dup2(fd, 1);
		execl(sa, sa, "--seqpacket", "-l", sock_path, getenv("GPUDD"), "-f", "-g", group,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && access(sock_path, F_OK); i++)
		usleep(50000);
	t0 = t_now();
	T_ASSERT_OK(raw_connect(&r));
	err = raw_hello(&r, 1, 1);
	if (err)
		T_FAIL("hello to a socket-activated gpudd: %d (log %s)", err, logpath);
	T_ASSERT_EQ(0, raw_status(&r));
	if (!strstr(r.rep.text, "\"socket_activated\":true"))
		T_FAIL("gpudd did not take the passed socket: %s", r.rep.text);
	t_log("socket activation: first answer %.1f ms after connect", (t_now() - t0) * 1e3);
	close(r.fd);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	snprintf(sock_path, sizeof(sock_path), "%s", saved);
}

int main(int argc, char **argv)
{
	struct group *gr;

	if (argc < 3)
		T_FAIL("usage: agent_netns GPUDD GPUDCTL");
	t_require_root();
	setenv("GPUDD", argv[1], 1);
	gr = getgrgid(65534);
	if (!gr)
		t_skip("no group with gid 65534 to stand in for the gpudirect group");
	snprintf(group, sizeof(group), "%s", gr->gr_name);
	t_netpair_setup(&np, T_LINK_VETH);
	if (t_netpair_exec(&np, 0, "ip link add " IFQ " numrxqueues 4 numtxqueues 4 type veth "
			   "peer name mq1 numrxqueues 4 numtxqueues 4 && ip link set " IFQ
			   " up && ip link set mq1 up"))
		T_FAIL("cannot create the 4-queue veth pair");
	/* 8 RX queues of which 2 in use: room for gpudd to raise the count. */
	if (t_netpair_exec(&np, 0, "ip link add " IFC " numrxqueues 8 numtxqueues 8 type veth "
			   "peer name mc1 numrxqueues 8 numtxqueues 8 && ethtool -L " IFC
			   " rx 2 && ip link set " IFC " up && ip link set mc1 up"))
		T_FAIL("cannot create the 8-queue veth pair with 2 RX channels (ethtool -L)");
	T_ASSERT_OK(t_netpair_enter(&np, 0));
	atexit(cleanup);
	agent_start();
	test_request_stats();
	test_bind_order();
	test_access();
	test_malformed();
	test_silent();
	test_rules();
	test_kill9();
	test_gpudctl(argv[2]);
	test_agent_kill9();
	agent_stop();
	test_socket_activation();
	test_cleanup(argv[2]);
	test_channels();
	printf("agent_netns: ok\n");
	return T_EXIT_PASS;
}
