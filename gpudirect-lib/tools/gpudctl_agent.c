// SPDX-License-Identifier: MIT
/*
 * gpudctl agent status: what gpudd holds for whom (clients, queues,
 * bindings, rules); agent bench is gpudctl_bench.c.
 * gpudctl cleanup IFNAME: undo what dead processes left
 * on a NIC, from their journals, without an agent.
 */
#include "gpudctl.h"

#include <gpudirect/gpudirect.h>

#include <stdlib.h>
#include <string.h>

/* The agent's JSON, indented for a human: one object per line at depth <= 3. */
static void print_indented(const char *s)
{
	int depth = 0;
	bool in_str = false;

	for (; *s; s++) {
		char c = *s;

		putchar(c);
		if (in_str) {
			if (c == '\\' && s[1])
				putchar(*++s);
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			depth--;
		} else if (c == ',' && depth <= 3) {
			putchar('\n');
			for (int i = 0; i < depth; i++)
				fputs("  ", stdout);
		}
	}
	putchar('\n');
}

int gpudctl_agent(const struct gpudctl_opts *o, int argc, char **argv)
{
	char *json = NULL;
	int err;

	if (argc >= 2 && !strcmp(argv[1], "bench"))
		return gpudctl_agent_bench(o, argc, argv);
	if (argc != 2 || strcmp(argv[1], "status")) {
		fprintf(stderr, "gpudctl: agent takes a subcommand: status, or bench IFNAME\n");
		return GPUDCTL_EXIT_USAGE;
	}
	err = gpud_agent_status(NULL, &json);
	if (err) {
		if (o->json) {
			printf("{\"error\":");
			gpudctl_json_str(stdout, gpud_errmsg());
			printf("}\n");
		}
		return GPUDCTL_EXIT_FAIL;
	}
	if (o->json)
		printf("%s\n", json);
	else
		print_indented(json);
	free(json);
	return GPUDCTL_EXIT_OK;
}

int gpudctl_cleanup(const struct gpudctl_opts *o, int argc, char **argv)
{
	struct gpud_cleanup_stats st = { .sz = sizeof(st) };
	int err;

	if (argc != 2) {
		fprintf(stderr, "gpudctl: cleanup needs IFNAME\n");
		return GPUDCTL_EXIT_USAGE;
	}
	err = gpud_nic_cleanup(argv[1], &st);
	if (o->json) {
		printf("{\"ifname\":");
		gpudctl_json_str(stdout, argv[1]);
		if (err) {
			printf(",\"error\":");
			gpudctl_json_str(stdout, gpud_errmsg());
		}
		printf(",\"journals\":%u,\"rules_removed\":%u,\"rss_restored\":%u,"
		       "\"header_split_restored\":%u,\"channels_restored\":%u,\"live_owners\":%u,"
		       "\"other_netns\":%u}\n", st.journals, st.rules, st.rss, st.hds, st.channels,
		       st.live, st.other_netns);
	} else if (!err) {
		printf("%s: undid what %u dead process(es) left: %u rule(s) removed, %u RSS "
		       "table(s), %u channel count(s) and %u header-split setting(s) restored\n",
		       argv[1], st.journals, st.rules, st.rss, st.channels, st.hds);
		if (st.live)
			printf("%s: %u journal(s) of running processes left alone (they restore "
			       "on exit)\n", argv[1], st.live);
		if (st.other_netns)
			printf("%s: %u journal(s) of another network namespace: run cleanup "
			       "there\n", argv[1], st.other_netns);
	}
	return err ? GPUDCTL_EXIT_FAIL : GPUDCTL_EXIT_OK;
}
