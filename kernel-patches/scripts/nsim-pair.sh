#!/bin/bash
# Guest-side fixture: two linked netdevsim ports in two network namespaces,
# the emulated NIC pair the in-VM tests send devmem traffic across.
#
# usage: nsim-pair.sh up PREFIX [--queues N] [--net N]
#        nsim-pair.sh down PREFIX
#
# up creates netns ${PREFIX}a and ${PREFIX}b, one netdevsim device per side
# (1 port, N RX/TX queues, default 4), moves one port into each namespace,
# renames it nsim0 (side a) / nsim1 (side b), links the two ports through
# /sys/bus/netdevsim/link_device, assigns 198.18.NET.1/24 and 198.18.NET.2/24
# (NET defaults to 0; only 198.18.0.0/15 is ever used) and brings them up.
# It prints shell assignments (eval-able), also saved in
# /run/gpud-nsim/PREFIX.env:
#   NSIM_NS_A NSIM_NS_B           namespace names
#   NSIM_DEV_A NSIM_DEV_B         nsim0 / nsim1
#   NSIM_IFINDEX_A NSIM_IFINDEX_B ifindexes, each in its own namespace
#   NSIM_ADDR_A NSIM_ADDR_B       IPv4 addresses (no prefix length)
#   NSIM_ID_A NSIM_ID_B           netdevsim bus device ids
#   NSIM_DEBUGFS_A NSIM_DEBUGFS_B the port's debugfs dir
#   NSIM_QUEUES                   queues per port
# down deletes both devices, then both namespaces. Needs root, a kernel with
# NETDEVSIM=y and NET_NS=y, and iproute2; meant to run inside vm-run.sh.
set -euo pipefail

BUS=/sys/bus/netdevsim
STATE_DIR=/run/gpud-nsim

die() { echo "nsim-pair.sh: error: $*" >&2; exit 1; }
usage() { sed -n '5,6s/^# \{0,1\}//p' "$0" >&2; exit 2; }

[ $# -ge 2 ] || usage
action=$1
prefix=$2
shift 2
case $prefix in
''|*[!A-Za-z0-9_-]*) die "PREFIX must be letters, digits, '_' or '-'" ;;
esac
queues=4
net=0
while [ $# -gt 0 ]; do
	case $1 in
	--queues) queues=${2:?}; shift 2 ;;
	--net) net=${2:?}; shift 2 ;;
	*) usage ;;
	esac
done
case $queues in ''|*[!0-9]*|0) die "--queues wants a positive number" ;; esac
case $net in ''|*[!0-9]*) die "--net wants 0..255" ;; esac
[ "$net" -le 255 ] || die "--net wants 0..255 (addresses stay in 198.18.0.0/15)"

ns_a=${prefix}a
ns_b=${prefix}b
state=$STATE_DIR/$prefix.env
up_done=0

# The bus device's first (only) port netdev, in whatever netns it is now:
# the bus device's sysfs dir lists it until it moves to another namespace.
port_of() {
	local d
	for d in "$BUS/devices/netdevsim$1"/net/*; do
		[ -e "$d" ] && { basename "$d"; return 0; }
	done
	return 1
}

# ifindex of DEV as seen inside namespace NS ("N: name: ..." from ip -o).
ifindex_in() {
	ip -n "$1" -o link show dev "$2" | sed -n 's/^\([0-9]*\):.*/\1/p'
}

# Two consecutive free bus ids, so parallel fixtures (other PREFIXes) and
# devices created by tests themselves do not collide.
free_ids() {
	local id=10
	while [ -e "$BUS/devices/netdevsim$id" ] || [ -e "$BUS/devices/netdevsim$((id + 1))" ]; do
		id=$((id + 2))
	done
	echo "$id"
}

do_down() {
	local NSIM_ID_A='' NSIM_ID_B='' id
	if [ -r "$state" ]; then
		# shellcheck disable=SC1090  # written by do_up below
		. "$state"
	fi
	# Devices first: a netdevsim port left in a namespace being deleted would
	# be unregistered behind the driver's back.
	for id in $NSIM_ID_A $NSIM_ID_B; do
		if [ -e "$BUS/devices/netdevsim$id" ]; then
			echo "$id" >"$BUS/del_device" || echo "nsim-pair.sh: del_device $id failed" >&2
		fi
	done
	for ns in "$ns_a" "$ns_b"; do
		if [ -e "/run/netns/$ns" ]; then
			ip netns del "$ns" || echo "nsim-pair.sh: ip netns del $ns failed" >&2
		fi
	done
	rm -f "$state"
}

