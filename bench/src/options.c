// SPDX-License-Identifier: MIT
/* Command line: one options struct, filled once, read everywhere. */
#include "rxbench.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

void rxb_usage(FILE *f)
{
	fputs("usage:\n"
	      "  gpud-rxbench --demo [-j] [--duration S] [--bytes N] [--flows N] [--compare]\n"
	      "      two network namespaces joined by veth (netdevsim inside the test VM),\n"
	      "      sender and receiver in this process, --validate on. Needs root.\n"
	      "  gpud-rxbench [receiver options]           receive (listen on --port ...)\n"
	      "  gpud-rxbench --send HOST[:PORT] [--flows N] [--bytes N | --duration S] [--runs K]\n"
	      "               [--rdma [--rdma-dev DEV]]\n"
	      "\n"
	      "receiver options:\n"
	      "  --mem host|cuda:N|hip:N  memory to receive into (default host)\n"
	      "  --ifname IF --queues Q   bind queues 1..Q of IF (header split, one n-tuple\n"
	      "                           rule per flow, RSS limited to queue 0)\n"
	      "  --mode auto|devmem|copy  gpud_rx mode (default auto)\n"
	      "  --flows N                TCP connections, one thread each (default 1)\n"
	      "  --duration S, --bytes N  stop after S seconds / N bytes in all (K, M, G)\n"
	      "  --validate               check every byte against the sender's pattern\n"
	      "  --no-validate            (--demo) measure without checking\n"
	      "  --compare [LIST]         also run baselines on the same path, LIST of: plain\n"
	      "                           (recv(), and recv+H2D copy on a GPU; the default),\n"
	      "                           rdma (the peer RDMA-writes into the same buffer),\n"
	      "                           all. E.g. --compare rdma, --compare plain,rdma\n"
	      "  --only rdma              the RDMA WRITE run alone (no gpud run)\n"
	      "  --rdma-dev DEV           RDMA device (default: the first; soft-RoCE:\n"
	      "                           rdma link add rxe0 type rxe netdev IF)\n"
	      "  --rdma-gid N             GID index (default: the RoCE GID of the side\n"
	      "                           channel's address, else the first IPv4 one)\n"
	      "  --listen ADDR --port P   where to listen; flow i of run r uses P + r*flows + i\n"
	      "  --chunk N                bytes per recv()/send() (default 128K, as iperf3)\n"
	      "  --mem-size N             receive buffer size (default 32M devmem, 8M/flow copy)\n"
	      "  --seed N                 pattern seed (flow i uses seed + i)\n"
	      "  -j, --json               one JSON object (schema in docs/results.md)\n"
	      "  --progress               progress line on stderr also with -j\n"
	      "  -v, --verbose            library log on stderr\n"
	      "  --inject-error OFF       (sender, --demo) flip a bit at stream offset OFF of\n"
	      "                           flow 0, to see --validate fail\n"
	      "\n"
	      "sender options:\n"
	      "  --runs K                 K consecutive TCP runs (a --compare receiver says how many)\n"
	      "  --rdma                   then one RDMA WRITE run (a receiver with --compare rdma\n"
	      "                           or --only rdma); --rdma alone: only that run\n",
	      f);
}

const char *rxb_mode_name(enum gpud_rx_mode m)
{
	switch (m) {
	case GPUD_RX_DEVMEM:
		return "devmem";
	case GPUD_RX_COPY:
		return "copy";
	default:
		return "auto";
	}
}

/* "64K", "1G", "1048576": binary suffixes, the library's one parser. */
static int parse_size(const char *s, uint64_t *out)
{
	return gpud_parse_size(s, out);
}

/* A plain 64-bit number (decimal or 0x...), for seeds and byte offsets. */
static int parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

static int parse_send(struct rxb_opts *o, char *arg)
{
	char *colon = strrchr(arg, ':');

	o->role = RXB_ROLE_SEND;
	o->host = arg;
	if (colon) {
		*colon = '\0';
		if (parse_uint(colon + 1, 1, 65535, &o->port))
			return -EINVAL;
	}
	return *o->host ? 0 : -EINVAL;
}

enum {
	OPT_MEM = 256, OPT_IFNAME, OPT_QUEUES, OPT_FLOWS, OPT_DURATION, OPT_BYTES, OPT_MODE,
	OPT_VALIDATE, OPT_NO_VALIDATE, OPT_PROGRESS, OPT_COMPARE, OPT_LISTEN, OPT_PORT,
	OPT_SEND, OPT_RUNS, OPT_SEED, OPT_MEM_SIZE, OPT_CHUNK, OPT_DEMO, OPT_INJECT,
	OPT_ONLY, OPT_RDMA_DEV, OPT_RDMA_GID, OPT_RDMA,
};

