// SPDX-License-Identifier: MIT
/*
 * gpudctl doctor: what devmem TCP receive needs on this machine and NIC, and
 * the fix for each missing piece. Exit 0 only when every check that decides
 * usability passed (with IFNAME: including a trial bind, the only way to
 * learn whether the driver has the queue management API); informational
 * checks (GPU backends, IOMMU, /dev/udmabuf) never change the exit status.
 */
#include "gpudctl.h"

#include <gpudirect/gpudirect.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

enum verdict { V_OK, V_FAIL, V_UNKNOWN, V_WARN, V_INFO };

static const char *const verdict_name[] = { "ok", "fail", "unknown", "warn", "info" };

struct check {
	const char *name;
	enum verdict v;
	bool decides;		/* counts for the exit status */
	char detail[400];
	char fix[300];
};

struct doctor {
	struct check c[20];
	int n;
	bool no_trial;
};

static struct check *add(struct doctor *d, const char *name, enum verdict v, bool decides)
{
	struct check *c = &d->c[d->n++];

	c->name = name;
	c->v = v;
	c->decides = decides;
	return c;
}

/* ---- machine ---- */

static bool check_kernel(struct doctor *d)
{
	struct utsname u;
	struct check *c;
	int err;

	uname(&u);
	err = gpud_devmem_probe();
	c = add(d, "kernel", err ? V_FAIL : V_OK, true);
	if (!err) {
		snprintf(c->detail, sizeof(c->detail), "Linux %s: devmem TCP RX available "
			 "(netdev family with BIND_RX)", u.release);
		return true;
	}
	snprintf(c->detail, sizeof(c->detail), "Linux %s: %s", u.release, gpud_errmsg());
	snprintf(c->fix, sizeof(c->fix), "boot Linux 6.12 or later built with "
		 "CONFIG_NET_DEVMEM=y (Debian 12: linux-image-6.12 from bookworm-backports)");
	return false;
}

/* CAP_NET_ADMIN (bit 12) in the effective set, from /proc/self/status. */
static bool have_net_admin(void)
{
	unsigned long long caps = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return geteuid() == 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	return caps & (1ULL << 12);
}

static void check_privileges(struct doctor *d, bool decides)
{
	bool ok = have_net_admin();
	struct check *c = add(d, "privileges", ok ? V_OK : V_FAIL, decides);

	snprintf(c->detail, sizeof(c->detail), ok ? "CAP_NET_ADMIN held" :
		 "no CAP_NET_ADMIN: binding and NIC changes will fail with -EPERM");
	if (!ok)
		snprintf(c->fix, sizeof(c->fix), "run as root, or grant it: setcap "
			 "cap_net_admin+ep $(command -v gpudctl)");
}

