// SPDX-License-Identifier: MIT
/*
 * gpu tier: the plugin's own unpack kernel (src/gpu/unpack.cu, built here into a
 * fatbin from that same file with the plugin's nvcc flags, loaded with
 * cuModuleLoadData as src/gpu/cuda.c loads it), on a real GPU.
 *
 *   unpack_kernel_test check [--rounds N] [--seed S]
 *     N rounds (default 300) of 1..2048 fragments of mixed sizes (1 B ..
 *     64 KiB) at offsets aligned and unaligned to 16 (source and destination
 *     sharing a misalignment, or not), scattered in a pool in cuMemAlloc
 *     memory, into a cuMemAlloc destination whose gaps must stay untouched.
 *     Entries live in cuMemHostAlloc(DEVICEMAP) memory, which is how the
 *     plugin passes them; launches go to a non-blocking stream, on the
 *     plugin's grid (min(n, 1024) blocks of 256 threads) and, every few
 *     rounds, on small grids that make each block loop. Every round is
 *     compared byte for byte with a CPU reference; a mismatch names the round,
 *     its seed, the byte and the fragment it belongs to.
 *
 *   unpack_kernel_test bench [--iters N]
 *     4 KiB fragments, scattered sources, contiguous destination: the
 *     kernel's bandwidth against cuMemcpyDtoDAsync of the same total bytes,
 *     measured in the same run with events on the same stream, as
 *       bulk          one launch of 65536 fragments (256 MiB) vs one copy;
 *       per_receive   64 launches of 1024 fragments (4 MiB: the most one
 *                     NCCL receive carries) vs 64 copies of 4 MiB;
 *       bulk_devmeta  as bulk, entries in device memory (what reading them
 *                     across PCIe costs).
 *     Prints the ratios (goal >= 0.9; reported, not enforced: a miss is a
 *     number to act on, not a broken build) as JSON, after checking that the
 *     benchmark's own output is right.
 *
 * Skips (77) without a usable GPU. Numbers also go to $GPUD_GPU_RESULTS.
 */
#include "gpu_test.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "gpu/unpack.h"		/* the plugin's struct dm_unpack_entry (NCCL's loadMeta) */
#include "unpack_fatbin.h"	/* generated from ../../src/gpu/unpack.cu */


#define MAX_FRAGS 2048u
#define MAX_LEN (64u << 10)
#define POOL_SIZE ((64u << 20) + MAX_LEN)
/* every fragment at its largest plus the largest gap, plus a guard */
#define DST_SIZE ((size_t)MAX_FRAGS * (MAX_LEN + 32) + 4096)
#define GUARD 64

static CUfunction kern;
static CUstream stream;

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static uint64_t rng_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
	return lo + rng_next(s) % (hi - lo + 1);
}

static void load_kernel(void)
{
	CUmodule mod;
	CUresult r = gt_cu.ModuleLoadData(&mod, dm_unpack_fatbin);

	if (r != CUDA_SUCCESS)
		T_FAIL("cuModuleLoadData(unpack fatbin): %s (the fatbin has no code for this "
		       "GPU? CMAKE_CUDA_ARCHITECTURES=%s)", gt_cu_err(r), GT_CUDA_ARCHS);
	GT_CU(gt_cu.ModuleGetFunction(&kern, mod, "dm_unpack_kernel"));
	GT_CU(gt_cu.StreamCreate(&stream, CU_STREAM_NON_BLOCKING));
}

static void launch(CUdeviceptr meta, unsigned int n, CUdeviceptr pool, CUdeviceptr dst,
		   unsigned int grid)
{
	void *args[4] = { &meta, &n, &pool, &dst };

	GT_CU(gt_cu.LaunchKernel(kern, grid, 1, 1, DM_UNPACK_THREADS, 1, 1, 0, stream, args, NULL));
}

/* The plugin's launch shape (src/gpu/cuda.c). */
static unsigned int plugin_grid(unsigned int n)
{
	return n < DM_UNPACK_MAX_BLOCKS ? n : DM_UNPACK_MAX_BLOCKS;
}

