#!/bin/bash
# Runs the whole test suite: installs dependencies, builds the normal (Release,
# -O3: gcc's maybe-uninitialized analysis sees most there) and the ASan+UBSan
# (RelWithDebInfo) flavours with -Werror, builds (or reuses) the patched kernel
# for the VM tier, and runs ctest on both flavours. Exits non-zero on any failure.
#
#   scripts/test.sh              everything
#   GPUD_SKIP_VM=1 scripts/test.sh   no kernel build; vm tests then skip (77)
#   GPUD_SKIP_DEBUG_VM=1 scripts/test.sh   no debug-kernel stage (see its block)
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
	(cd "$dir" && ctest --output-on-failure -j"$jobs" ${GPUD_TEST_ARGS:-} "$@") 2>&1 |
		tee "$dir/ctest.log"
}

if [ "$(id -u)" -eq 0 ]; then
	stage "install dependencies" scripts/install-deps.sh
fi
# Release as CI's Release flavour; the tests need no asserts (the default,
# RelWithDebInfo, defines NDEBUG too) and it builds in the same time.
stage "build (normal)" configure_build build -DCMAKE_BUILD_TYPE=Release
stage "build (asan+ubsan)" configure_build build-asan -DGPUD_SANITIZE=ON -DGPUD_WITH_CUDA=OFF
if [ -z "${GPUD_SKIP_VM:-}" ]; then
	stage "build patched kernel" kernel-patches/scripts/build-kernel.sh
fi
# With the kernel built, a VM test that skips means the devmem path did not
# run: that must fail CI, not pass quietly. The e2e tests read
# GPUD_REQUIRE_DEVMEM and fail instead of skipping when devmem is unusable.
check_vm_ran() {
	local log=$1 vm skipped bad
	vm=$(cd build && ctest -N -L vm | sed -n 's/^ *Test *#[0-9]*: //p' | sort)
	skipped=$(sed -n '/tests did not run:/,/^$/p' "$log" |
		sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (Skipped)$/\1/p' | sort)
	bad=$(comm -12 <(echo "$vm") <(echo "$skipped"))
	if [ -n "$bad" ]; then
		echo "FAIL: VM-tier tests skipped although the patched kernel is built: ${bad//$'\n'/ }"
		return 1
	fi
	echo "vm tier: all $(echo "$vm" | wc -l) tests ran"
}

if [ -z "${GPUD_SKIP_VM:-}" ]; then
	export GPUD_REQUIRE_DEVMEM=1
	stage "tests (normal)" run_ctest build
	check_vm_ran build/ctest.log
else
	stage "tests (normal)" run_ctest build
fi
# The VM tier boots a guest per test; running it once (normal flavour) keeps
# CI inside its budget. The sanitizer flavour runs every other tier.
stage "tests (asan+ubsan)" run_ctest build-asan -LE vm

# --- debug kernel (issue 11; owned by kernel-patches/, keep it one block) ---
# The recycling and fault tests of the series (ctest label vm-debug) once
# more on the debug kernel flavour: KFENCE, lockdep, PROVE_RCU, DEBUG_NET,
# DEBUG_LIST, page-pool stats. The long vm-stress set takes ~30 min on that
# kernel, too long next to the rest of a 90-minute CI run; run it by hand
# (kernel-patches/README.md, "Debug kernel in CI"). GPUD_SKIP_DEBUG_VM=1
# skips this stage, e.g. in developer loops.
debug_vm_tests() {
	local dir=build-debug-vm
	kernel-patches/scripts/build-kernel.sh --flavour debug >/dev/null
	cmake -S "$top" -B "$dir" -DGPUD_WERROR=ON -DGPUD_VM_FLAVOUR=debug \
		>"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
	cmake --build "$dir" -j"$jobs" --target gpud_kernel_vm_tests
	(cd "$dir" && ctest --output-on-failure -L vm-debug) 2>&1 | tee "$dir/ctest.log"
	# The debug kernel is built: a skip means the devmem path did not run.
	if grep -q '(Skipped)' "$dir/ctest.log"; then
		echo "FAIL: vm-debug tests skipped although the debug kernel is built"
		return 1
	fi
}
if [ -z "${GPUD_SKIP_VM:-}" ] && [ -z "${GPUD_SKIP_DEBUG_VM:-}" ]; then
	stage "debug kernel: vm-debug tests" debug_vm_tests
fi
# --- end debug kernel ---