static int count_dir(const char *path)
{
	struct dirent *de;
	DIR *dir = opendir(path);
	int n = 0;

	if (!dir)
		return -1;
	while ((de = readdir(dir)))
		n += de->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* Appends "[; ]NAME: WHAT" to @buf (the detail lines list several devices). */
static void append(char *buf, size_t len, const char *name, const char *what)
{
	size_t used = strlen(buf);
	int n;

	if (used + 1 >= len)
		return;
	n = snprintf(buf + used, len - used, "%s%.40s: %.190s", used ? "; " : "", name, what);
	(void)n;	/* truncation is fine: a long list just ends early */
}

/*
 * Other dma-buf exporters (DRM nodes) and importers (RDMA devices): one
 * line each, informational. Placement is the point for amdgpu: a bound
 * VRAM buffer may land in system RAM, so nothing here says GPU-direct.
 */
static void check_drm_rdma(struct doctor *d)
{
	struct gpud_drm_node_info ni[8];
	struct gpud_rdma_dev_info ri[8];
	bool ok = false;
	struct check *c;
	int n;

	n = gpud_drm_nodes_get(ni, 8);
	c = add(d, "drm nodes", V_INFO, false);
	for (int i = 0; i < n && i < 8; i++) {
		const char *base = strrchr(ni[i].path, '/');

		ok |= ni[i].usable;
		append(c->detail, sizeof(c->detail), base ? base + 1 : ni[i].path, ni[i].why);
	}
	if (n <= 0)
		snprintf(c->detail, sizeof(c->detail), "%s", n < 0 ? gpud_errmsg() :
			 "no /dev/dri nodes (vgem for tests: CONFIG_DRM_VGEM)");
	else if (ok)
		c->v = V_OK;

	n = gpud_rdma_devs_get(ri, 8);
	c = add(d, "rdma devices", V_INFO, false);
	for (int i = 0; i < n && i < 8; i++)
		append(c->detail, sizeof(c->detail), ri[i].name, ri[i].why);
	if (n <= 0)
		snprintf(c->detail, sizeof(c->detail), "%s", n < 0 ? gpud_errmsg() :
			 "none (soft-RoCE: rdma link add rxe0 type rxe netdev IFNAME)");
}

static void check_machine(struct doctor *d)
{
	static const enum gpud_mem_kind gpus[2] = { GPUD_MEM_CUDA, GPUD_MEM_HIP };
	int units = count_dir("/sys/class/iommu"), groups = count_dir("/sys/kernel/iommu_groups");
	bool udmabuf = access("/dev/udmabuf", F_OK) == 0;
	struct check *c;

	c = add(d, "udmabuf", udmabuf ? V_OK : V_WARN, false);
	snprintf(c->detail, sizeof(c->detail), udmabuf ? "/dev/udmabuf present (host memory "
		 "dma-bufs)" : "/dev/udmabuf missing: no host-memory dma-bufs (GPU memory "
		 "does not need it)");
	if (!udmabuf)
		snprintf(c->fix, sizeof(c->fix), "modprobe udmabuf (CONFIG_UDMABUF)");
	for (size_t i = 0; i < 2; i++) {
		char why[300] = "";
		int err = gpud_mem_probe(gpus[i], 0, why, sizeof(why));

		c = add(d, gpus[i] == GPUD_MEM_CUDA ? "gpu cuda:0" : "gpu hip:0",
			err ? V_INFO : V_OK, false);
		snprintf(c->detail, sizeof(c->detail), "%s", why[0] ? why :
			 err ? "not usable" : "dma-buf export works");
	}
	check_drm_rdma(d);
	c = add(d, "iommu", V_INFO, false);
	if (units > 0)
		snprintf(c->detail, sizeof(c->detail), "IOMMU on (%d unit(s), %d group(s)): with "
			 "NVIDIA GPUs prefer iommu=pt (peer writes can be dropped under "
			 "translation, open-gpu-kernel-modules #1324)", units, groups < 0 ? 0 : groups);
	else
		snprintf(c->detail, sizeof(c->detail), "no IOMMU in use (%s): DMA addresses are "
			 "physical; nothing to do", groups > 0 ? "groups without units" :
			 "/sys/class/iommu empty");
}

/* ---- NIC ---- */

static void check_queues(struct doctor *d, struct gpud_nic *nic, int nrx)
{
	struct check *c = add(d, "rx queues", nrx >= 2 ? V_OK : V_FAIL, true);

	if (nrx < 0) {
		snprintf(c->detail, sizeof(c->detail), "cannot count RX queues: %s",
			 gpud_errmsg());
		return;
	}
	snprintf(c->detail, sizeof(c->detail), "%s has %d RX queue(s)%s", gpud_nic_name(nic),
		 nrx, nrx >= 2 ? "" : ": devmem needs one for ordinary traffic and one "
		 "(or more) to bind");
	if (nrx < 2)
		snprintf(c->fix, sizeof(c->fix), "ethtool -L %s combined 2 (or rx 2)",
			 gpud_nic_name(nic));
}

static void check_hds(struct doctor *d, struct gpud_nic *nic)
{
	static const char *const state[] = { "the driver does not report it", "supported, "
		"off now (gpudctl bind turns it on)", "on", "not supported by the driver" };
	enum gpud_hds hds = GPUD_HDS_UNKNOWN;
	int err = gpud_nic_get_header_split(nic, &hds);
	enum verdict v = err ? V_FAIL : hds == GPUD_HDS_UNSUPPORTED ? V_FAIL :
			 hds == GPUD_HDS_UNKNOWN ? V_UNKNOWN : V_OK;
	struct check *c = add(d, "header split", v, true);

	snprintf(c->detail, sizeof(c->detail), "tcp-data-split: %s",
		 err ? gpud_errmsg() : state[hds]);
	if (v != V_OK)
		snprintf(c->fix, sizeof(c->fix), "devmem needs a NIC that splits TCP headers "
			 "from payload (ethtool -G %s tcp-data-split on; see docs/setup.md)",
			 gpud_nic_name(nic));
}

static void check_ntuple(struct doctor *d, struct gpud_nic *nic)
{
	int err = gpud_nic_probe_flow_steering(nic);
	struct check *c = add(d, "flow steering", err ? V_FAIL : V_OK, true);

	snprintf(c->detail, sizeof(c->detail), "%s", err ? gpud_errmsg() :
		 "n-tuple rules supported");
	if (err)
		snprintf(c->fix, sizeof(c->fix), "devmem flows must be steered to the bound "
			 "queue: needs a NIC with n-tuple filters (ethtool -K %s ntuple on)",
			 gpud_nic_name(nic));
}

/* Binds a small host dma-buf to the last RX queue for a moment. */
static void check_queue_api(struct doctor *d, struct gpud_nic *nic, int nrx)
{
	struct gpud_mem_opts mo = { .sz = sizeof(mo) };
	struct gpud_nic *trial_nic = NULL;
	struct gpud_binding *b = NULL;
	enum gpud_hds hds = GPUD_HDS_UNKNOWN;
	struct gpud_mem *mem = NULL;
	unsigned int q = nrx > 1 ? (unsigned int)nrx - 1 : 0;
	struct check *c = add(d, "queue management API", V_UNKNOWN, true);
	int err;

	if (d->no_trial) {
		snprintf(c->detail, sizeof(c->detail), "unknown: trial bind skipped (--no-trial)");
		return;
	}
	err = gpud_mem_create(GPUD_MEM_HOST, 64 * 1024, &mo, &mem);
	if (err) {
		snprintf(c->detail, sizeof(c->detail), "unknown: needs /dev/udmabuf to try (%s)",
			 gpud_errmsg());
		snprintf(c->fix, sizeof(c->fix), "modprobe udmabuf, then run doctor again");
		return;
	}
	/*
	 * A bind needs header split (gpudctl bind turns it on), so the trial
	 * does too: through a second gpud_nic, whose free restores it.
	 */
	if (!gpud_nic_open(gpud_nic_name(nic), &trial_nic) &&
	    !gpud_nic_get_header_split(trial_nic, &hds) && hds == GPUD_HDS_DISABLED)
		gpud_nic_set_header_split(trial_nic, true);
	err = gpud_bind_rx(gpud_nic_ifindex(nic), mem, &q, 1, &b);
	if (!err || err == -EEXIST) {
		c->v = V_OK;
		snprintf(c->detail, sizeof(c->detail), "%s", !err ? "trial bind of queue works" :
			 "the queue is already bound (so the API is there)");
	} else if (err == -EPERM) {
		snprintf(c->detail, sizeof(c->detail), "unknown: the trial bind needs "
			 "CAP_NET_ADMIN");
		snprintf(c->fix, sizeof(c->fix), "run doctor as root");
	} else {
		c->v = V_FAIL;
		snprintf(c->detail, sizeof(c->detail), "%s", gpud_errmsg());
		snprintf(c->fix, sizeof(c->fix), "devmem needs a NIC driver with the queue "
			 "management API and devmem page pools (see docs/setup.md)");
	}
	gpud_binding_free(b);
	gpud_nic_free(trial_nic);
	gpud_mem_free(mem);
}

static void check_nic(struct doctor *d, const char *ifname)
{
	struct gpud_nic *nic;
	struct check *c;
	int nrx;

	if (gpud_nic_open(ifname, &nic)) {
		c = add(d, "interface", V_FAIL, true);
		snprintf(c->detail, sizeof(c->detail), "%s", gpud_errmsg());
		snprintf(c->fix, sizeof(c->fix), "name an interface of this network namespace "
			 "(ip link)");
		return;
	}
	nrx = gpud_nic_rx_queues(nic);
	check_queues(d, nic, nrx);
	check_hds(d, nic);
	check_ntuple(d, nic);
	check_queue_api(d, nic, nrx);
	gpud_nic_free(nic);
}

/* ---- output ---- */

static bool usable(const struct doctor *d)
{
	for (int i = 0; i < d->n; i++)
		if (d->c[i].decides && d->c[i].v != V_OK)
			return false;
	return true;
}

static void print_text(const struct doctor *d, const char *ifname)
{
	static const char *const tag[] = { "  ok  ", " FAIL ", "  ??  ", " warn ", " info " };

	for (int i = 0; i < d->n; i++) {
		const struct check *c = &d->c[i];

		printf("[%s] %-20s %s\n", tag[c->v], c->name, c->detail);
		if (c->fix[0])
			printf("         %-20s fix: %s\n", "", c->fix);
	}
	if (ifname)
		printf("devmem RX on %s: %s\n", ifname, usable(d) ? "usable" : "NOT usable");
	else
		printf("devmem RX in this kernel: %s (name an interface to check a NIC)\n",
		       usable(d) ? "available" : "NOT available");
}

static void print_json(const struct doctor *d, const char *ifname)
{
	printf("{\"ifname\":");
	if (ifname)
		gpudctl_json_str(stdout, ifname);
	else
		printf("null");
	printf(",\"usable\":%s,\"checks\":[", usable(d) ? "true" : "false");
	for (int i = 0; i < d->n; i++) {
		printf("%s{\"name\":", i ? "," : "");
		gpudctl_json_str(stdout, d->c[i].name);
		printf(",\"status\":\"%s\",\"decides\":%s,\"detail\":", verdict_name[d->c[i].v],
		       d->c[i].decides ? "true" : "false");
		gpudctl_json_str(stdout, d->c[i].detail);
		printf(",\"fix\":");
		if (d->c[i].fix[0])
			gpudctl_json_str(stdout, d->c[i].fix);
		else
			printf("null");
		putchar('}');
	}
	printf("]}\n");
}

int gpudctl_doctor(const struct gpudctl_opts *o, int argc, char **argv)
{
	static struct doctor d;
	const char *ifname = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-trial")) {
			d.no_trial = true;
		} else if (argv[i][0] == '-' || ifname) {
			fprintf(stderr, "gpudctl: doctor: unexpected argument %s\n", argv[i]);
			gpudctl_usage(stderr);
			return GPUDCTL_EXIT_USAGE;
		} else {
			ifname = argv[i];
		}
	}
	/* Failures are reported in the table; the log would say them twice. */
	if (!o->verbose)
		gpud_set_log(NULL, NULL, GPUD_LOG_ERROR);
	check_kernel(&d);
	check_privileges(&d, ifname != NULL);
	if (ifname)
		check_nic(&d, ifname);
	check_machine(&d);
	if (o->json)
		print_json(&d, ifname);
	else
		print_text(&d, ifname);
	return usable(&d) ? GPUDCTL_EXIT_OK : GPUDCTL_EXIT_FAIL;
}
