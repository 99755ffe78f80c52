// SPDX-License-Identifier: MIT
/*
 * netns: gpudctl doctor/status/bind on a veth pair. veth lacks everything
 * devmem needs, so doctor must name each missing piece and exit 1; usage
 * errors exit 2. argv[1] is the gpudctl binary.
 */
#include "gpud_test.h"

#include <unistd.h>

static struct t_netpair p;
static const char *gpudctl;
static char out_path[64];
static char out[16384];

/* Runs gpudctl in namespace a; stdout+stderr into out[]. Returns its status. */
static int ctl(const char *args)
{
	FILE *f;
	size_t n;
	int st;

	st = t_netpair_exec(&p, 0, "%s %s >%s 2>&1", gpudctl, args, out_path);
	f = fopen(out_path, "r");
	T_ASSERT(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	return st;
}

static void expect(const char *needle)
{
	if (!strstr(out, needle))
		T_FAIL("gpudctl output lacks \"%s\":\n%s", needle, out);
}

static void test_doctor(void)
{
	char args[64];

	snprintf(args, sizeof(args), "doctor %s", p.ifname[0]);
	T_ASSERT_EQ(1, ctl(args));
	t_log("doctor on veth:\n%s", out);
	expect("[  ok  ] kernel");
	expect("devmem TCP RX available");
	expect("[ FAIL ] rx queues");
	expect("has 1 RX queue(s)");
	expect("[ FAIL ] header split");
	expect("not supported by the driver");
	expect("[ FAIL ] flow steering");
	expect("queue management API");
	if (access("/dev/udmabuf", F_OK))
		expect("unknown: needs /dev/udmabuf to try");
	expect("fix: ");
	expect("iommu");
	expect("NOT usable");

	snprintf(args, sizeof(args), "-j doctor %s", p.ifname[0]);
	T_ASSERT_EQ(1, ctl(args));
	expect("\"usable\":false");
	expect("{\"name\":\"kernel\",\"status\":\"ok\",\"decides\":true");
	expect("{\"name\":\"header split\",\"status\":\"fail\"");
	T_ASSERT(out[0] == '{' && strstr(out, "]}\n"));

	/* Kernel only: this host has devmem. */
	T_ASSERT_EQ(0, ctl("doctor"));
	expect("devmem RX in this kernel: available");
	T_ASSERT_EQ(1, ctl("doctor nosuchif0"));
	expect("[ FAIL ] interface");
}

static void test_status(void)
{
	char args[64];

	snprintf(args, sizeof(args), "status %s", p.ifname[0]);
	T_ASSERT_EQ(0, ctl(args));
	t_log("status:\n%s", out);
	expect(": 1 RX queues, 1 TX queues");
	expect("bindings: none");
	expect("rx queue 0: napi 0");
	snprintf(args, sizeof(args), "-j status %s", p.ifname[0]);
	T_ASSERT_EQ(0, ctl(args));
	expect("{\"devices\":[{\"ifname\":\"");
	expect("\"bindings\":[],\"queues\":[{\"id\":0,\"type\":\"rx\"");
	expect("\"orphan_page_pools\":[]}");
	T_ASSERT_EQ(0, ctl("status"));
	expect("lo (ifindex 1)");
	T_ASSERT_EQ(1, ctl("status nosuchif0"));
}

static void test_bind_and_usage(void)
{
	char args[96];

	snprintf(args, sizeof(args), "bind %s 0 --mem host 1M", p.ifname[0]);
	if (access("/dev/udmabuf", F_OK)) {
		T_ASSERT_EQ(1, ctl(args));
		t_log("bind without udmabuf: %s", out);
		expect("udmabuf");
	} else {
		T_ASSERT_EQ(1, ctl(args));
		expect("has no queue management API");
	}
	T_ASSERT_EQ(2, ctl(""));
	expect("usage: gpudctl");
	T_ASSERT_EQ(2, ctl("frobnicate"));
	T_ASSERT_EQ(2, ctl("bind x 3-1 --mem host 1M"));
	expect("bad queue list");
	T_ASSERT_EQ(2, ctl("bind x 1 --mem host 0"));
	expect("bad size");
	T_ASSERT_EQ(2, ctl("bind x 1 --mem nonsense 1M"));
	expect("bad memory");
	T_ASSERT_EQ(2, ctl("bind x 1 1M"));
	T_ASSERT_EQ(2, ctl("status a b"));
	T_ASSERT_EQ(2, ctl("doctor --bogus"));
	T_ASSERT_EQ(0, ctl("-h"));
	expect("doctor [--no-trial] [IFNAME]");
}

int main(int argc, char **argv)
{
	if (argc < 2)
		T_FAIL("usage: %s PATH_TO_GPUDCTL", argv[0]);
	gpudctl = argv[1];
	t_require_root();
	snprintf(out_path, sizeof(out_path), "/tmp/gpudctl-test-%d.out", (int)getpid());
	t_netpair_setup(&p, T_LINK_VETH);
	test_doctor();
	test_status();
	test_bind_and_usage();
	unlink(out_path);
	t_netpair_teardown(&p);
	printf("nic_gpudctl_netns: all checks passed\n");
	return T_EXIT_PASS;
}