/* Mapped host memory for @count entries: host pointer and its device address. */
static struct dm_unpack_entry *meta_alloc(size_t count, CUdeviceptr *dev)
{
	void *h;

	GT_CU(gt_cu.MemHostAlloc(&h, count * sizeof(struct dm_unpack_entry),
				 CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE));
	GT_CU(gt_cu.MemHostGetDevicePointer(dev, h, 0));
	return h;
}

/* ---- check ---- */

static uint32_t pick_len(uint64_t *s)
{
	switch (rng_next(s) % 6) {
	case 0:
		return (uint32_t)rng_range(s, 1, 16);
	case 1:	/* a multiple of 16, or one off it */
		return (uint32_t)(rng_range(s, 1, 256) * 16 + rng_range(s, 0, 2)) - 1;
	case 2:
		return 4096;
	case 3:
		return MAX_LEN - (uint32_t)rng_range(s, 0, 1);
	default: {	/* log-uniform over 1 .. 64 KiB */
		uint32_t bits = (uint32_t)rng_range(s, 0, 16);
		uint64_t lo = 1ull << bits >> 1, hi = (1ull << bits) - 1;

		return (uint32_t)(bits ? rng_range(s, lo ? lo : 1, hi ? hi : 1) : 1);
	}
	}
}

/*
 * Fragments of one round: lengths, destinations laid out in a shuffled order
 * with gaps of 0..31 bytes, sources anywhere in the pool with one of three
 * alignments. Returns the end of the last destination byte.
 */
static size_t make_round(uint64_t *s, struct dm_unpack_entry *e, unsigned int n)
{
	static unsigned int order[MAX_FRAGS];
	size_t at = rng_range(s, 0, 15);

	for (unsigned int i = 0; i < n; i++) {
		order[i] = i;
		e[i].len = pick_len(s);
	}
	for (unsigned int i = n - 1; i > 0; i--) {
		unsigned int j = (unsigned int)rng_range(s, 0, i), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned int k = 0; k < n; k++) {
		struct dm_unpack_entry *x = &e[order[k]];
		uint64_t src = rng_range(s, 0, POOL_SIZE - x->len);

		x->dst_off = at;
		at += x->len + (rng_next(s) & 1 ? 0 : rng_range(s, 1, 31));
		switch (rng_next(s) % 3) {
		case 0:	/* both 16-aligned where the destination is */
			src &= ~15ull;
			break;
		case 1:	/* the destination's misalignment: the vector path with a head */
			src = (src & ~15ull) | (x->dst_off & 15);
			break;
		default:	/* unrelated: the byte path */
			break;
		}
		if (src + x->len > POOL_SIZE)
			src -= 16;
		x->src_off = (uint32_t)src;
	}
	return at;
}

static void reference(const struct dm_unpack_entry *e, unsigned int n, const uint8_t *pool,
		      uint8_t *dst)
{
	for (unsigned int i = 0; i < n; i++)
		memcpy(dst + e[i].dst_off, pool + e[i].src_off, e[i].len);
}

static void report_mismatch(const struct dm_unpack_entry *e, unsigned int n,
			    const uint8_t *want, const uint8_t *got, size_t end, unsigned int round,
			    uint64_t seed)
{
	size_t off = 0, bad = 0;

	while (off < end && want[off] == got[off])
		off++;
	for (size_t i = off; i < end; i++)
		bad += want[i] != got[i];
	for (unsigned int i = 0; i < n; i++)
		if (off >= e[i].dst_off && off < e[i].dst_off + e[i].len)
			T_FAIL("round %u (seed %llu, %u fragments): dst byte %zu: expected 0x%02x, "
			       "got 0x%02x (%zu bytes differ); fragment %u: src_off %u len %u "
			       "dst_off %llu", round, (unsigned long long)seed, n, off, want[off],
			       got[off], bad, i, e[i].src_off, e[i].len,
			       (unsigned long long)e[i].dst_off);
	T_FAIL("round %u (seed %llu, %u fragments): dst byte %zu, in no fragment (a gap or the "
	       "guard), changed: expected 0x%02x, got 0x%02x (%zu bytes differ)", round,
	       (unsigned long long)seed, n, off, want[off], got[off], bad);
}

