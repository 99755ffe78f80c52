#!/bin/bash
# Runs the whole test suite: installs dependencies, builds the normal and the
# ASan+UBSan flavours with -Werror, builds (or reuses) the patched kernel for
# the VM tier, and runs ctest on both flavours. Exits non-zero on any failure.
#
#   scripts/test.sh              everything
#   GPUD_SKIP_VM=1 scripts/test.sh   no kernel build; vm tests then skip (77)
#   GPUD_TEST_ARGS="-L unit" scripts/test.sh   extra ctest arguments
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
jobs=$(nproc)
declare -a stage_names stage_secs

stage() {
	local name=$1 t0=$SECONDS
	shift
	echo "=== $name"
	"$@"
	stage_names+=("$name")
	stage_secs+=($((SECONDS - t0)))
}

summary() {
	echo "=== stage wall times"
	for i in "${!stage_names[@]}"; do
		printf '  %-28s %5ss\n' "${stage_names[$i]}" "${stage_secs[$i]}"
	done
}
trap summary EXIT

configure_build() {
	local dir=$1
	shift
	cmake -S "$top" -B "$dir" -DGPUD_WERROR=ON "$@" >"$dir.configure.log" 2>&1 ||
		{ cat "$dir.configure.log"; return 1; }
	cmake --build "$dir" -j"$jobs"
}

run_ctest() {
	local dir=$1
	shift
	# shellcheck disable=SC2086
	(cd "$dir" && ctest --output-on-failure -j"$jobs" ${GPUD_TEST_ARGS:-} "$@")
}

if [ "$(id -u)" -eq 0 ]; then
	stage "install dependencies" scripts/install-deps.sh
fi
stage "build (normal)" configure_build build
stage "build (asan+ubsan)" configure_build build-asan -DGPUD_SANITIZE=ON -DGPUD_WITH_CUDA=OFF
if [ -z "${GPUD_SKIP_VM:-}" ]; then
	stage "build patched kernel" kernel-patches/scripts/build-kernel.sh
fi
stage "tests (normal)" run_ctest build
# The VM tier boots a guest per test; running it once (normal flavour) keeps
# CI inside its budget. The sanitizer flavour runs every other tier.
stage "tests (asan+ubsan)" run_ctest build-asan -LE vm
