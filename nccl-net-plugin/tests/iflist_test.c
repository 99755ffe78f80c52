// SPDX-License-Identifier: MIT
/* NCCL_DEVMEM_IFNAME with NCCL_SOCKET_IFNAME's rules (src/conn/iflist.c). */
#include "gpud_test.h"
#include "conn/iflist.h"

static void yes(const char *spec, const char *ifname)
{
	if (!dm_iflist_match(spec, ifname))
		T_FAIL("\"%s\" should select %s", spec, ifname);
}

static void no(const char *spec, const char *ifname)
{
	if (dm_iflist_match(spec, ifname))
		T_FAIL("\"%s\" should not select %s", spec, ifname);
}

int main(void)
{
	/* prefixes, a list of them */
	yes("eth", "eth0");
	yes("eth", "eth12");
	no("eth", "ens5f0");
	yes("eth,ens", "ens5f0");
	yes("ib,eth", "eth1");
	no("eth,ens", "lo");
	/* ^ excludes what the list matches, by prefix */
	no("^veth1", "veth1");
	no("^veth1", "veth10");
	yes("^veth1", "veth0");
	yes("^docker,lo", "eth0");
	no("^docker,lo", "docker0");
	/* = makes names exact, also after ^ */
	yes("=eth0", "eth0");
	no("=eth0", "eth01");
	no("=eth0", "eth");
	yes("=eth0,eth2", "eth2");
	no("^=eth1", "eth1");
	yes("^=eth1", "eth10");
	/* empty entries select nothing */
	no(",", "eth0");
	no("=", "eth0");
	/* loopback only when a list names it */
	T_ASSERT(dm_iflist_names("lo", "lo"));
	T_ASSERT(!dm_iflist_names("^eth", "lo"));
	T_ASSERT(!dm_iflist_names("eth", "lo"));
	t_log("PASS: prefixes, ^, =, ^=, loopback");
	return T_EXIT_PASS;
}