static const struct option longopts[] = {
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "ifname", required_argument, NULL, OPT_IFNAME },
	{ "queues", required_argument, NULL, OPT_QUEUES },
	{ "flows", required_argument, NULL, OPT_FLOWS },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "bytes", required_argument, NULL, OPT_BYTES },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "validate", no_argument, NULL, OPT_VALIDATE },
	{ "no-validate", no_argument, NULL, OPT_NO_VALIDATE },
	{ "json", no_argument, NULL, 'j' },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "compare", optional_argument, NULL, OPT_COMPARE },
	{ "only", required_argument, NULL, OPT_ONLY },
	{ "rdma-dev", required_argument, NULL, OPT_RDMA_DEV },
	{ "rdma-gid", required_argument, NULL, OPT_RDMA_GID },
	{ "rdma", no_argument, NULL, OPT_RDMA },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "send", required_argument, NULL, OPT_SEND },
	{ "runs", required_argument, NULL, OPT_RUNS },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "mem-size", required_argument, NULL, OPT_MEM_SIZE },
	{ "chunk", required_argument, NULL, OPT_CHUNK },
	{ "demo", no_argument, NULL, OPT_DEMO },
	{ "inject-error", required_argument, NULL, OPT_INJECT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int bad(const char *opt, const char *arg)
{
	fprintf(stderr, "gpud-rxbench: invalid %s '%s' (see --help)\n", opt, arg);
	return RXB_EXIT_USAGE;
}

/* "plain", "rdma", "all" or a comma list of them. */
static int parse_compare(struct rxb_opts *o, const char *list)
{
	char buf[64], *save = NULL, *w;
	bool plain = false, rdma = false;

	if (strlen(list) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", list);
	for (w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		if (!strcmp(w, "plain"))
			plain = true;
		else if (!strcmp(w, "rdma"))
			rdma = true;
		else if (!strcmp(w, "all"))
			plain = rdma = true;
		else
			return -EINVAL;
	}
	if (!plain && !rdma)
		return -EINVAL;
	o->cmp_plain |= plain;
	o->cmp_rdma |= rdma;
	return 0;
}

static bool is_compare_list(const char *s)
{
	struct rxb_opts scratch = { 0 };

	return s && s[0] != '-' && !parse_compare(&scratch, s);
}

static int parse_one(struct rxb_opts *o, int c, char *arg, bool *no_validate, int argc,
		     char **argv)
{
	unsigned int v32;
	uint64_t v;
	char *end;

	switch (c) {
	case OPT_MEM:
		o->mem_spec = arg;
		break;
	case OPT_IFNAME:
		o->ifname = arg;
		break;
	case OPT_QUEUES:
		if (parse_uint(arg, 1, 64, &o->queues))
			return bad("--queues", arg);
		break;
	case OPT_FLOWS:
		if (parse_uint(arg, 1, RXB_MAX_FLOWS, &o->flows))
			return bad("--flows (1..64)", arg);
		break;
	case OPT_DURATION:
		o->duration = strtod(arg, &end);
		if (*end || end == arg || o->duration <= 0 || o->duration > 86400)
			return bad("--duration", arg);
		o->duration_set = true;
		break;
	case OPT_BYTES:
		if (parse_size(arg, &o->bytes) || !o->bytes)
			return bad("--bytes", arg);
		o->bytes_set = true;
		break;
	case OPT_MODE:
		if (!strcmp(arg, "auto"))
			o->mode = GPUD_RX_AUTO;
		else if (!strcmp(arg, "devmem"))
			o->mode = GPUD_RX_DEVMEM;
		else if (!strcmp(arg, "copy"))
			o->mode = GPUD_RX_COPY;
		else
			return bad("--mode (auto, devmem, copy)", arg);
		break;
	case OPT_VALIDATE:
		o->validate = true;
		break;
	case OPT_NO_VALIDATE:
		*no_validate = true;
		break;
	case 'j':
		o->json = true;
		break;
	case OPT_PROGRESS:
		o->progress = true;
		break;
	case OPT_COMPARE:
		/* `--compare rdma` as well as `--compare=rdma`; bare: plain. */
		if (!arg && optind < argc && is_compare_list(argv[optind]))
			arg = argv[optind++];
		o->compare = true;
		if (!arg)
			o->cmp_plain = true;
		else if (parse_compare(o, arg))
			return bad("--compare (plain, rdma, all; comma-separated)", arg);
		break;
	case OPT_ONLY:
		if (strcmp(arg, "rdma"))
			return bad("--only (rdma: the gpud run is the default, --compare adds "
				   "baselines)", arg);
		o->only_rdma = true;
		break;
	case OPT_RDMA_DEV:
		if (!*arg || strlen(arg) >= 64)
			return bad("--rdma-dev", arg);
		o->rdma_dev = arg;
		break;
	case OPT_RDMA_GID:
		if (parse_uint(arg, 0, 65535, &v32))
			return bad("--rdma-gid", arg);
		o->rdma_gid = (int)v32;
		break;
	case OPT_RDMA:
		o->rdma_send = true;
		break;
	case OPT_LISTEN:
		o->listen_addr = arg;
		break;
	case OPT_PORT:
		if (parse_uint(arg, 1, 65535, &o->port))
			return bad("--port", arg);
		break;
	case OPT_SEND:
		if (parse_send(o, arg))
			return bad("--send HOST[:PORT]", arg);
		break;
	case OPT_RUNS:
		if (parse_uint(arg, 1, 16, &o->runs))
			return bad("--runs (1..16)", arg);
		o->runs_set = true;
		break;
	case OPT_SEED:
		if (parse_u64(arg, &o->seed))
			return bad("--seed", arg);
		break;
	case OPT_MEM_SIZE:
		if (parse_size(arg, &v) || !v)
			return bad("--mem-size", arg);
		o->mem_size = v;
		break;
	case OPT_CHUNK:
		if (parse_size(arg, &v) || v < 64 || v > (64u << 20))
			return bad("--chunk (64 .. 64M)", arg);
		o->chunk = v;
		break;
	case OPT_DEMO:
		o->role = RXB_ROLE_DEMO;
		break;
	case OPT_INJECT:
		if (parse_u64(arg, &o->inject_at))
			return bad("--inject-error", arg);
		o->inject = true;
		break;
	case 'v':
		o->verbose = true;
		break;
	case 'h':
		rxb_usage(stdout);
		exit(RXB_EXIT_OK);
	default:
		rxb_usage(stderr);
		return RXB_EXIT_USAGE;
	}
	return 0;
}

int rxb_parse_args(int argc, char **argv, struct rxb_opts *o)
{
	bool no_validate = false;
	int c, err;

	memset(o, 0, sizeof(*o));
	o->role = RXB_ROLE_RECV;
	o->mem_spec = "host";
	o->flows = 1;
	o->mode = GPUD_RX_AUTO;
	o->port = RXB_DEFAULT_PORT;
	o->runs = 1;
	o->seed = RXB_DEFAULT_SEED;
	o->chunk = RXB_DEFAULT_CHUNK;
	o->rdma_gid = -1;

	while ((c = getopt_long(argc, argv, "jvh", longopts, NULL)) != -1) {
		err = parse_one(o, c, optarg, &no_validate, argc, argv);
		if (err)
			return err;
	}
	if (optind < argc) {
		fprintf(stderr, "gpud-rxbench: unexpected argument '%s'\n", argv[optind]);
		return RXB_EXIT_USAGE;
	}
	if (o->role == RXB_ROLE_DEMO) {
		/* The embedded default: ~5 s or 1 GiB, whichever comes first, checked. */
		if (!o->duration_set && !o->bytes_set) {
			o->duration = 5;
			o->bytes = 1ull << 30;
		}
		o->validate = !no_validate;
	}
	if (o->role == RXB_ROLE_SEND && !o->duration_set && !o->bytes_set)
		o->duration = 10;
	if (o->ifname && !o->queues)
		o->queues = 1;
	if (o->queues && !o->ifname && o->role == RXB_ROLE_RECV) {
		fprintf(stderr, "gpud-rxbench: --queues needs --ifname\n");
		return RXB_EXIT_USAGE;
	}
	if (o->mode == GPUD_RX_DEVMEM && !o->ifname && o->role == RXB_ROLE_RECV) {
		fprintf(stderr, "gpud-rxbench: --mode devmem needs --ifname IF (the NIC to bind)\n");
		return RXB_EXIT_USAGE;
	}
	if (o->only_rdma && o->compare) {
		fprintf(stderr, "gpud-rxbench: --only rdma and --compare exclude each other\n");
		return RXB_EXIT_USAGE;
	}
	if (o->role == RXB_ROLE_SEND && o->rdma_send && !o->runs_set)
		o->runs = 0;	/* --rdma alone: just the RDMA run */
	if (o->port + (o->compare ? RXB_MAX_RUNS : o->runs + 1) * o->flows > 65536) {
		fprintf(stderr, "gpud-rxbench: --port %u leaves no room for %u flows\n", o->port,
			o->flows);
		return RXB_EXIT_USAGE;
	}
	return 0;
}
