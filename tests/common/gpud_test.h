/* SPDX-License-Identifier: MIT */
/*
 * Shared test helpers: exit codes, assertions that print expected and actual,
 * skip helpers that say why, and network fixtures (two namespaces joined by a
 * veth pair on the host, or by linked netdevsim ports inside the patched VM).
 *
 * Every test is one program: exit T_EXIT_PASS, T_EXIT_SKIP (ctest counts it as
 * skipped; the program has printed the reason) or T_EXIT_FAIL.
 */
#ifndef GPUD_TEST_H
#define GPUD_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_EXIT_PASS 0
#define T_EXIT_FAIL 1
#define T_EXIT_SKIP 77

void t_fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
void t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void t_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define T_FAIL(...) t_fail_at(__FILE__, __LINE__, __VA_ARGS__)

#define T_ASSERT(cond)                                                   \
	do {                                                             \
		if (!(cond))                                             \
			T_FAIL("assertion failed: %s", #cond);           \
	} while (0)

#define T_ASSERT_EQ(expected, actual)                                    \
	do {                                                             \
		long long t_e_ = (long long)(expected);                  \
		long long t_a_ = (long long)(actual);                    \
		if (t_e_ != t_a_)                                        \
			T_FAIL("%s == %s: expected %lld, got %lld",      \
			       #expected, #actual, t_e_, t_a_);          \
	} while (0)

#define T_ASSERT_STREQ(expected, actual)                                 \
	do {                                                             \
		const char *t_e_ = (expected), *t_a_ = (actual);         \
		if (!t_e_ || !t_a_ || strcmp(t_e_, t_a_))                \
			T_FAIL("%s: expected \"%s\", got \"%s\"",        \
			       #actual, t_e_ ? t_e_ : "(null)",          \
			       t_a_ ? t_a_ : "(null)");                  \
	} while (0)

/* A call returning 0 or -errno must succeed. */
#define T_ASSERT_OK(call)                                                \
	do {                                                             \
		long long t_r_ = (long long)(call);                      \
		if (t_r_ < 0)                                            \
			T_FAIL("%s failed: %lld (%s)", #call, t_r_,      \
			       strerror((int)-t_r_));                    \
	} while (0)

/* Skips (exit 77, reason printed) unless the condition holds. */
void t_require_root(void);
/* Inside the patched-kernel VM (kernel-patches/scripts/vm-run.sh)? */
bool t_in_vm(void);
void t_require_vm(void);
void t_require_file(const char *path, const char *why);

/* Deterministic payload pattern: byte at stream offset @off of stream @seed. */
static inline uint64_t t_pattern_word(uint64_t seed, uint64_t word_idx)
{
	uint64_t x = word_idx * 0x9e3779b97f4a7c15ULL + seed;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 32;
	return x;
}

static inline uint8_t t_pattern_byte(uint64_t seed, uint64_t off)
{
	return (uint8_t)(t_pattern_word(seed, off >> 3) >> ((off & 7) * 8));
}
void t_pattern_fill(uint64_t seed, uint64_t off, void *buf, size_t len);
/* Returns the index of the first mismatching byte, or -1 if all match. */
long t_pattern_check(uint64_t seed, uint64_t off, const void *buf, size_t len);

/* Seconds since an arbitrary point (CLOCK_MONOTONIC). */
double t_now(void);

/*
 * A TCP connection to @addr:@port (IPv4), retried every 10 ms for up to
 * @tries refusals while the listener comes up: the fd, or -errno.
 */
int t_tcp_connect(const char *addr, uint16_t port, int tries);
/*
 * The pattern of @seed from stream offset 0, @total bytes (0: until a send
 * fails), in 256 KiB sends: 0, or -errno of the failed send (-EPIPE on a
 * send of 0 bytes).
 */
int t_send_pattern(int fd, uint64_t seed, uint64_t total);

/*
 * Network fixture. Two namespaces "a" and "b", one end of a link in each,
 * addresses in 198.18.0.0/15 (RFC 2544 benchmarking range). Names carry the
 * pid so tests can run in parallel. A guardian process removes everything
 * when the test exits by any means, SIGKILL included.
 */
enum t_link_kind {
	T_LINK_VETH,	/* veth pair, host kernel */
	T_LINK_NSIM,	/* linked netdevsim ports, patched-kernel VM only */
};

struct t_netpair {
	enum t_link_kind kind;
	char ns[2][32];		/* namespace names */
	char ifname[2][16];	/* link name inside each namespace */
	int ifindex[2];		/* ifindex inside each namespace */
	char addr[2][16];	/* IPv4 address of each end, dotted quad */
	int nsfd[2];		/* open /var/run/netns/<name> */
	int guardian_fd;	/* write end of the guardian's pipe */
	int guardian_pid;
	int owner_pid;		/* test pid: names and netdevsim ids derive from it */
	unsigned int queues;	/* per end; 0: the kind's default */
};

/* Creates the pair; skips (77) when the kind cannot be made here. */
void t_netpair_setup(struct t_netpair *p, enum t_link_kind kind);
/*
 * The same with @queues RX/TX queues per end (0: the kind's default, 4 for
 * netdevsim, the kernel's for veth): queue 0 stays with RSS, the others are
 * for devmem.
 */
void t_netpair_setup_queues(struct t_netpair *p, enum t_link_kind kind, unsigned int queues);
/* Removes the pair now (also done automatically at exit). */
void t_netpair_teardown(struct t_netpair *p);
/* Moves the calling thread into namespace @side (0 = a, 1 = b). */
int t_netpair_enter(const struct t_netpair *p, int side);
/* T_LINK_NSIM: the netdevsim bus device id of side @side (for del_device). */
unsigned int t_netpair_nsim_id(const struct t_netpair *p, int side);
/* Runs a shell command inside namespace @side; returns its exit status. */
int t_netpair_exec(const struct t_netpair *p, int side, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Frees the skbs that TCP deferred to the per-CPU lists of the CPUs that
 * allocated them (skb_attempt_defer_free()), by making every online CPU
 * receive one loopback datagram in the caller's namespace (lo must be up).
 * Their frags, e.g. devmem net_iovs, go back to their page pools. Returns
 * the number of CPUs visited or -errno. See softnet.c.
 */
int t_skb_defer_flush(void);
/* The same through the loopback device of namespace @nsfd (e.g. when the
 * caller's own lo is down, as in the VM's initial namespace).
 */
int t_skb_defer_flush_in(int nsfd);
/*
 * Pins the calling thread to @cpu modulo the CPUs it may run on; returns the
 * CPU chosen or -errno. Two processes pinned to 0 and 1 run on different CPUs
 * whenever there are two.
 */
int t_pin_cpu(int cpu);

#endif /* GPUD_TEST_H */
