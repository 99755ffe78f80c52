#!/bin/bash
# Installs what building and testing need, from Debian 12 packages only.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

pkgs=(
	build-essential cmake pkg-config git
	libmnl-dev			# netlink framing for the netdev/ethtool families
	iproute2 ethtool iputils-ping	# test networks (namespaces, veth)
	# RDMA importer tests: soft-RoCE userspace (rxe provider), verbs.h for
	# the test that posts work requests; libdrm-dev only for reference
	ibverbs-providers libdrm-dev libibverbs-dev rdma-core
	clang libclang-rt-14-dev	# libFuzzer target for the plugin's parser
	# patched-kernel VM tier
	linux-source-6.12 qemu-system-x86 busybox-static
	flex bison bc libelf-dev libssl-dev cpio kmod xz-utils
	python3-yaml			# kselftest devmem.sh: YNL CLI sets tcp-data-split (ethtool 6.1 cannot)
	gnuplot-nox			# docs/results plots
)

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: run as root (apt-get); needed: ${pkgs[*]}" >&2
	exit 1
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#pkgs[@]} packages present"
	exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
