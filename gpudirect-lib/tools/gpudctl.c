// SPDX-License-Identifier: MIT
/*
 * gpudctl: look at and use devmem TCP receive on a NIC, in the spirit of ip
 * and ethtool.
 *
 *   gpudctl [-j] [-v] doctor [--no-trial] [IFNAME]
 *   gpudctl [-j] [-v] bind IFNAME QUEUES --mem SPEC SIZE
 *   gpudctl [-j] [-v] status [IFNAME]
 *   gpudctl [-j] [-v] agent status
 *   gpudctl [-j] [-v] agent bench IFNAME [-n ROUNDS] [--size SIZE]... [--mem SPEC]
 *   gpudctl [-j] [-v] cleanup IFNAME
 *
 * Library messages reach stderr only through the log callback set here.
 */
#include "gpudctl.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void gpudctl_usage(FILE *f)
{
	fputs("usage: gpudctl [-j] [-v] COMMAND ...\n"
	      "  doctor [--no-trial] [IFNAME]\n"
	      "        what devmem TCP needs here, and the fix for each missing piece;\n"
	      "        exit 0 when devmem RX is usable on IFNAME (without IFNAME: when\n"
	      "        the kernel has it), 1 otherwise. The queue-management check\n"
	      "        binds a small udmabuf to the last RX queue for a moment (that\n"
	      "        queue restarts); --no-trial skips it.\n"
	      "  bind IFNAME QUEUES --mem cuda:N|hip:N|host SIZE\n"
	      "        binds SIZE bytes (K/M/G suffixes) of that memory to RX QUEUES\n"
	      "        (\"1\", \"1-3\", \"1,3\"), turns header split on if it is off,\n"
	      "        prints the dma-buf id and holds until SIGINT/SIGTERM; then\n"
	      "        unbinds and restores the NIC.\n"
	      "  status [IFNAME]\n"
	      "        bindings, RX/TX queues and page pools (all devices without IFNAME)\n"
	      "  agent status\n"
	      "        what the node agent gpudd holds: clients, their queues, bindings\n"
	      "        and flow rules; per NIC the pool, the RX channel count (and the\n"
	      "        original gpudd puts back) and the queues RSS spreads over\n"
	      "        (socket: GPUD_AGENT, else /run/gpudirect/gpudd.sock)\n"
	      "  agent bench IFNAME [-n ROUNDS] [--size SIZE]... [--mem SPEC]\n"
	      "        a rank's start-up through gpudd, ROUNDS times (default 10) per SIZE\n"
	      "        (default 64K and 4M): connect, a queue, header split, the bind of a\n"
	      "        SPEC (default host) dma-buf; each step's median, max and mean ms,\n"
	      "        and gpudd's own service time of it, against the 50 ms target\n"
	      "  cleanup IFNAME\n"
	      "        undoes what processes killed without an agent left on IFNAME\n"
	      "        (their flow rules, RSS table, header split), from the journals\n"
	      "        under /run/gpudirect/nic; running processes are left alone\n"
	      "options: -j/--json JSON output, -v/--verbose library debug messages on stderr,\n"
	      "         -h/--help this text\n"
	      "exit: 0 ok, 1 failure, 2 usage error\n", f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gpudctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	gpudctl_usage(stderr);
	return GPUDCTL_EXIT_USAGE;
}

static void log_to_stderr(enum gpud_log_level level, const char *msg, void *ctx)
{
	static const char *const tag[] = { "error", "warning", "info", "debug" };

	fprintf(stderr, "gpudctl: %s: %s\n", level <= GPUD_LOG_DEBUG ? tag[level] : "?", msg);
}

/* ---- bind ---- */

struct bind_args {
	const char *ifname, *spec;
	unsigned int queues[GPUDCTL_MAX_QUEUES];
	size_t nqueues, size;
};

static int bind_parse(int argc, char **argv, struct bind_args *a)
{
	const char *pos[3];
	int npos = 0, err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mem")) {
			if (++i == argc)
				return usage_error("bind: --mem needs a memory kind");
			a->spec = argv[i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			return usage_error("bind: unknown option %s", argv[i]);
		} else if (npos < 3) {
			pos[npos++] = argv[i];
		} else {
			return usage_error("bind: unexpected argument %s", argv[i]);
		}
	}
	if (npos != 3 || !a->spec)
		return usage_error("bind: needs IFNAME QUEUES --mem SPEC SIZE");
	a->ifname = pos[0];
	err = gpudctl_parse_queues(pos[1], a->queues, GPUDCTL_MAX_QUEUES, &a->nqueues);
	if (err)
		return usage_error("bind: bad queue list \"%s\" (e.g. 1, 1-3, 1,3)", pos[1]);
	if (gpudctl_parse_size(pos[2], &a->size))
		return usage_error("bind: bad size \"%s\" (e.g. 64M, 1G)", pos[2]);
	return 0;
}

