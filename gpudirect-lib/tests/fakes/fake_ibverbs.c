// SPDX-License-Identifier: MIT
/*
 * A fake libibverbs.so.1 for tests of the rdma importer without RDMA
 * hardware or rdma-core. Only what libgpudirect calls exists.
 *
 * Environment, read on every call:
 *   GPUD_FAKE_IB_DEVS=a,b     device names (default "mlx5_0,rxe0"); names
 *                             starting with "rxe" cannot import dma-bufs
 *                             (EOPNOTSUPP), like soft-RoCE
 *   GPUD_FAKE_FAIL=ibv_name   that function fails (errno EIO)
 *   GPUD_FAKE_IB_GONE=1       the device has vanished: opening and
 *                             registering fail with ENODEV, deregistering
 *                             frees but says EIO
 *   GPUD_FAKE_PIN_FAIL=1      ibv_reg_mr* fails with EFAULT (unpinnable)
 * Counters: fake_ib_live_ctx(), _live_pd(), _live_mr(), _dmabuf_mrs(),
 * _busy_dealloc() (a PD or context freed while still in use).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

struct ibv_device { char name[64]; };
struct ibv_context { struct ibv_device *dev; int pds; };
struct ibv_pd { struct ibv_context *ctx; int mrs; };
struct ibv_mr {		/* the public head libgpudirect reads */
	struct ibv_context *context;
	struct ibv_pd *pd;
	void *addr;
	size_t length;
	uint32_t handle;
	uint32_t lkey;
	uint32_t rkey;
};

static struct ibv_device devs[8];
static int live_ctx, live_pd, live_mr, dmabuf_mrs, busy_dealloc;
static uint32_t next_key = 0x100;

EXPORT int fake_ib_live_ctx(void) { return live_ctx; }
EXPORT int fake_ib_live_pd(void) { return live_pd; }
EXPORT int fake_ib_live_mr(void) { return live_mr; }
EXPORT int fake_ib_dmabuf_mrs(void) { return dmabuf_mrs; }
EXPORT int fake_ib_busy_dealloc(void) { return busy_dealloc; }

static bool env_on(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0");
}

static bool fail(const char *fn)
{
	const char *v = getenv("GPUD_FAKE_FAIL");

	return v && !strcmp(v, fn);
}

#define FAIL_NULL(fn)                      \
	do {                               \
		if (fail(fn)) {            \
			errno = EIO;       \
			return NULL;       \
		}                          \
	} while (0)

EXPORT struct ibv_device **ibv_get_device_list(int *num)
{
	const char *v = getenv("GPUD_FAKE_IB_DEVS");
	char buf[256], *save = NULL, *tok;
	struct ibv_device **list;
	int n = 0;

	FAIL_NULL("ibv_get_device_list");
	snprintf(buf, sizeof(buf), "%s", v ? v : "mlx5_0,rxe0");
	list = calloc(9, sizeof(*list));
	if (!list)
		return NULL;
	for (tok = strtok_r(buf, ",", &save); tok && n < 8; tok = strtok_r(NULL, ",", &save)) {
		snprintf(devs[n].name, sizeof(devs[n].name), "%s", tok);
		list[n] = &devs[n];
		n++;
	}
	if (num)
		*num = n;
	return list;
}

EXPORT void ibv_free_device_list(struct ibv_device **list)
{
	free(list);
}

EXPORT const char *ibv_get_device_name(struct ibv_device *d)
{
	return d->name;
}

EXPORT struct ibv_context *ibv_open_device(struct ibv_device *d)
{
	struct ibv_context *c;

	FAIL_NULL("ibv_open_device");
	if (env_on("GPUD_FAKE_IB_GONE")) {
		errno = ENODEV;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->dev = d;
	live_ctx++;
	return c;
}

EXPORT int ibv_close_device(struct ibv_context *c)
{
	if (c->pds)
		busy_dealloc++;
	free(c);
	live_ctx--;
	return 0;
}

EXPORT struct ibv_pd *ibv_alloc_pd(struct ibv_context *c)
{
	struct ibv_pd *pd;

	FAIL_NULL("ibv_alloc_pd");
	pd = calloc(1, sizeof(*pd));
	if (!pd)
		return NULL;
	pd->ctx = c;
	c->pds++;
	live_pd++;
	return pd;
}

EXPORT int ibv_dealloc_pd(struct ibv_pd *pd)
{
	if (pd->mrs) {
		busy_dealloc++;
		return EBUSY;
	}
	pd->ctx->pds--;
	free(pd);
	live_pd--;
	return 0;
}

static struct ibv_mr *new_mr(struct ibv_pd *pd, void *addr, size_t len)
{
	struct ibv_mr *mr = calloc(1, sizeof(*mr));

	if (!mr)
		return NULL;
	mr->context = pd->ctx;
	mr->pd = pd;
	mr->addr = addr;
	mr->length = len;
	mr->lkey = next_key++;
	mr->rkey = next_key++;
	pd->mrs++;
	live_mr++;
	return mr;
}

EXPORT struct ibv_mr *ibv_reg_mr_iova(struct ibv_pd *pd, void *addr, size_t len, uint64_t iova,
				      int access)
{
	FAIL_NULL("ibv_reg_mr_iova");
	if (env_on("GPUD_FAKE_IB_GONE")) {
		errno = ENODEV;
		return NULL;
	}
	if (env_on("GPUD_FAKE_PIN_FAIL")) {
		errno = EFAULT;
		return NULL;
	}
	/* Touch every page, as pinning would: a bad address crashes here, under ASan. */
	for (size_t i = 0; i < len; i += 4096)
		(void)*(volatile char *)((char *)addr + i);
	return new_mr(pd, (void *)(uintptr_t)iova, len);
}

EXPORT struct ibv_mr *ibv_reg_dmabuf_mr(struct ibv_pd *pd, uint64_t off, size_t len,
					uint64_t iova, int fd, int access)
{
	struct ibv_mr *mr;

	FAIL_NULL("ibv_reg_dmabuf_mr");
	if (env_on("GPUD_FAKE_IB_GONE")) {
		errno = ENODEV;
		return NULL;
	}
	if (!strncmp(pd->ctx->dev->name, "rxe", 3)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
		errno = EBADF;
		return NULL;
	}
	mr = new_mr(pd, (void *)(uintptr_t)iova, len);
	if (mr)
		dmabuf_mrs++;
	return mr;
}

EXPORT int ibv_dereg_mr(struct ibv_mr *mr)
{
	mr->pd->mrs--;
	free(mr);
	live_mr--;
	return env_on("GPUD_FAKE_IB_GONE") ? EIO : 0;
}
