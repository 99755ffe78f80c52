/* SPDX-License-Identifier: MIT */
/*
 * Private to src/rx: the pieces of the receive path, each unit-testable on
 * its own.
 *
 *   cmsg.c           recvmsg control buffer -> devmem fragments (pure function)
 *   tokens.c         outstanding devmem tokens and their batched return
 *   ring.c           the copy target as a ring of regions released in any order
 *   devmem_recvmsg.c recvmsg(MSG_SOCK_DEVMEM) engine
 *   copy_rx.c        recv() engine (copy fallback)
 *   rx.c             gpud_rx: options, mode choice, release routing, stats
 */
#ifndef GPUD_RX_INTERNAL_H
#define GPUD_RX_INTERNAL_H

#include "internal.h"
#include "uapi_compat.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* ---- cmsg.c ---- */

enum gpud_cmsg_kind {
	GPUD_CMSG_DMABUF = 1,	/* payload in the dma-buf, lent under a token */
	GPUD_CMSG_LINEAR = 2,	/* payload copied into the iov (host memory) */
};

struct gpud_cmsg_frag {
	enum gpud_cmsg_kind kind;
	uint64_t offset;	/* DMABUF: dma-buf offset; LINEAR: offset in the iov */
	uint32_t len;
	uint32_t token;		/* DMABUF only */
	uint32_t dmabuf_id;	/* DMABUF only */
};

struct gpud_cmsg_result {
	size_t nfrags;		/* entries written to the frag array */
	uint64_t dmabuf_bytes;
	uint64_t linear_bytes;
	unsigned int ndmabuf;
	unsigned int nlinear;
	unsigned int unknown;	/* cmsgs of other levels/types, skipped */
	bool ctrunc;		/* MSG_CTRUNC: some cmsg did not fit */
	bool truncated;		/* a cmsg header or body ran past the buffer */
	uint32_t bad_id;	/* first foreign dmabuf_id seen, 0 = none */
};

/*
 * Parses @control (@len bytes as returned in msg_controllen) into @frags in
 * the order the kernel wrote them. Every DMABUF entry is reported, foreign
 * ones included, because each holds a token that must go back to the kernel.
 * Returns 0, or after parsing all it can:
 *   -EXDEV   a DMABUF entry's dmabuf_id is not @binding_id (res->bad_id)
 *   -EBADMSG a devmem cmsg with a short body, or a header running past @len
 *   -ENOBUFS more devmem entries than @max (the rest were not parsed)
 * Foreign cmsgs and a MSG_CTRUNC flag alone are not errors: the caller
 * checks that the bytes accounted for match recvmsg's return.
 */
int gpud_cmsg_parse(const void *control, size_t len, int msg_flags, uint32_t binding_id,
		    struct gpud_cmsg_frag *frags, size_t max, struct gpud_cmsg_result *res);

/* ---- tokens.c ---- */

/*
 * Frees devmem tokens in the kernel: SO_DEVMEM_DONTNEED with @n ranges.
 * Returns the number of frags freed or -errno. Injected for tests.
 */
typedef int (*gpud_dontneed_fn)(int fd, const struct gpud_dmabuf_token *ranges, unsigned int n,
				void *ctx);

struct gpud_tokens {
	int fd;
	gpud_dontneed_fn dontneed;
	void *ctx;
	uint64_t *bits;		/* bit t set: token t is outstanding */
	size_t nwords;
	uint64_t outstanding;
	uint64_t released;
	uint64_t calls;		/* dontneed calls made */
	uint64_t lost;		/* tokens the kernel no longer held */
	uint32_t *scratch;	/* sorted copy of a release request */
	size_t scratch_cap;
};

/* @fn NULL: the real setsockopt. */
void gpud_tokens_init(struct gpud_tokens *t, int fd, gpud_dontneed_fn fn, void *ctx);
/* Forgets everything (does not return tokens: see gpud_tokens_release_all). */
void gpud_tokens_fini(struct gpud_tokens *t);
/* Records a token the kernel handed out. -EEXIST if it is already outstanding. */
int gpud_tokens_add(struct gpud_tokens *t, uint32_t token);
bool gpud_tokens_is_outstanding(const struct gpud_tokens *t, uint32_t token);
/*
 * Gives @n tokens back, any order. All are checked first (outstanding, no
 * duplicates): -EINVAL releases nothing. Then batches of at most
 * GPUD_MAX_DONTNEED_TOKENS ranges / GPUD_MAX_DONTNEED_FRAGS frags, so the
 * kernel's frag cap never cuts a call short. No token is sent twice: after a
 * call every one of its tokens is forgotten, freed or not held (a short count
 * says how many the kernel lacked, not which; see tokens.c). -errno from the
 * kernel leaves that call's and the later tokens outstanding; -EIO reports
 * tokens the kernel did not hold (counted in ->lost, named in the message
 * as far as the counts tell), after all the others were released.
 */
int gpud_tokens_release(struct gpud_tokens *t, const uint32_t *tokens, size_t n);
/*
 * The two halves of gpud_tokens_release(), for a caller that must check
 * several kinds of fragment before releasing any: check() keeps a sorted
 * copy, send_checked() sends it (nothing else may touch @t in between).
 */
