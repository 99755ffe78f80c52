/* SPDX-License-Identifier: MIT */
/*
 * Private to src/nic: the netdev family client (netdev_nl.c), the ethtool
 * netlink client (ethtool_nl.c) and the ethtool ioctls that have no netlink
 * equivalent in 6.12 (ethtool_ioctl.c). nic_state.c builds gpud_nic on them.
 * Unit tests reach the builders and parsers through this header.
 */
#ifndef GPUD_NIC_INTERNAL_H
#define GPUD_NIC_INTERNAL_H

#include "internal.h"
#include "nic/nl.h"

/* ---- netdev family (netdev_nl.c) ---- */

/* Attribute names of a BIND_RX request, for bad-attr paths. */
extern const struct gpud_nl_attr_name gpud_netdev_bind_attr_names[];

/*
 * Opens a netdev-family socket; -EOPNOTSUPP with a message when the kernel
 * has no netdev family (before 6.3) or, with @need_bind, no BIND_RX (6.12+).
 */
int gpud_netdev_open(bool need_bind, struct gpud_nl **out);

/* NETDEV_CMD_BIND_RX request into @buf (@len bytes); NULL if it does not fit. */
struct nlmsghdr *gpud_netdev_bind_msg(void *buf, size_t len, uint16_t family,
				      uint32_t seq, int ifindex, int dmabuf_fd,
				      const unsigned int *queues, size_t nqueues);
/* NETDEV_CMD_QUEUE_GET / PAGE_POOL_GET dump requests; @ifindex 0 = all. */
struct nlmsghdr *gpud_netdev_queue_dump_msg(void *buf, size_t len, uint16_t family,
					    uint32_t seq, int ifindex);
struct nlmsghdr *gpud_netdev_pool_dump_msg(void *buf, size_t len, uint16_t family,
					   uint32_t seq);

/* Queue dump on an open netdev socket (its namespace); count or -errno. */
int gpud_netdev_queues(struct gpud_nl *nl, int ifindex, struct gpud_queue_info *out,
		       size_t max);

/* Reply parsers: 0, or -EINVAL when a mandatory attribute is missing. */
int gpud_netdev_parse_queue(const struct nlmsghdr *nlh, struct gpud_queue_info *q);
int gpud_netdev_parse_pool(const struct nlmsghdr *nlh, struct gpud_page_pool_info *pp);
int gpud_netdev_parse_bind(const struct nlmsghdr *nlh, uint32_t *id);

/*
 * Writes our explanation of a failed bind (from the errno, the kernel's
 * extack message @kmsg, which may be NULL, and the queues @qi as dumped
 * after the failure) into @buf. @nrxq is the RX queue count or -1.
 */
void gpud_netdev_explain_bind(int err, const char *kmsg, const char *ifname,
			      const unsigned int *queues, size_t nqueues, int nrxq,
			      const struct gpud_queue_info *qi, int nqi, char *buf, size_t len);

/* gpud_bind_rx() on a raw fd (tests use a memfd to reach the device check). */
int gpud_bind_rx_fd(int ifindex, int dmabuf_fd, const unsigned int *queues, size_t nqueues,
		    struct gpud_binding **out);

/* "-EOPNOTSUPP"-style name of a negative errno ("-E123" when unknown). */
const char *gpud_errno_name(int err, char *buf, size_t len);

/* ---- ethtool netlink (ethtool_nl.c) ---- */

struct gpud_channels {
	uint32_t max_rx, max_tx, max_other, max_combined;
	uint32_t rx, tx, other, combined;
};

/* Which counts a set request carries. */
#define GPUD_CH_RX		(1u << 0)
#define GPUD_CH_TX		(1u << 1)
#define GPUD_CH_OTHER		(1u << 2)
#define GPUD_CH_COMBINED	(1u << 3)

int gpud_ethtool_open(struct gpud_nl **out);
/*
 * tcp-data-split as ethtool reports it: ETHTOOL_TCP_DATA_SPLIT_* (0 when the
 * driver does not say). -EOPNOTSUPP: no ring parameters at all.
 */
int gpud_ethtool_get_hds(struct gpud_nl *nl, int ifindex, uint8_t *hds);
int gpud_ethtool_set_hds(struct gpud_nl *nl, int ifindex, uint8_t hds);
int gpud_ethtool_get_channels(struct gpud_nl *nl, int ifindex, struct gpud_channels *ch);
int gpud_ethtool_set_channels(struct gpud_nl *nl, int ifindex, const struct gpud_channels *ch,
			      unsigned int which);

struct nlmsghdr *gpud_ethtool_channels_set_msg(void *buf, size_t len, uint16_t family,
					       uint32_t seq, int ifindex,
					       const struct gpud_channels *ch,
					       unsigned int which);