static int run_check(unsigned int rounds, uint64_t seed0)
{
	static const unsigned int special[] = { 1, 2, 3, 16, 17, 255, 256, 1023, 1024, 1025,
						2047, 2048 };
	uint8_t *pool_h, *want, *got;
	CUdeviceptr pool, dst, meta_d;
	uint64_t bytes_total = 0;
	unsigned long long frags_total = 0;
	struct dm_unpack_entry *meta;
	char json[512];
	double t0 = t_now();

	pool_h = malloc(POOL_SIZE);
	want = malloc(DST_SIZE);
	got = malloc(DST_SIZE);
	T_ASSERT(pool_h && want && got);
	t_pattern_fill(seed0, 0, pool_h, POOL_SIZE);
	GT_CU(gt_cu.MemAlloc(&pool, POOL_SIZE));
	GT_CU(gt_cu.MemAlloc(&dst, DST_SIZE));
	GT_CU(gt_cu.MemcpyHtoD(pool, pool_h, POOL_SIZE));
	meta = meta_alloc(MAX_FRAGS, &meta_d);

	for (unsigned int r = 0; r < rounds; r++) {
		uint64_t seed = seed0 + r, s = seed;
		unsigned int n = r < sizeof(special) / sizeof(special[0]) ?
				 special[r] : (unsigned int)rng_range(&s, 1, MAX_FRAGS);
		/* the plugin's grid mostly; 1 and 13 blocks make every block loop */
		unsigned int grid = r % 5 == 3 ? 1 : r % 5 == 4 ? 13 : plugin_grid(n);
		uint8_t fill = (uint8_t)(0x5a + r);
		size_t end = make_round(&s, meta, n) + GUARD;

		memset(want, fill, end);
		reference(meta, n, pool_h, want);
		GT_CU(gt_cu.MemsetD8Async(dst, fill, DST_SIZE, stream));
		launch(meta_d, n, pool, dst, grid);
		GT_CU(gt_cu.StreamSynchronize(stream));
		GT_CU(gt_cu.MemcpyDtoH(got, dst, end));
		if (memcmp(want, got, end))
			report_mismatch(meta, n, want, got, end, r, seed);
		for (unsigned int i = 0; i < n; i++)
			bytes_total += meta[i].len;
		frags_total += n;
	}
	t_log("%u rounds byte-exact (seeds %llu..%llu): %llu fragments, %llu bytes, %.1f s",
	      rounds, (unsigned long long)seed0, (unsigned long long)(seed0 + rounds - 1),
	      frags_total, (unsigned long long)bytes_total, t_now() - t0);
	snprintf(json, sizeof(json),
		 "{\"rounds\": %u, \"seed\": %llu, \"fragments\": %llu, \"bytes\": %llu, "
		 "\"byte_exact\": true, \"entries\": \"cuMemHostAlloc(DEVICEMAP)\", "
		 "\"stream\": \"non-blocking\"}",
		 rounds, (unsigned long long)seed0, frags_total, (unsigned long long)bytes_total);
	gt_result("plugin_unpack_kernel_gpu", json);
	GT_CU(gt_cu.MemFreeHost(meta));
	GT_CU(gt_cu.MemFree(dst));
	GT_CU(gt_cu.MemFree(pool));
	free(pool_h);
	free(want);
	free(got);
	return T_EXIT_PASS;
}

/* ---- bench ---- */

#define B_FRAG 4096u
#define B_TOTAL (256u << 20)
#define B_FRAGS (B_TOTAL / B_FRAG)
#define B_RECV_FRAGS 1024u	/* 4 MiB: NET_UNPACK_MAX_SLICE_SIZE */