int gpud_tokens_check(struct gpud_tokens *t, const uint32_t *tokens, size_t n);
int gpud_tokens_send_checked(struct gpud_tokens *t, size_t n);
/* Hands back tokens that could not be tracked (sorts @tokens in place). */
int gpud_tokens_return_untracked(struct gpud_tokens *t, uint32_t *tokens, size_t n);
/* Returns every outstanding token (at close). */
int gpud_tokens_release_all(struct gpud_tokens *t);

/* ---- ring.c ---- */

struct gpud_ring_region {
	uint64_t off;
	uint32_t len;
	uint8_t state;		/* GPUD_RING_* */
};

struct gpud_ring {
	uint64_t size;
	uint64_t head;		/* where the next region starts */
	struct gpud_ring_region *q;	/* regions by sequence number & (qcap - 1) */
	uint32_t qcap;		/* power of two */
	uint32_t seq_head;	/* next sequence number = next token */
	uint32_t seq_tail;	/* oldest region not yet freed */
	uint32_t nout;		/* regions handed out and not released */
	uint64_t used;		/* bytes in outstanding regions */
};

int gpud_ring_init(struct gpud_ring *r, uint64_t size);
void gpud_ring_fini(struct gpud_ring *r);
static inline uint32_t gpud_ring_outstanding(const struct gpud_ring *r)
{
	return r->seq_head - r->seq_tail;
}
/*
 * Contiguous bytes (at most @want) the next regions can take, starting at
 * r->head (which may move to 0 first when the start of the ring has more
 * room than its end). 0 when full.
 */
uint64_t gpud_ring_prepare(struct gpud_ring *r, uint64_t want);
/* Appends a region of @len (> 0, within the last prepare) at head; returns its token. */
int gpud_ring_push(struct gpud_ring *r, uint32_t len, uint64_t *off, uint32_t *token);
/* Checks tokens (all outstanding, no duplicates) and then frees them; -EINVAL frees none. */
int gpud_ring_release(struct gpud_ring *r, const uint32_t *tokens, size_t n);

/* ---- the gpud_rx object, shared by the engines and rx.c ---- */

struct gpud_rx;

struct gpud_rx_engine {
	const char *name;
	int (*recv)(struct gpud_rx *rx, struct gpud_frag *frags, size_t max, int flags);
};

extern const struct gpud_rx_engine gpud_rx_devmem_engine;
extern const struct gpud_rx_engine gpud_rx_copy_engine;

#define GPUD_RX_REASON_MAX 256
#define GPUD_RX_MAX_CMSGS 1024		/* cmsgs per recvmsg (40 KiB of control) */

/*
 * White-box hooks (not exported): tests drive the devmem engine without a
 * devmem NIC by pretending a binding and scripting recvmsg/DONTNEED.
 */
typedef ssize_t (*gpud_recvmsg_fn)(int fd, struct msghdr *msg, int flags, void *ctx);

struct gpud_rx_hooks {
	uint32_t binding_id;		/* != 0: behave as if bound to this id */
	gpud_recvmsg_fn recvmsg;	/* NULL: recvmsg(2) */
	gpud_dontneed_fn dontneed;	/* NULL: setsockopt(SO_DEVMEM_DONTNEED) */
	void *ctx;
};

int gpud_rx_open_hooked(int fd, const struct gpud_rx_opts *opts, const struct gpud_rx_hooks *h,
			struct gpud_rx **out);

struct gpud_rx {
	int fd;
	bool bound;			/* a binding (real or hooked) is given */
	gpud_recvmsg_fn recvmsg;
	void *hook_ctx;
	struct gpud_rx_opts opts;
	enum gpud_rx_mode requested;
	enum gpud_rx_mode mode;		/* AUTO until decided */
	char reason[GPUD_RX_REASON_MAX];
	const struct gpud_rx_engine *engine;
	uint32_t binding_id;		/* 0: none */
	int err;			/* sticky stream error */
	char errtext[GPUD_ERRMSG_MAX];	/* its message */
	bool devmem_seen;

	struct gpud_mem *copy_mem;	/* copy target */
	bool own_copy_mem;
	void *copy_direct;		/* host pointer recv() may write into, or NULL */
	struct gpud_ring ring;

	void *staging;			/* iov for recvmsg / recv when not direct */
	size_t staging_len;
	void *control;			/* recvmsg control buffer */
	size_t control_len;
	struct gpud_cmsg_frag *cfrags;	/* parsed control buffer */

	struct gpud_tokens tokens;
	uint32_t *rel_dev;		/* release scratch */
	uint32_t *rel_copy;
	size_t rel_cap;

	struct gpud_rx_stats st;
};

/* Decides AUTO after the first data: devmem seen or not. */
void gpud_rx_decide(struct gpud_rx *rx, bool devmem);
/* Records a sticky stream error and returns it. */
int gpud_rx_fail(struct gpud_rx *rx, int err);
/* Copies @len bytes from @src into a new copy-ring region (fragment out). */
int gpud_rx_copy_in(struct gpud_rx *rx, const void *src, uint32_t len, struct gpud_frag *f);
/* Readable text for a recv/recvmsg errno in this rx's mode. */
int gpud_rx_sock_err(struct gpud_rx *rx, int err, const char *call);

#endif /* GPUD_RX_INTERNAL_H */
