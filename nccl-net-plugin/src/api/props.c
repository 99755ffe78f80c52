// SPDX-License-Identifier: MIT
/*
 * Which NICs the plugin offers and what it tells NCCL about them.
 */
#include "api/api.h"
#include "gpu/gpu.h"
#include "conn/iflist.h"
#include "ncclnet/net_device_unpack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * veth, and many virtual NICs, report no speed (sysfs read fails with
 * EINVAL or says -1). NCCL uses the speed for ring/tree bandwidth estimates
 * only, so we pick 10 Gbit/s, the same order as what we measured over veth
 * with several flows, and document it.
 */
#define DM_DEFAULT_SPEED_MBPS 10000

static int read_speed(const char *ifname)
{
	char path[128];
	FILE *f;
	int v = -1;

	/* sysfs "speed" is ethtool's link setting (get_link_ksettings), in Mbit/s. */
	snprintf(path, sizeof(path), "/sys/class/net/%s/speed", ifname);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v > 0 ? v : DM_DEFAULT_SPEED_MBPS;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static void fill_dev(struct dm_dev *d, const char *name, const struct sockaddr *sa)
{
	char path[128], real[PATH_MAX];

	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	memcpy(&d->addr, sa, sa->sa_family == AF_INET6 ? sizeof(d->addr.in6) : sizeof(d->addr.in));
	dm_addr_set_port(&d->addr, 0);
	d->ifindex = (int)if_nametoindex(name);
	d->nmembers = 1;	/* members[0] is set once the device has its number */
	/* A PCI NIC's device link; a virtual one (veth) has none: use its own node. */
	snprintf(path, sizeof(path), "/sys/class/net/%s/device", name);
	if (!realpath(path, real)) {
		snprintf(path, sizeof(path), "/sys/class/net/%s", name);
		if (!realpath(path, real))
			snprintf(real, sizeof(real), "/sys/devices/virtual/net/%s", name);
	}
	snprintf(d->pci_path, sizeof(d->pci_path), "%.255s", real);
	/* Functions of one chip share no sysfs node we can name cheaply; the
	 * path identifies the function, which is what NCCL's vNIC logic groups. */
	d->guid = fnv1a(d->pci_path);
	d->speed_mbps = read_speed(name);
}


static int by_pci_path(const void *a, const void *b)
{
	return strcmp(((const struct dm_dev *)a)->pci_path, ((const struct dm_dev *)b)->pci_path);
}

/*
 * An address a peer can reach without a scope: IPv4, or IPv6 that is not
 * link-local (it would need the interface index on the other host too) and
 * not IPv4-mapped.
 */
static bool usable_addr(const struct sockaddr *sa, int family)
{
	const struct in6_addr *a6;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return false;
	if (family != AF_UNSPEC && sa->sa_family != family)
		return false;
	if (sa->sa_family == AF_INET)
		return true;
	a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	return !IN6_IS_ADDR_LINKLOCAL(a6) && !IN6_IS_ADDR_V4MAPPED(a6);
}

/*
 * Every interface that is up, has a usable address of NCCL_DEVMEM_FAMILY
 * (unset: IPv4 where it has one, else IPv6) and is selected: by
 * NCCL_DEVMEM_IFNAME's list (NCCL_SOCKET_IFNAME's rules, iflist.c), else
 * every one but loopback, which only a list that names it brings in. Sorted
 * by PCI path, so device numbers follow the topology NCCL pairs GPUs with.
 */
int dm_devs_scan(const char *iflist, int family, struct dm_dev *devs, int max)
{
	bool listed = iflist && *iflist;
	struct ifaddrs *ifa, *i;
	int n = 0;

	if (getifaddrs(&ifa))
		return -errno;
	for (i = ifa; i && n < max; i = i->ifa_next) {
		bool dup = false;

		if (!i->ifa_addr || !usable_addr(i->ifa_addr, family))
			continue;
		if (listed && !dm_iflist_match(iflist, i->ifa_name))
			continue;
		if ((i->ifa_flags & IFF_LOOPBACK) && !(listed && dm_iflist_names(iflist, i->ifa_name)))
			continue;
		for (int k = 0; k < n; k++) {
			if (strcmp(devs[k].name, i->ifa_name))
				continue;
			/* one per interface: its IPv4 address before an IPv6 one */
			dup = true;
			if (devs[k].addr.sa.sa_family == AF_INET6 && i->ifa_addr->sa_family == AF_INET)
				fill_dev(&devs[k], i->ifa_name, i->ifa_addr);
		}
		if (dup)
			continue;
		if (!(i->ifa_flags & IFF_UP)) {
			if (listed)
				DM_WARN("NCCL_DEVMEM_IFNAME=%s: %s is down; skipped", iflist,
					i->ifa_name);
			continue;
		}
		fill_dev(&devs[n++], i->ifa_name, i->ifa_addr);
	}
	freeifaddrs(ifa);
	if (listed && !n)
		DM_WARN("NCCL_DEVMEM_IFNAME=%s selects no interface that is up with %s address (prefixes; ^ excludes, = exact, as NCCL_SOCKET_IFNAME)",
			iflist, family == AF_INET6 ? "a non-link-local IPv6" :
				family == AF_INET ? "an IPv4" : "an IPv4 or non-link-local IPv6");
	qsort(devs, (size_t)n, sizeof(devs[0]), by_pci_path);
	for (int k = 0; k < n; k++)
		devs[k].members[0] = k;
	return n;
}

/*
 * What NCCL may hand us, said once with the reason. CUDA buffers only when
 * the GPU engine can run (gpu.h: own streams, async copies, events; the
 * loader refuses a driver without them), so NCCL never gives us memory we
 * could only reach with calls that wait for its kernels. No NCCL_PTR_DMABUF:
 * TCP moves bytes by address and the devmem pool is the plugin's own, so a
 * dma-buf of NCCL's buffer would buy nothing.
 */
static int ptr_support(void)
{
	static atomic_bool logged;
	bool cuda = dm_cuda_available();

	if (!atomic_exchange(&logged, true))
		DM_INFO("pointer support: host%s%s; dma-buf registration not offered (TCP reaches buffers by address; devmem lands in the plugin's own pool)",
			cuda ? ", CUDA (own non-blocking streams, async copies, polled events)" :
			       ", no CUDA: ", cuda ? "" : dm_cuda_why());
	return NCCL_PTR_HOST | (cuda ? NCCL_PTR_CUDA : 0);
}

/*
 * NCCL_DEVMEM_RAILS="IF:RAIL[:PLANE],...": the rail (and plane) of each
 * interface, what NCCL 2.30 reads from v12's railId/planeId to keep each
 * rank's traffic on its own rail. Unlisted interfaces: NCCL_NET_ID_UNDEF,
 * and NCCL places them from the PCI topology alone.
 */
static void rail_of(const char *ifname, int16_t *rail, int16_t *plane)
{
	const char *spec = getenv("NCCL_DEVMEM_RAILS");
	size_t n = strlen(ifname);

	*rail = *plane = NCCL_NET_ID_UNDEF;
	for (const char *p = spec; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		char *end;
		long r, pl = NCCL_NET_ID_UNDEF;

		if (strncmp(p, ifname, n) || p[n] != ':')
			continue;
		r = strtol(p + n + 1, &end, 10);
		if (*end == ':')
			pl = strtol(end + 1, &end, 10);
		if (end == p + n + 1 || (*end && *end != ',') || r < 0 || r > INT16_MAX ||
		    pl < NCCL_NET_ID_UNDEF || pl > INT16_MAX) {
			DM_WARN("NCCL_DEVMEM_RAILS: cannot read the entry for %s (expected IF:RAIL[:PLANE]); rail unknown",
				ifname);
			return;
		}
		*rail = (int16_t)r;
		*plane = (int16_t)pl;
		return;
	}
}

void dm_props_fill(int dev, ncclNetProperties_v12_t *props)
{
	const struct dm_dev *d = dm_dev_get(dev);

	memset(props, 0, sizeof(*props));
	props->name = (char *)d->name;
	props->pciPath = (char *)d->pci_path;
	props->guid = d->guid;
	props->ptrSupport = ptr_support();
	props->regIsGlobal = 0;
	/* Copy mode finishes the H2D copy before test() says done: no flush needed. */
	props->forceFlush = 0;
	props->speed = d->speed_mbps;
	props->port = 0;
	props->latency = 0;
	props->maxComms = 65536;
	props->maxRecvs = DM_MAX_RECVS;
	props->netDeviceType = NCCL_NET_DEVICE_HOST;
	props->netDeviceVersion = NCCL_NET_DEVICE_INVALID_VERSION;
	props->vProps.ndevs = d->nmembers;
	for (int i = 0; i < d->nmembers; i++)
		props->vProps.devs[i] = d->members[i];
	/* test() reports sizes as int: keep every transfer representable. */
	props->maxP2pBytes = 0x7fffffffull & ~4095ull;
	props->maxCollBytes = props->maxP2pBytes;
	props->maxMultiRequestSize = 1;
	/* a fused device sits on its first member's rail (NCCL fuses NICs of one rail) */
	rail_of(dm_dev_member(dev, 0)->name, &props->railId, &props->planeId);
	if (dm_cfg.unpack == DM_UNPACK_NCCL) {
		/*
		 * NCCL's kernels unpack: it asks for a device handle on each
		 * receive comm and checks the version against its own. One
		 * buffer per receive: a device handle belongs to one NCCL
		 * connection, and NCCL shares a recv comm between connections
		 * only when maxRecvs > 1. Point-to-point transfers in 4 MiB
		 * pieces, what one receive's metadata is sized for (larger
		 * ones still work: the plugin copies what does not fit).
		 */
		props->netDeviceType = NCCL_NET_DEVICE_UNPACK;
		props->netDeviceVersion = NCCL_NET_DEVICE_UNPACK_VERSION;
		props->maxRecvs = 1;
		props->maxP2pBytes = NCCL_NET_UNPACK_MAX_SLICE_SIZE;
	}
}
