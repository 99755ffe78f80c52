// SPDX-License-Identifier: MIT
/*
 * TEST BUILD ONLY, linked into libnccl-net-devmem-seeded.so (never the
 * plugin): the bug the CUDA concurrency model exists to catch, put back on
 * purpose. After every GPU commit, on the progress thread, a context-wide
 * synchronisation: it waits for NCCL's kernel, which waits for this receive.
 * tests/plugin_cuda_fake "seeded" passes only if the fake reports it.
 */
#include "base/base.h"
#include "gpu/gpu_internal.h"

void dm_seed_after_commit(void);

void dm_seed_after_commit(void)
{
	CUresult (*sync)(void) = NULL;
	int status = 0;

	/* resolved here: the loader's table never offers it */
	if (!dm_cu()->GetProcAddress("cuCtxSynchronize", (void **)&sync, 2000, 0, &status) &&
	    sync)
		dm_cu_err(sync(), "cuCtxSynchronize (seeded bug)");
}
