// SPDX-License-Identifier: MIT
/*
 * Devmem tokens: which ones the kernel has lent us, and giving them back.
 *
 * The kernel allocates tokens from a per-socket xarray (lowest free id from
 * 1, 31 bits), so outstanding tokens are dense and a bitmap indexed by token
 * is small and O(1). SO_DEVMEM_DONTNEED (net/core/sock.c, 6.12) takes at most
 * 128 {start, count} ranges and frees at most 1024 frags per call, skips ids
 * it does not hold without complaint, and returns how many it freed. So we
 * sort and coalesce, stay within both limits, and never send a token twice:
 * a token id freed once can be handed out again by the next recvmsg, and a
 * second DONTNEED would then free somebody else's page.
 */
#include "rx_internal.h"

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

/* Sends sorted, checked @tok[0..n); see gpud_tokens_release(). */
static int release_sorted(struct gpud_tokens *t, const uint32_t *tok, size_t n)
{
	struct gpud_dmabuf_token ranges[GPUD_MAX_DONTNEED_TOKENS];
	size_t i = 0, lost = 0;
	unsigned int nr;

	while (i < n) {
		size_t f = build_batch(tok + i, n - i, ranges, &nr);
		int ret = t->dontneed(t->fd, ranges, nr, t->ctx);

		t->calls++;
		if (ret < 0)
			return gpud_err(ret, "SO_DEVMEM_DONTNEED: %s (%zu tokens still outstanding)",
					strerror(-ret), t->outstanding);
		if ((size_t)ret > f)
			ret = (int)f; /* cannot free more than asked; do not trust it */
		if (ret == 0) {
			/*
			 * The kernel walked the whole batch and held none of it:
			 * these ids are not ours any more. Forget them.
			 */
			for (size_t j = 0; j < f; j++)
				bit_clear(t, tok[i + j]);
			t->released -= f;
			t->lost += f;
			lost += f;
			i += f;
			continue;
		}
		/* The kernel frees in order: the first ret are gone; resend the rest. */
		for (int j = 0; j < ret; j++)
			bit_clear(t, tok[i + j]);
		i += (size_t)ret;
	}
	if (lost)
		return gpud_err(-EIO, "kernel did not hold %zu devmem tokens this gpud_rx had received (socket replaced?)",
				lost);
	return 0;
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
