// SPDX-License-Identifier: MIT
/*
 * gpu tier: CUDA buffers through the plugin (copy mode: pinned staging plus
 * synchronous copies) byte-exact, both directions, over the veth pair.
 * Skips (77) without libcuda.so.1 or a device.
 */
#include "harness.h"

#include <dlfcn.h>
#include <unistd.h>

typedef int (*fn_i)(unsigned);
static struct {
	int (*init)(unsigned);
	int (*dev_get)(int *, int);
	int (*ctx_retain)(void **, int);
	int (*ctx_set)(void *);
	int (*alloc)(unsigned long long *, size_t);
	int (*htod)(unsigned long long, const void *, size_t);
	int (*dtoh)(void *, unsigned long long, size_t);
} cu;

static void cuda_or_skip(void)
{
	void *l = dlopen("libcuda.so.1", RTLD_NOW);
	int dev, n = 0;
	void *ctx;

	if (!l)
		t_skip("no libcuda.so.1 (no NVIDIA driver): %s", dlerror());
	cu.init = dlsym(l, "cuInit");
	cu.dev_get = dlsym(l, "cuDeviceGet");
	cu.ctx_retain = dlsym(l, "cuDevicePrimaryCtxRetain");
	cu.ctx_set = dlsym(l, "cuCtxSetCurrent");
	cu.alloc = dlsym(l, "cuMemAlloc_v2");
	cu.htod = dlsym(l, "cuMemcpyHtoD_v2");
	cu.dtoh = dlsym(l, "cuMemcpyDtoH_v2");
	if (!cu.init || cu.init(0) || cu.dev_get(&dev, 0))
		t_skip("no CUDA device");
	(void)n;
	T_ASSERT_EQ(0, cu.ctx_retain(&ctx, dev));
	T_ASSERT_EQ(0, cu.ctx_set(ctx));
}

int main(void)
{
	const size_t sz = 64 << 20;
	char handle[NCCL_NET_HANDLE_MAXSIZE] = { 0 };
	unsigned long long d;
	void *lc, *comm, *mh, *req = NULL;
	struct h_plugin p;
	struct h_pair hp;
	char *host;
	int got;
	bool rx;

	t_require_root();
	cuda_or_skip();
	setenv("NCCL_DEVMEM_MODE", "copy", 0);
	rx = h_pair_start(&hp) == 0;
	cuda_or_skip();	/* contexts do not survive fork */
	h_load(&p, 11);
	host = h_alloc(sz);
	T_ASSERT_EQ(0, cu.alloc(&d, sz));
	if (rx) {
		void *data = (void *)d;
		size_t max = sz;
		int tag = 1;

		T_ASSERT_EQ(ncclSuccess, h_listen(&p, 0, handle, &lc));
		h_send_handle(&hp, handle);
		comm = h_accept_wait(&p, lc, 30);
		T_ASSERT_EQ(ncclSuccess, p.v11->regMr(comm, data, sz, NCCL_PTR_CUDA, &mh));
		while (!req)
			T_ASSERT_EQ(ncclSuccess, h_irecv(&p, comm, 1, &data, &max, &tag, &mh, &req));
		T_ASSERT_EQ(ncclSuccess, h_wait(&p, req, &got, 60));
		T_ASSERT_EQ(sz, got);
		T_ASSERT_EQ(0, cu.dtoh(host, d, sz));
		T_ASSERT_EQ(-1, t_pattern_check(7, 0, host, sz));
		h_sync_recv(&hp);
		h_close_recv(&p, comm);
		h_close_listen(&p, lc);
		h_pair_join(&hp, 60);
		t_log("PASS: 64 MiB into GPU memory byte-exact");
		return T_EXIT_PASS;
	}
	h_recv_handle(&hp, handle);
	comm = h_connect_wait(&p, 0, handle, 30);
	t_pattern_fill(7, 0, host, sz);
	T_ASSERT_EQ(0, cu.htod(d, host, sz));
	T_ASSERT_EQ(ncclSuccess, p.v11->regMr(comm, (void *)d, sz, NCCL_PTR_CUDA, &mh));
	req = h_isend_wait(&p, comm, (void *)d, sz, 1, mh);
	T_ASSERT_EQ(ncclSuccess, h_wait(&p, req, &got, 60));
	h_sync_send(&hp);
	h_close_send(&p, comm);
	_exit(0);
}