struct bench_res {
	double kern_gbps, copy_gbps;
};

static double elapsed_ms(CUevent a, CUevent b)
{
	float ms = 0;

	GT_CU(gt_cu.EventSynchronize(b));
	GT_CU(gt_cu.EventElapsedTime(&ms, a, b));
	return ms;
}

/*
 * @per: fragments per launch (and bytes per copy / B_FRAG). Warm-up first,
 * then @iters repetitions of each, timed with events on our stream.
 */
static struct bench_res bench_one(CUdeviceptr meta_d, CUdeviceptr pool, CUdeviceptr dst,
				  CUdeviceptr dst2, unsigned int per, unsigned int iters)
{
	unsigned int launches = B_FRAGS / per;
	struct bench_res res;
	CUevent a, b;

	GT_CU(gt_cu.EventCreate(&a, CU_EVENT_DEFAULT));
	GT_CU(gt_cu.EventCreate(&b, CU_EVENT_DEFAULT));
	for (int phase = 0; phase < 2; phase++) {
		unsigned int reps = phase ? iters : 2;

		GT_CU(gt_cu.EventRecord(a, stream));
		for (unsigned int it = 0; it < reps; it++)
			for (unsigned int l = 0; l < launches; l++)
				launch(meta_d + (CUdeviceptr)l * per *
						sizeof(struct dm_unpack_entry),
				       per, pool, dst, plugin_grid(per));
		GT_CU(gt_cu.EventRecord(b, stream));
		res.kern_gbps = (double)B_TOTAL * reps / (elapsed_ms(a, b) * 1e6);

		GT_CU(gt_cu.EventRecord(a, stream));
		for (unsigned int it = 0; it < reps; it++)
			for (unsigned int l = 0; l < launches; l++)
				GT_CU(gt_cu.MemcpyDtoDAsync(dst2 + (CUdeviceptr)l * per * B_FRAG,
							    pool + (CUdeviceptr)l * per * B_FRAG,
							    (size_t)per * B_FRAG, stream));
		GT_CU(gt_cu.EventRecord(b, stream));
		res.copy_gbps = (double)B_TOTAL * reps / (elapsed_ms(a, b) * 1e6);
	}
	GT_CU(gt_cu.EventDestroy(a));
	GT_CU(gt_cu.EventDestroy(b));
	return res;
}

