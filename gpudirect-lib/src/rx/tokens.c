// SPDX-License-Identifier: MIT
/*
 * Devmem tokens: which ones the kernel has lent us, and giving them back.
 *
 * The kernel allocates tokens from a per-socket xarray (lowest free id from
 * 1, 31 bits), so outstanding tokens are dense and a bitmap indexed by token
 * is small and O(1).
 *
 * What SO_DEVMEM_DONTNEED does in 6.12 (sock_devmem_dontneed(),
 * net/core/sock.c):
 *  - The option is a {start, count} array; its length must be a multiple of
 *    8 bytes and at most 128 entries (MAX_DONTNEED_TOKENS), else -EINVAL.
 *  - It walks the entries in order and every id in them: each id is
 *    __xa_erase()d from the socket's token xarray; an id the socket does not
 *    hold erases nothing and is skipped without complaint.
 *  - Every id *examined* counts towards MAX_DONTNEED_FRAGS (1024), held or
 *    not; the 1025th stops the walk mid-entry with no error.
 *  - It returns the number of ids it freed: one count for the whole call.
 *    -errno (EBADF, EINVAL, ENOMEM, EFAULT) only before the walk, so a failed
 *    call has erased nothing.
 *
 * What follows for us:
 *  - Once a call returns a count, none of its ids is held by the socket any
 *    more, whether it freed them or never had them. Sending one again is never
 *    useful and can be harmful: the next recvmsg may lend that id again (lowest
 *    free id), and a second DONTNEED would free that new page behind its
 *    owner's back. So every id of a call is forgotten after the call, and
 *    none is ever sent twice.
 *  - A call never exceeds 1024 ids (nor 128 entries): then the frag cap
 *    never stops the walk, and a short count always means "not held", never
 *    "not looked at". (Coalescing merges only ids we hold, so ids = tokens.)
 *  - From one count the kernel cannot tell us which ids it lacked: when
 *    0 < ret < sent, only how many. Single-id entries instead of ranges
 *    would not help (still one count), and splitting the call afterwards is
 *    impossible (the ids are gone). Exact knowledge would need one call per
 *    token: 1024 times the system calls on the data path, for a case that
 *    only happens when something else returned our tokens or the socket is
 *    not the one that lent them. So we count exactly (released += ret,
 *    lost += sent - ret), and report which ids when the count decides it
 *    (ret == 0: all of the call's; a call of one id) and otherwise the
 *    call's ids and how many of them the kernel lacked.
 */
#include "rx_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int real_dontneed(int fd, const struct gpud_dmabuf_token *ranges, unsigned int n,
			 void *ctx)
{
	int ret;

	/* The kernel returns the freed count as setsockopt's result. */
	ret = setsockopt(fd, SOL_SOCKET, SO_DEVMEM_DONTNEED, ranges,
			 (socklen_t)(n * sizeof(*ranges)));
	return ret < 0 ? -errno : ret;
}

void gpud_tokens_init(struct gpud_tokens *t, int fd, gpud_dontneed_fn fn, void *ctx)
{
	memset(t, 0, sizeof(*t));
	t->fd = fd;
	t->dontneed = fn ? fn : real_dontneed;
	t->ctx = ctx;
}

void gpud_tokens_fini(struct gpud_tokens *t)
{
	free(t->bits);
	free(t->scratch);
	t->bits = NULL;
	t->scratch = NULL;
	t->nwords = t->scratch_cap = 0;
}

bool gpud_tokens_is_outstanding(const struct gpud_tokens *t, uint32_t token)
{
	size_t w = token / 64;

	return w < t->nwords && (t->bits[w] >> (token % 64) & 1);
}

static void bit_clear(struct gpud_tokens *t, uint32_t token)
{
	t->bits[token / 64] &= ~(1ULL << (token % 64));
	t->outstanding--;
	t->released++;
}