static void bind_print(const struct gpudctl_opts *o, const struct bind_args *a,
		       const struct gpud_mem *mem, const struct gpud_binding *b)
{
	if (!o->json) {
		printf("bound %zu bytes of %s memory to %s queue%s", gpud_mem_size(mem),
		       gpud_mem_kind_name(gpud_mem_kind(mem)), a->ifname,
		       a->nqueues > 1 ? "s" : "");
		for (size_t i = 0; i < a->nqueues; i++)
			printf("%s%u", i ? "," : " ", a->queues[i]);
		printf(": dma-buf id %u\nholding; SIGINT/SIGTERM unbinds and restores %s\n",
		       gpud_binding_id(b), a->ifname);
	} else {
		printf("{\"ifname\":");
		gpudctl_json_str(stdout, a->ifname);
		printf(",\"ifindex\":%u,\"queues\":[", if_nametoindex(a->ifname));
		for (size_t i = 0; i < a->nqueues; i++)
			printf("%s%u", i ? "," : "", a->queues[i]);
		printf("],\"mem\":\"%s\",\"size\":%zu,\"dmabuf_id\":%u}\n",
		       gpud_mem_kind_name(gpud_mem_kind(mem)), gpud_mem_size(mem),
		       gpud_binding_id(b));
	}
	fflush(stdout);
}

/* Header split on for the binding's life (gpud_nic_free puts it back). */
static void bind_prepare_nic(struct gpud_nic *nic)
{
	enum gpud_hds hds;

	if (gpud_nic_get_header_split(nic, &hds) == 0 && hds == GPUD_HDS_DISABLED)
		gpud_nic_set_header_split(nic, true);
}

int gpudctl_bind(const struct gpudctl_opts *o, int argc, char **argv)
{
	struct gpud_mem_opts mopts = { .sz = sizeof(mopts) };
	struct gpud_binding *b = NULL;
	struct gpud_nic *nic = NULL;
	struct gpud_mem *mem = NULL;
	static struct bind_args a;
	enum gpud_mem_kind kind;
	sigset_t sigs, old;
	int err, sig;

	err = bind_parse(argc, argv, &a);
	if (err)
		return err;
	if (gpud_mem_parse_spec(a.spec, &kind, &mopts))
		return usage_error("bind: bad memory \"%s\" (host, cuda:N, hip:N)", a.spec);
	/* Held from here: a signal during setup still ends in a clean teardown. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, &old);
	err = gpud_nic_open(a.ifname, &nic);
	if (err)
		goto out;
	err = gpud_mem_create(kind, a.size, &mopts, &mem);
	if (err)
		goto out;
	bind_prepare_nic(nic);
	err = gpud_bind_rx(gpud_nic_ifindex(nic), mem, a.queues, a.nqueues, &b);
	if (err)
		goto out;
	bind_print(o, &a, mem, b);
	while (sigwait(&sigs, &sig))
		;
	if (!o->json)
		printf("signal %d: unbinding and restoring %s\n", sig, a.ifname);
out:
	gpud_binding_free(b);
	gpud_nic_free(nic);
	gpud_mem_free(mem);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return err ? GPUDCTL_EXIT_FAIL : GPUDCTL_EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gpudctl_opts o = { 0 };
	const char *cmd;
	int c;

	while ((c = getopt_long(argc, argv, "+jvh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'h':
			gpudctl_usage(stdout);
			return GPUDCTL_EXIT_OK;
		default:
			gpudctl_usage(stderr);
			return GPUDCTL_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("no command given");
	gpud_set_log(log_to_stderr, NULL, o.verbose ? GPUD_LOG_DEBUG : GPUD_LOG_WARN);
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (!strcmp(cmd, "doctor"))
		return gpudctl_doctor(&o, argc, argv);
	if (!strcmp(cmd, "bind"))
		return gpudctl_bind(&o, argc, argv);
	if (!strcmp(cmd, "status"))
		return gpudctl_status(&o, argc, argv);
	if (!strcmp(cmd, "agent"))
		return gpudctl_agent(&o, argc, argv);
	if (!strcmp(cmd, "cleanup"))
		return gpudctl_cleanup(&o, argc, argv);
	if (!strcmp(cmd, "help"))
		return gpudctl_usage(stdout), GPUDCTL_EXIT_OK;
	return usage_error("unknown command \"%s\"", cmd);
}
