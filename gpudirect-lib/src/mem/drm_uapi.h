/* SPDX-License-Identifier: MIT */
/*
 * The few DRM ioctls the drm backend uses, declared here because Debian's
 * linux-libc-dev leaves out the kernel's drm/ headers (they ship in
 * libdrm-dev as <libdrm/drm.h>) and five stable structs are not worth a
 * build dependency. Layouts and numbers: include/uapi/drm/drm.h and
 * drm_mode.h (unchanged since Linux 3.x); the size of each struct is part of
 * its ioctl number, so a wrong layout fails with -ENOTTY, never silently.
 */
#ifndef GPUD_DRM_UAPI_H
#define GPUD_DRM_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>
#include <stddef.h>

struct gpud_drm_version {
	int version_major;
	int version_minor;
	int version_patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};

struct gpud_drm_gem_close {
	__u32 handle;
	__u32 pad;
};

struct gpud_drm_get_cap {
	__u64 capability;
	__u64 value;
};

struct gpud_drm_prime_handle {
	__u32 handle;
	__u32 flags;	/* DRM_CLOEXEC | DRM_RDWR only (others: -EINVAL) */
	__s32 fd;
};

struct gpud_drm_mode_create_dumb {
	__u32 height;
	__u32 width;
	__u32 bpp;
	__u32 flags;
	__u32 handle;	/* out */
	__u32 pitch;	/* out */
	__u64 size;	/* out */
};

struct gpud_drm_mode_map_dumb {
	__u32 handle;
	__u32 pad;
	__u64 offset;	/* out: mmap offset on the DRM fd */
};

#define GPUD_DRM_IOCTL_BASE 'd'
#define GPUD_DRM_IOCTL_VERSION _IOWR(GPUD_DRM_IOCTL_BASE, 0x00, struct gpud_drm_version)
#define GPUD_DRM_IOCTL_GEM_CLOSE _IOW(GPUD_DRM_IOCTL_BASE, 0x09, struct gpud_drm_gem_close)
#define GPUD_DRM_IOCTL_GET_CAP _IOWR(GPUD_DRM_IOCTL_BASE, 0x0c, struct gpud_drm_get_cap)
#define GPUD_DRM_IOCTL_PRIME_HANDLE_TO_FD \
	_IOWR(GPUD_DRM_IOCTL_BASE, 0x2d, struct gpud_drm_prime_handle)
#define GPUD_DRM_IOCTL_MODE_CREATE_DUMB \
	_IOWR(GPUD_DRM_IOCTL_BASE, 0xB2, struct gpud_drm_mode_create_dumb)
#define GPUD_DRM_IOCTL_MODE_MAP_DUMB \
	_IOWR(GPUD_DRM_IOCTL_BASE, 0xB3, struct gpud_drm_mode_map_dumb)

#define GPUD_DRM_CAP_DUMB_BUFFER 0x1
#define GPUD_DRM_CAP_PRIME 0x5
#define GPUD_DRM_PRIME_CAP_EXPORT 0x2
/* DRM_CLOEXEC and DRM_RDWR are O_CLOEXEC and O_RDWR. */

/* Render node minors are 128..191 (drivers/gpu/drm/drm_drv.c). */
#define GPUD_DRM_RENDER_MINOR_BASE 128

#endif /* GPUD_DRM_UAPI_H */
