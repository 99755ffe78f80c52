/* SPDX-License-Identifier: MIT */
/*
 * Private: a small generic-netlink layer over libmnl shared by the netdev
 * (netdev_nl.c) and ethtool (ethtool_nl.c) clients. It resolves families
 * through nlctrl, runs one request/reply exchange at a time, and keeps the
 * kernel's extended ACK so every failure can show it.
 *
 * Builders and parsers are plain functions over byte buffers so the unit
 * tests can feed them replies captured from a real kernel.
 */
#ifndef GPUD_NIC_NL_H
#define GPUD_NIC_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

/* What nlctrl told us about a family. Commands above 63 are not tracked. */
struct gpud_genl_family {
	uint16_t id;
	uint32_t version;
	uint32_t maxattr;
	uint64_t ops_do;	/* bit n: command n can be a "do" */
	uint64_t ops_dump;	/* bit n: command n can be a dump */
	uint64_t ops_admin;	/* bit n: command n needs CAP_NET_ADMIN */
};

static inline bool gpud_genl_has_op(const struct gpud_genl_family *f, unsigned int cmd)
{
	return cmd < 64 && ((f->ops_do | f->ops_dump) >> cmd) & 1;
}

/* The kernel's extended ACK of one failed request. */
struct gpud_nl_ext {
	int err;		/* -errno; 0 = success */
	char msg[256];		/* NLMSGERR_ATTR_MSG, "" when the kernel gave none */
	bool has_off;
	uint32_t off;		/* NLMSGERR_ATTR_OFFS: byte offset in our request */
	bool has_miss;
	uint32_t miss_type;	/* NLMSGERR_ATTR_MISS_TYPE: required attr we left out */
};

/*
 * Names of a request's attributes, so a bad-attr offset can be shown as
 * ".queues.id" like YNL does. Terminated by an entry with name == NULL.
 */
struct gpud_nl_attr_name {
	uint16_t type;
	const char *name;
	const struct gpud_nl_attr_name *nest;	/* attributes inside, if a nest */
};

struct gpud_nl {
	struct mnl_socket *sk;
	uint32_t portid;
	uint32_t seq;
	struct gpud_genl_family fam;
	void *rxbuf;		/* GPUD_NL_RXBUF bytes, one recv at a time */
};

#define GPUD_NL_RXBUF (64 * 1024)
/* Big enough for any request we send (a bind with 4096 queues fits). */
#define GPUD_NL_TXBUF (128 * 1024)

/*
 * Opens a generic netlink socket (extended ACKs on) in the calling thread's
 * network namespace and resolves @family. The socket keeps that namespace
 * for its whole life. -ENOENT: the kernel has no such family.
 */
int gpud_nl_open(const char *family, struct gpud_nl **out);
void gpud_nl_close(struct gpud_nl *nl);

/* Starts a generic netlink message in @buf; the caller adds attributes. */
struct nlmsghdr *gpud_genl_msg_start(void *buf, uint16_t family, uint8_t cmd,
				     uint8_t version, uint16_t flags, uint32_t seq);

/* Called for each non-control message of a reply; return MNL_CB_OK/STOP/ERROR. */
typedef int (*gpud_nl_cb)(const struct nlmsghdr *nlh, void *data);

/*
 * Sends @req (sequence number set here) and reads replies until the ACK or
 * the end of the dump, passing each to @cb (may be NULL). Returns 0 or the
 * kernel's -errno, with its extended ACK in *ext (cleared first).
 */
int gpud_nl_talk(struct gpud_nl *nl, struct nlmsghdr *req, gpud_nl_cb cb, void *data,
		 struct gpud_nl_ext *ext);

/* ---- pure helpers, unit-tested on captured bytes ---- */

/* CTRL_CMD_GETFAMILY request for @name. */
struct nlmsghdr *gpud_ctrl_getfamily_msg(void *buf, size_t len, const char *name,
					 uint32_t seq);
/* Parses a CTRL_CMD_NEWFAMILY reply. Returns 0 or -EINVAL (no family id). */
int gpud_ctrl_parse_family(const struct nlmsghdr *nlh, struct gpud_genl_family *fam);

/*
 * Parses an NLMSG_ERROR or NLMSG_DONE message into *ext. Returns the error
 * it carries (0 for an ACK or a clean end of dump), or -EBADMSG when the
 * message is truncated.
 */
int gpud_nl_parse_ack(const struct nlmsghdr *nlh, struct gpud_nl_ext *ext);

/*
 * Names the attribute that starts @off bytes into request @req (as
 * ".a.b"), using @names for the genl payload's attributes. Returns false
 * when no attribute of @req starts there.
 */
bool gpud_nl_attr_path(const struct nlmsghdr *req, uint32_t off,
		       const struct gpud_nl_attr_name *names, char *buf, size_t len);

/*
 * Formats the extended ACK for a human: "kernel: <msg>; bad-attr: .ifindex"
 * or "kernel gave no details" when it gave nothing. @req and @names may be
 * NULL (offset then shown as a number).
 */
void gpud_nl_ext_str(const struct gpud_nl_ext *ext, const struct nlmsghdr *req,
		     const struct gpud_nl_attr_name *names, char *buf, size_t len);

#endif /* GPUD_NIC_NL_H */
