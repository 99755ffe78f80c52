// SPDX-License-Identifier: MIT
/*
 * Where did amdgpu put our buffer? devmem attaches a dma-buf without
 * peer-to-peer, and amdgpu answers such an importer by moving a VRAM buffer
 * into GTT (system RAM): the bind succeeds and nothing fails, but the NIC
 * writes host memory. amdgpu publishes per-file memory counters in
 * /proc/self/fdinfo (drm-memory-vram / drm-memory-gtt; 6.12 keeps these
 * legacy keys next to drm-resident-*), so comparing them right after the
 * export with their values later tells where a buffer of known size went.
 * Shared by the hip backend (ROCr's fd: all render nodes summed) and the drm
 * backend (libdrm_amdgpu's fd: exactly ours).
 */
#include "mem_internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parses "<value> [KiB|MiB|GiB]" into KiB. */
static unsigned long long fdinfo_kib(const char *v)
{
	unsigned long long n = strtoull(v, (char **)&v, 10);

	while (*v == ' ' || *v == '\t')
		v++;
	if (!strncmp(v, "MiB", 3))
		return n << 10;
	if (!strncmp(v, "GiB", 3))
		return n << 20;
	if (!strncmp(v, "KiB", 3))
		return n;
	return n >> 10;	/* plain bytes */
}

/* Adds one fd's counters to @c if it is an amdgpu file. */
static void counters_add_fd(struct gpud_amdgpu_counters *c, const char *fdname)
{
	unsigned long long vram = 0, gtt = 0;
	char path[300], line[160];
	bool amdgpu = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", fdname);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "drm-driver:", 11) && strstr(line, "amdgpu"))
			amdgpu = true;
		else if (!strncmp(line, "drm-memory-vram:", 16))
			vram = fdinfo_kib(line + 16);
		else if (!strncmp(line, "drm-memory-gtt:", 15))
			gtt = fdinfo_kib(line + 15);
	}
	fclose(f);
	if (amdgpu) {
		c->valid = true;
		c->vram += vram;
		c->gtt += gtt;
	}
}

void gpud_amdgpu_counters_read(struct gpud_amdgpu_counters *c, int fd)
{
	char link[64], path[300];
	struct dirent *de;
	DIR *d;

	memset(c, 0, sizeof(*c));
	if (fd >= 0) {
		snprintf(path, sizeof(path), "%d", fd);
		counters_add_fd(c, path);
		return;
	}
	d = opendir("/proc/self/fd");
	if (!d)
		return;
	while ((de = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, "/dev/dri/renderD", 16))
			continue;
		counters_add_fd(c, de->d_name);
	}
	closedir(d);
}

enum gpud_mem_placement gpud_amdgpu_placement(const struct gpud_amdgpu_counters *then,
					      const struct gpud_amdgpu_counters *now,
					      size_t size, char *why, size_t len)
{
	unsigned long long kib = size >> 10;

	if (!then->valid || !now->valid) {
		gpud_why(0, why, len,
			     "amdgpu memory counters unreadable (no drm-memory-* lines in /proc/self/fdinfo; kernel before 5.14?): cannot tell VRAM from GTT");
		return GPUD_MEM_PLACE_UNKNOWN;
	}
	if (now->gtt >= then->gtt + kib && now->vram + kib <= then->vram) {
		gpud_why(0, why, len,
			     "moved from VRAM to GTT (system RAM) after export: VRAM %llu -> %llu KiB, GTT %llu -> %llu KiB; a non-peer-to-peer importer (devmem) made amdgpu migrate it, so the NIC writes host memory, not the GPU",
			     then->vram, now->vram, then->gtt, now->gtt);
		return GPUD_MEM_PLACE_HOST;
	}
	if (now->gtt == then->gtt && now->vram == then->vram) {
		gpud_why(0, why, len, "in VRAM: amdgpu counters unchanged since export (VRAM %llu KiB, GTT %llu KiB)",
			     now->vram, now->gtt);
		return GPUD_MEM_PLACE_DEVICE;
	}
	gpud_why(0, why, len,
		     "amdgpu counters changed by something else since export (VRAM %llu -> %llu KiB, GTT %llu -> %llu KiB): cannot tell; check with no other allocations in flight",
		     then->vram, now->vram, then->gtt, now->gtt);
	return GPUD_MEM_PLACE_UNKNOWN;
}