do_up() {
	[ "$(id -u)" = 0 ] || die "needs root"
	[ -d "$BUS" ] || die "$BUS missing: kernel without CONFIG_NETDEVSIM"
	command -v ip >/dev/null || die "ip (iproute2) not found"
	if [ -e "$state" ] || [ -e "/run/netns/$ns_a" ] || [ -e "/run/netns/$ns_b" ]; then
		die "fixture $prefix exists; run: nsim-pair.sh down $prefix"
	fi
	mkdir -p "$STATE_DIR"

	local id_a id_b dev_a dev_b idx_a idx_b addr_a addr_b
	id_a=$(free_ids)
	id_b=$((id_a + 1))
	addr_a=198.18.$net.1
	addr_b=198.18.$net.2
	# Record ids before creating anything so a failure below can undo it.
	printf 'NSIM_ID_A=%s\nNSIM_ID_B=%s\n' "$id_a" "$id_b" >"$state"
	# Any failure from here on (set -e or die) undoes what was created.
	trap '[ "$up_done" = 1 ] || { echo "nsim-pair.sh: setup failed, cleaning up" >&2; do_down; }' EXIT

	ip netns add "$ns_a"
	ip netns add "$ns_b"
	# "ID PORT_COUNT NUM_QUEUES" (drivers/net/netdevsim/bus.c); probing is
	# synchronous, so the port exists when the write returns.
	echo "$id_a 1 $queues" >"$BUS/new_device"
	echo "$id_b 1 $queues" >"$BUS/new_device"
	dev_a=$(port_of "$id_a") || die "netdevsim$id_a has no port"
	dev_b=$(port_of "$id_b") || die "netdevsim$id_b has no port"
	# The series' NIC behaviour (RSS/n-tuple steering, MSS-sized frames
	# on the link, GRO, header split) is off by default, so that stock
	# netdevsim users see no change; it can only be turned on while down.
	for id in "$id_a" "$id_b"; do
		knob=/sys/kernel/debug/netdevsim/netdevsim$id/ports/0/emulate_nic
		[ -w "$knob" ] || die "$knob missing: this kernel lacks kernel-patches/patches (rebuild with build-kernel.sh)"
		echo 1 >"$knob"
	done

	ip link set "$dev_a" netns "$ns_a"
	ip link set "$dev_b" netns "$ns_b"
	# Fixed names: tests address the ports without parsing our output.
	ip -n "$ns_a" link set "$dev_a" name nsim0
	ip -n "$ns_b" link set "$dev_b" name nsim1
	idx_a=$(ifindex_in "$ns_a" nsim0)
	idx_b=$(ifindex_in "$ns_b" nsim1)
	if [ -z "$idx_a" ] || [ -z "$idx_b" ]; then
		die "cannot read the ports' ifindexes"
	fi

	# link_device takes "NETNSFD_A:IFINDEX_A NETNSFD_B:IFINDEX_B" with fds
	# open in the writing process: echo is a builtin, so that is this shell.
	exec 3<"/run/netns/$ns_a" 4<"/run/netns/$ns_b"
	echo "3:$idx_a 4:$idx_b" >"$BUS/link_device"
	exec 3<&- 4<&-

	ip -n "$ns_a" link set lo up
	ip -n "$ns_b" link set lo up
	ip -n "$ns_a" addr add "$addr_a/24" dev nsim0
	ip -n "$ns_b" addr add "$addr_b/24" dev nsim1
	ip -n "$ns_a" link set nsim0 up
	ip -n "$ns_b" link set nsim1 up

	cat >"$state" <<-EOF
	NSIM_NS_A=$ns_a
	NSIM_NS_B=$ns_b
	NSIM_DEV_A=nsim0
	NSIM_DEV_B=nsim1
	NSIM_IFINDEX_A=$idx_a
	NSIM_IFINDEX_B=$idx_b
	NSIM_ADDR_A=$addr_a
	NSIM_ADDR_B=$addr_b
	NSIM_ID_A=$id_a
	NSIM_ID_B=$id_b
	NSIM_DEBUGFS_A=/sys/kernel/debug/netdevsim/netdevsim$id_a/ports/0
	NSIM_DEBUGFS_B=/sys/kernel/debug/netdevsim/netdevsim$id_b/ports/0
	NSIM_QUEUES=$queues
	EOF
	up_done=1
	cat "$state"
}

case $action in
up) do_up ;;
down) do_down ;;
*) usage ;;
esac
