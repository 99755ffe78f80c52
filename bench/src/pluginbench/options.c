// SPDX-License-Identifier: MIT
/* Command line, nccl-tests' letters where they mean the same (-b -e -f -w). */
#include "pluginbench.h"

#include <gpudirect/gpudirect.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PB_TOOL " [options]   (root: creates two network namespaces)\n"
		"NCCL net plugin vs plain TCP, nccl-tests sendrecv style, two ranks joined by a\n"
		"veth pair that the tool creates and removes.\n"
		"  -b, --min-bytes SIZE   smallest message (default 8)\n"
		"  -e, --max-bytes SIZE   largest message (default 256M)\n"
		"  -f, --factor N         size step, 2 or 4 (default 2)\n"
		"  -t, --time SECONDS     measured time of the whole sweep, all transports (default 35)\n"
		"  -w, --warmup N         warmup iterations per size, fewer above 64 MiB (default 5)\n"
		"      --min-iters N      floor per size, even past the time budget (default 5)\n"
		"      --max-iters N      cap per size (default 100000)\n"
		"  -n, --nsocks N         plugin data sockets (NCCL_DEVMEM_NSOCKS) = raw TCP\n"
		"                         connections of the N-connection baseline (default 4)\n"
		"      --chunk SIZE       plugin: bytes per isend/irecv, 0 = whole message (default 0;\n"
		"                         NCCL's proxy posts 128K slices)\n"
		"      --depth N          plugin: requests in flight per direction (default 8)\n"
		"      --oneway           rank 1 sends, rank 0 receives (default: both, like sendrecv)\n"
		"      --mem host|cuda[:N]  plugin buffers (default host; raw TCP always uses host)\n"
		"      --plugin PATH      libnccl-net-devmem.so (default: the build tree next to this\n"
		"                         binary, else the loader's search path)\n"
		"      --no-check         do not verify the received bytes\n"
		"NCCL-shaped collectives (ring algorithm, N ranks, plugin vs the same ring on raw TCP):\n"
		"      --op OP            allreduce, allgather, reducescatter or sendrecv (128 KiB\n"
		"                         chunks, rank r -> r+1); default: the sweep above\n"
		"      --ranks N          2..8 processes, one namespace each (default 2; more than 2:\n"
		"                         a ring of veth pairs)\n"
		"      --channels C       comms per peer and direction, 1..8 (default 2)\n"
		"      --rounds R         alternating plugin/raw rounds per size, medians (default 3)\n"
		"                         (-e defaults to 16M with --op)\n"
		"  -j, --json             one JSON object on stdout (schema " PB_SCHEMA ")\n"
		"  -v, --verbose          the plugin's INFO log on stderr\n"
		"  -h, --help\n");
}

/* "64K", "1G": the library's parser (pluginbench links libgpudirect for it). */
static int parse_size(const char *s, uint64_t *out)
{
	return gpud_parse_size(s, out);
}