int gpud_ethtool_parse_channels(const struct nlmsghdr *nlh, struct gpud_channels *ch);
int gpud_ethtool_parse_rings_hds(const struct nlmsghdr *nlh, uint8_t *hds);

/* ---- ethtool ioctl (ethtool_ioctl.c): n-tuple and RSS ---- */

/* @fd: any AF_INET/AF_NETLINK socket of the device's namespace. */
int gpud_ntuple_count(int fd, const char *ifname, uint32_t *rules, uint32_t *table,
		      bool *loc_any);
int gpud_ntuple_insert(int fd, const char *ifname, const struct gpud_flow *flow,
		       unsigned int queue, uint32_t *loc);
int gpud_ntuple_delete(int fd, const char *ifname, uint32_t loc);
/* Number of RX rings RSS spreads over (ETHTOOL_GRXRINGS). */
int gpud_rss_rings(int fd, const char *ifname, uint32_t *rings);
/* Indirection table; *table is malloc()ed, caller frees. */
int gpud_rss_get(int fd, const char *ifname, uint32_t **table, uint32_t *size);
/* @size 0 restores the driver's default spread. */
int gpud_rss_set(int fd, const char *ifname, const uint32_t *table, uint32_t size);

/* ---- for gpudd (nic_state.c) ---- */

/*
 * Sets the whole RSS indirection table (@size must be the device's), the
 * original recorded for gpud_nic_free() as gpud_nic_rss_limit() does.
 */
int gpud_nic_rss_set_table(struct gpud_nic *nic, const uint32_t *table, uint32_t size);
/* The device's RSS table size. */
int gpud_nic_rss_size(struct gpud_nic *nic, uint32_t *size);
/*
 * The RX channel count gpud_nic_set_rx_channels() changes ("combined" or
 * "rx") and the driver's maximum for it. -EOPNOTSUPP: the driver has neither.
 */
int gpud_nic_rx_channels(struct gpud_nic *nic, unsigned int *count, unsigned int *max);

/* ---- through gpudd (nic_agent.c) ---- */

struct gpud_agent_conn;
/* The agent connection of @nic, NULL when it works directly. */
struct gpud_agent_conn *gpud_nic_agent(const struct gpud_nic *nic);
int gpud_nic_agent_hds(struct gpud_nic *nic, bool on);
int gpud_nic_agent_del_flow(struct gpud_nic *nic, uint32_t rule_id);

/* ---- the NIC journal (journal.c) ---- */

struct gpud_journal_rec {
	const char *ifname;
	int ifindex;
	bool hds_saved;
	uint8_t hds_orig;
	unsigned int ch_saved;
	struct gpud_channels ch_orig;
	const uint32_t *rss_orig;	/* NULL: RSS untouched */
	uint32_t rss_size;
	bool rss_was_default;
	const uint32_t *flows;
	size_t nflows;
};
/* $GPUD_STATE_DIR, else /run/gpudirect/nic; _mkdir makes it (best effort). */
const char *gpud_state_dir(void);
void gpud_state_mkdir(void);
/* (Re)writes the journal; @path is chosen on the first call ("" before). */
int gpud_journal_write(const struct gpud_journal_rec *r, char *path, size_t plen);
void gpud_journal_remove(const char *path);

/* ---- the flow of a connected socket (flow_sock.c) ---- */

/*
 * The flow that arrives on connected socket @fd, peer -> local. 0, or
 * -ENOTCONN (not connected), -EAFNOSUPPORT (not IP), getsockname's -errno.
 * No message: the library and gpudd each say it in their words.
 */
int gpud_flow_of_sock(int fd, struct gpud_flow *f);
/* "tcp4 198.18.0.2:5000 <- 198.18.0.1:40000" */
void gpud_flow_str(const struct gpud_flow *f, char *buf, size_t len);

/* ---- one direct configurer per NIC (nic_lock.c) ---- */

struct gpud_nic_lock;
/*
 * Takes (or, in this process, shares) the direct-configuration lock of
 * @ifname in network namespace @netns (gpud_netns_ino() at open). -EBUSY with a message naming
 * the holder's pid and gpudd when another process holds it. Where the lock
 * file cannot be made (no write access), *out is an unlocked stand-in.
 */
int gpud_nic_lock_get(const char *ifname, unsigned long long netns,
		      struct gpud_nic_lock **out);
/* Inode of the calling thread's network namespace (0 if unknown): the lock's key. */
unsigned long long gpud_netns_ino(void);
void gpud_nic_lock_put(struct gpud_nic_lock *l);

#endif /* GPUD_NIC_INTERNAL_H */