int gpud_tokens_add(struct gpud_tokens *t, uint32_t token)
{
	size_t w = token / 64;

	if (w >= t->nwords) {
		size_t n = t->nwords ? t->nwords : 64;
		uint64_t *nb;

		while (n <= w)
			n *= 2;
		nb = realloc(t->bits, n * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		memset(nb + t->nwords, 0, (n - t->nwords) * sizeof(*nb));
		t->bits = nb;
		t->nwords = n;
	}
	if (t->bits[w] >> (token % 64) & 1)
		return -EEXIST;
	t->bits[w] |= 1ULL << (token % 64);
	t->outstanding++;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorted private copy of the request, checked: all outstanding, no duplicates. */
int gpud_tokens_check(struct gpud_tokens *t, const uint32_t *tokens, size_t n)
{
	if (!n)
		return 0;
	if (n > t->scratch_cap) {
		uint32_t *s = realloc(t->scratch, n * sizeof(*s));

		if (!s)
			return -ENOMEM;
		t->scratch = s;
		t->scratch_cap = n;
	}
	memcpy(t->scratch, tokens, n * sizeof(*tokens));
	qsort(t->scratch, n, sizeof(*t->scratch), cmp_u32);
	for (size_t i = 0; i < n; i++) {
		uint32_t tok = t->scratch[i];

		if (i && tok == t->scratch[i - 1])
			return gpud_err(-EINVAL,
					"devmem token %u given twice in one release: each fragment is released once",
					tok);
		if (!gpud_tokens_is_outstanding(t, tok))
			return gpud_err(-EINVAL,
					"devmem token %u is not outstanding: released twice, or never received by this gpud_rx",
					tok);
	}
	return 0;
}

/*
 * Builds one DONTNEED batch from sorted @tok[0..n): consecutive ids
 * coalesced, at most 128 ranges and 1024 frags. Returns the frag count.
 */
static size_t build_batch(const uint32_t *tok, size_t n, struct gpud_dmabuf_token *r,
			  unsigned int *nranges)
{
	size_t frags = 0;
	unsigned int k = 0;

	while (frags < n && frags < GPUD_MAX_DONTNEED_FRAGS) {
		uint32_t v = tok[frags];

		if (k && r[k - 1].token_start + r[k - 1].token_count == v) {
			r[k - 1].token_count++;
		} else {
			if (k == GPUD_MAX_DONTNEED_TOKENS)
				break;
			r[k].token_start = v;
			r[k].token_count = 1;
			k++;
		}
		frags++;
	}
	*nranges = k;
	return frags;
}

/* Not-held tokens seen during one release, for its -EIO message. */
struct lost_report {
	size_t lost;
	unsigned int short_calls;
	char detail[320];
	size_t len;
};

/* Notes one call whose count fell short: @tok[0..sent) went out, @freed came back. */
static void note_short_call(struct lost_report *lr, const uint32_t *tok, size_t sent,
			    size_t freed)
{
	size_t room = sizeof(lr->detail) - lr->len;
	char *p = lr->detail + lr->len;
	int w;

	lr->lost += sent - freed;
	if (lr->short_calls++ >= 3)
		return;	/* the summary counts the rest */
	if (sent == 1)
		w = snprintf(p, room, "%stoken %u", lr->len ? "; " : "", tok[0]);
	else if (freed == 0)
		w = snprintf(p, room, "%sall %zu tokens of one call (%u..%u)", lr->len ? "; " : "",
			     sent, tok[0], tok[sent - 1]);
	else
		w = snprintf(p, room,
			     "%s%zu of the %zu tokens of one call (%u..%u; which ones, the kernel does not say)",
			     lr->len ? "; " : "", sent - freed, sent, tok[0], tok[sent - 1]);
	if (w > 0)
		lr->len += (size_t)w < room ? (size_t)w : room - 1;
}

/*
 * Sends sorted, checked @tok[0..n); see gpud_tokens_release() and the top of
 * this file. Each call's ids are forgotten once it returns a count.
 */
static int release_sorted(struct gpud_tokens *t, const uint32_t *tok, size_t n)
{
	struct gpud_dmabuf_token ranges[GPUD_MAX_DONTNEED_TOKENS];
	struct lost_report lr = { 0 };
	unsigned int nr;
	size_t i = 0;

	while (i < n) {
		size_t f = build_batch(tok + i, n - i, ranges, &nr);
		int ret = t->dontneed(t->fd, ranges, nr, t->ctx);
		size_t freed;

		t->calls++;
		if (ret < 0)	/* erased nothing: this call's tokens and the rest stay ours */
			return gpud_err(ret,
					"SO_DEVMEM_DONTNEED: %s (%zu tokens still outstanding; %zu sent earlier in this release were not held)",
					strerror(-ret), (size_t)t->outstanding, lr.lost);
		freed = (size_t)ret;
		if (freed > f) {
			gpud_log(GPUD_LOG_WARN,
				 "SO_DEVMEM_DONTNEED freed %zu of %zu tokens sent: not the 6.12 semantics this library knows",
				 freed, f);
			freed = f;
		}
		for (size_t j = 0; j < f; j++)
			bit_clear(t, tok[i + j]);
		t->released -= f - freed;
		t->lost += f - freed;
		if (freed < f)
			note_short_call(&lr, tok + i, f, freed);
		i += f;
	}
	if (!lr.lost)
		return 0;
	return gpud_err(-EIO,
			"SO_DEVMEM_DONTNEED: kernel did not hold %zu of %zu devmem tokens released, now forgotten (socket replaced, or tokens returned behind this gpud_rx's back?): %s%s",
			lr.lost, n, lr.detail,
			lr.short_calls > 3 ? "; and more in later calls" : "");
}

int gpud_tokens_send_checked(struct gpud_tokens *t, size_t n)
{
	return n ? release_sorted(t, t->scratch, n) : 0;
}

int gpud_tokens_release(struct gpud_tokens *t, const uint32_t *tokens, size_t n)
{
	int err;

	if (!n)
		return 0;
	err = gpud_tokens_check(t, tokens, n);
	if (err)
		return err;
	return gpud_tokens_send_checked(t, n);
}

int gpud_tokens_release_all(struct gpud_tokens *t)
{
	size_t n = 0;
	uint32_t *all;
	int err;

	if (!t->outstanding)
		return 0;
	all = malloc(t->outstanding * sizeof(*all));
	if (!all)
		return -ENOMEM;
	/* Bitmap order is ascending: already sorted and unique. */
	for (size_t w = 0; w < t->nwords; w++)
		for (uint64_t b = t->bits[w]; b; b &= b - 1)
			all[n++] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(b));
	err = release_sorted(t, all, n);
	free(all);
	return err;
}

int gpud_tokens_return_untracked(struct gpud_tokens *t, uint32_t *tokens, size_t n)
{
	struct gpud_dmabuf_token ranges[GPUD_MAX_DONTNEED_TOKENS];
	unsigned int nr;
	size_t i = 0;

	qsort(tokens, n, sizeof(*tokens), cmp_u32);
	while (i < n) {
		size_t f = build_batch(tokens + i, n - i, ranges, &nr);
		int ret = t->dontneed(t->fd, ranges, nr, t->ctx);

		t->calls++;
		if (ret < 0)
			return ret;
		i += f;
	}
	return 0;
}