static int parse_uint(const char *s, unsigned int lo, unsigned int hi, unsigned int *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

static int parse_mem(const char *s, struct pb_opts *o)
{
	if (!strcmp(s, "host")) {
		o->mem = PB_MEM_HOST;
		return 0;
	}
	if (strncmp(s, "cuda", 4) || (s[4] && s[4] != ':'))
		return -EINVAL;
	o->mem = PB_MEM_CUDA;
	o->cuda_dev = s[4] ? atoi(s + 5) : 0;
	return 0;
}

static void defaults(struct pb_opts *o)
{
	const char *ns = getenv("NCCL_DEVMEM_NSOCKS");

	memset(o, 0, sizeof(*o));
	o->min_bytes = 8;
	o->max_bytes = 256ull << 20;
	o->factor = 2;
	o->budget_s = 35;
	o->warmup = 5;
	o->min_iters = 5;
	o->max_iters = 100000;
	o->nsocks = 4;
	if (ns && parse_uint(ns, 1, PB_MAX_CONNS, &o->nsocks))
		o->nsocks = 4;
	o->depth = 8;
	o->check = true;
	o->ranks = 2;
	o->channels = 2;
	o->rounds = 3;
}

static int parse_op(const char *s, enum pb_op *op)
{
	static const char *const names[] = { [PB_OP_ALLREDUCE] = "allreduce",
					      [PB_OP_ALLGATHER] = "allgather",
					      [PB_OP_REDUCESCATTER] = "reducescatter",
					      [PB_OP_SENDRECV] = "sendrecv" };

	for (int i = PB_OP_ALLREDUCE; i <= PB_OP_SENDRECV; i++) {
		if (!strcmp(s, names[i])) {
			*op = (enum pb_op)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* What the collectives cannot take, and what only they take; 0 or -EINVAL after saying so. */
static int check_coll(struct pb_opts *o, bool max_given, bool coll_only)
{
	if (o->op == PB_OP_NONE) {
		if (coll_only)
			fprintf(stderr, PB_TOOL ": --ranks, --channels and --rounds go with --op "
					"allreduce|allgather|reducescatter|sendrecv\n");
		return coll_only ? -EINVAL : 0;
	}
	if (o->oneway || o->chunk || o->mem != PB_MEM_HOST) {
		fprintf(stderr, PB_TOOL ": --op runs NCCL's own slicing over host buffers: drop "
				"--oneway, --chunk and --mem\n");
		return -EINVAL;
	}
	if (!max_given)
		o->max_bytes = 16u << 20;
	if (o->min_bytes > o->max_bytes) {
		fprintf(stderr, PB_TOOL ": -b is above -e (16M by default with --op)\n");
		return -EINVAL;
	}
	return 0;
}

/* 0, PB_EXIT_USAGE after saying why, or -1 after --help. */
int pb_parse_args(int argc, char **argv, struct pb_opts *o)
{
	enum { O_MAX_ITERS = 256, O_MIN_ITERS, O_CHUNK, O_DEPTH, O_ONEWAY, O_MEM, O_PLUGIN, O_NO_CHECK,
	       O_OP, O_RANKS, O_CHANNELS, O_ROUNDS };
	static const struct option lo[] = {
		{ "min-bytes", required_argument, NULL, 'b' },
		{ "max-bytes", required_argument, NULL, 'e' },
		{ "factor", required_argument, NULL, 'f' },
		{ "time", required_argument, NULL, 't' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "min-iters", required_argument, NULL, O_MIN_ITERS },
		{ "max-iters", required_argument, NULL, O_MAX_ITERS },
		{ "nsocks", required_argument, NULL, 'n' },
		{ "chunk", required_argument, NULL, O_CHUNK },
		{ "depth", required_argument, NULL, O_DEPTH },
		{ "oneway", no_argument, NULL, O_ONEWAY },
		{ "mem", required_argument, NULL, O_MEM },
		{ "plugin", required_argument, NULL, O_PLUGIN },
		{ "no-check", no_argument, NULL, O_NO_CHECK },
		{ "op", required_argument, NULL, O_OP },
		{ "ranks", required_argument, NULL, O_RANKS },
		{ "channels", required_argument, NULL, O_CHANNELS },
		{ "rounds", required_argument, NULL, O_ROUNDS },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool max_given = false, coll_only = false;
	int c, err = 0;
	char *end;

	defaults(o);
	while (!err && (c = getopt_long(argc, argv, "b:e:f:t:w:n:jvh", lo, NULL)) != -1) {
		switch (c) {
		case 'b':
			err = parse_size(optarg, &o->min_bytes);
			break;
		case 'e':
			err = parse_size(optarg, &o->max_bytes);
			max_given = true;
			break;
		case 'f':
			err = parse_uint(optarg, 2, 4, &o->factor);
			break;
		case 't':
			o->budget_s = strtod(optarg, &end);
			err = *end || o->budget_s <= 0 ? -EINVAL : 0;
			break;
		case 'w':
			err = parse_uint(optarg, 0, 1000, &o->warmup);
			break;
		case O_MIN_ITERS:
			err = parse_uint(optarg, 1, 100000000, &o->min_iters);
			break;
		case O_MAX_ITERS:
			err = parse_uint(optarg, 1, 100000000, &o->max_iters);
			break;
		case 'n':
			err = parse_uint(optarg, 1, PB_MAX_CONNS, &o->nsocks);
			break;
		case O_CHUNK:
			err = parse_size(optarg, &o->chunk);
			break;
		case O_DEPTH:
			err = parse_uint(optarg, 1, PB_MAX_DEPTH, &o->depth);
			break;
		case O_ONEWAY:
			o->oneway = true;
			break;
		case O_MEM:
			err = parse_mem(optarg, o);
			break;
		case O_PLUGIN:
			o->plugin_path = optarg;
			break;
		case O_NO_CHECK:
			o->check = false;
			break;
		case O_OP:
			err = parse_op(optarg, &o->op);
			break;
		case O_RANKS:
			err = parse_uint(optarg, 2, 8, &o->ranks);
			coll_only = true;
			break;
		case O_CHANNELS:
			err = parse_uint(optarg, 1, 8, &o->channels);
			coll_only = true;
			break;
		case O_ROUNDS:
			err = parse_uint(optarg, 1, 15, &o->rounds);
			coll_only = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return PB_EXIT_USAGE;
		}
		if (err)
			fprintf(stderr, PB_TOOL ": bad value for option -%c: '%s'\n",
				c < 256 ? c : '-', optarg);
	}
	if (!err && (optind < argc || !o->min_bytes || o->min_bytes > o->max_bytes ||
		     o->max_bytes > (1ull << 31) - 4096 || o->factor == 3)) {
		fprintf(stderr, PB_TOOL ": need 0 < min-bytes <= max-bytes < 2 GiB, factor 2 or 4, no extra arguments\n");
		err = -EINVAL;
	}
	if (!err)
		err = check_coll(o, max_given, coll_only);
	if (err) {
		usage(stderr);
		return PB_EXIT_USAGE;
	}
	return 0;
}