static int run_bench(unsigned int iters)
{
	static const char *names[3] = { "bulk", "per_receive", "bulk_devmeta" };
	struct bench_res res[3];
	CUdeviceptr pool, dst, dst2, meta_h_d, meta_d;
	uint8_t *pool_h, *got;
	char json[2048];
	struct dm_unpack_entry *meta;
	uint64_t s = 42;
	uint32_t *perm;
	size_t o;

	pool_h = malloc(B_TOTAL);
	got = malloc(B_TOTAL);
	perm = malloc(B_FRAGS * sizeof(*perm));
	T_ASSERT(pool_h && got && perm);
	t_pattern_fill(7, 0, pool_h, B_TOTAL);
	/* scattered sources: 4 KiB slots of the pool in a random order */
	for (uint32_t i = 0; i < B_FRAGS; i++)
		perm[i] = i;
	for (uint32_t i = B_FRAGS - 1; i > 0; i--) {
		uint32_t j = (uint32_t)rng_range(&s, 0, i), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	meta = meta_alloc(B_FRAGS, &meta_h_d);
	for (uint32_t i = 0; i < B_FRAGS; i++)
		meta[i] = (struct dm_unpack_entry){ .src_off = perm[i] * B_FRAG, .len = B_FRAG,
					  .dst_off = (uint64_t)i * B_FRAG };
	GT_CU(gt_cu.MemAlloc(&pool, B_TOTAL));
	GT_CU(gt_cu.MemAlloc(&dst, B_TOTAL));
	GT_CU(gt_cu.MemAlloc(&dst2, B_TOTAL));
	GT_CU(gt_cu.MemAlloc(&meta_d, B_FRAGS * sizeof(struct dm_unpack_entry)));
	GT_CU(gt_cu.MemcpyHtoD(pool, pool_h, B_TOTAL));
	GT_CU(gt_cu.MemcpyHtoD(meta_d, meta, B_FRAGS * sizeof(struct dm_unpack_entry)));

	res[0] = bench_one(meta_h_d, pool, dst, dst2, B_FRAGS, iters);
	res[1] = bench_one(meta_h_d, pool, dst, dst2, B_RECV_FRAGS, iters);
	res[2] = bench_one(meta_d, pool, dst, dst2, B_FRAGS, iters);

	/* the timed launches' output must be right too */
	GT_CU(gt_cu.StreamSynchronize(stream));
	GT_CU(gt_cu.MemcpyDtoH(got, dst, B_TOTAL));
	for (uint32_t i = 0; i < B_FRAGS; i++)
		if (memcmp(got + (size_t)i * B_FRAG, pool_h + (size_t)perm[i] * B_FRAG, B_FRAG))
			T_FAIL("bench output: fragment %u (from pool slot %u) differs", i, perm[i]);

	o = (size_t)snprintf(json, sizeof(json),
			     "{\"frag_bytes\": %u, \"total_bytes\": %u, \"iters\": %u, "
			     "\"entries\": \"cuMemHostAlloc(DEVICEMAP)\", \"goal_ratio\": 0.9, "
			     "\"checked\": true",
			     B_FRAG, B_TOTAL, iters);
	for (int i = 0; i < 3; i++) {
		double ratio = res[i].kern_gbps / res[i].copy_gbps;

		t_log("%-13s kernel %7.1f GB/s, cuMemcpyDtoDAsync %7.1f GB/s, ratio %.2f%s",
		      names[i], res[i].kern_gbps, res[i].copy_gbps, ratio,
		      i == 2 ? " (entries in device memory: for comparison)" :
		      ratio >= 0.9 ? " (goal 0.9 met)" : " (BELOW the 0.9 goal)");
		o += (size_t)snprintf(json + o, sizeof(json) - o,
				      ", \"%s\": {\"kernel_GBps\": %.1f, \"memcpy_GBps\": %.1f, "
				      "\"ratio\": %.3f, \"goal_met\": %s}",
				      names[i], res[i].kern_gbps, res[i].copy_gbps, ratio,
				      ratio >= 0.9 ? "true" : "false");
	}
	snprintf(json + o, sizeof(json) - o, "}");
	gt_result("plugin_unpack_bench_gpu", json);

	GT_CU(gt_cu.MemFree(meta_d));
	GT_CU(gt_cu.MemFree(dst2));
	GT_CU(gt_cu.MemFree(dst));
	GT_CU(gt_cu.MemFree(pool));
	GT_CU(gt_cu.MemFreeHost(meta));
	free(perm);
	free(got);
	free(pool_h);
	return T_EXIT_PASS;
}

static void usage(void)
{
	fprintf(stderr, "usage: unpack_kernel_test check [--rounds N] [--seed S]\n"
			"       unpack_kernel_test bench [--iters N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t seed = (uint64_t)time(NULL) * 1000003u + (uint64_t)getpid();
	unsigned int rounds = 300, iters = 20;
	bool bench;
	CUdevice dev;

	if (argc < 2 || (strcmp(argv[1], "check") && strcmp(argv[1], "bench")))
		usage();
	bench = !strcmp(argv[1], "bench");
	for (int i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--rounds"))
			rounds = (unsigned int)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seed"))
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--iters"))
			iters = (unsigned int)strtoul(argv[++i], NULL, 0);
		else
			usage();
	}
	if (!rounds || !iters)
		usage();
	gt_cuda_open(0, &dev);
	load_kernel();
	if (bench)
		return run_bench(iters);
	t_log("seed %llu (rerun: unpack_kernel_test check --seed %llu --rounds %u)",
	      (unsigned long long)seed, (unsigned long long)seed, rounds);
	return run_check(rounds, seed);
}
