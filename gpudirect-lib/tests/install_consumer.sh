#!/bin/bash
# Installs the build into a scratch prefix and compiles a consumer program
# against the *installed* header and pkg-config file, as a user would.
set -euo pipefail
build=$1 src=$2
# A sanitizer build installs an instrumented library: the consumer needs the
# same runtime first in link order.
extra=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
	{ echo "FAIL: cmake --install"; cat "$tmp/install.log"; exit 1; }
pc=$(find "$tmp/prefix" -name gpudirect.pc | head -n1)
[ -n "$pc" ] || { echo "FAIL: gpudirect.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs gpudirect)
# shellcheck disable=SC2086
cc -std=c11 -Wall -Werror $extra -o "$tmp/consumer" "$src/consumer.c" $flags
LD_LIBRARY_PATH=$(pkg-config --variable=libdir gpudirect) "$tmp/consumer"
