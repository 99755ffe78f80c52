#!/bin/bash
# In the VM: runs the 6.12 tree's stock netdevsim selftests
# (tools/testing/selftests/drivers/net/netdevsim, TEST_PROGS of its Makefile
# minus the series' devmem.sh) one by one and prints one line per test:
# name, exit status (0 pass, 4 skip, else fail), seconds. Used to compare a
# kernel with and without the series (cover letter).
#
# usage: run-nsim-selftests.sh KERNEL_TREE [PER_TEST_TIMEOUT_S [TEST.sh...]]
# (with TEST.sh names, only those)
set -uo pipefail

tree=${1:?usage: run-nsim-selftests.sh KERNEL_TREE [TIMEOUT]}
limit=${2:-600}
dir=$tree/tools/testing/selftests/drivers/net/netdevsim
# No process substitution: the guest has no /dev/fd.
# shellcheck disable=SC2207  # names without spaces
progs=($(sed -n '/^TEST_PROGS/,/^$/p' "$dir/Makefile" |
	 grep -o '[A-Za-z0-9_.-]*\.sh' | grep -vx devmem.sh))
[ ${#progs[@]} -gt 0 ] || { echo "no TEST_PROGS in $dir/Makefile"; exit 1; }
[ $# -gt 2 ] && progs=("${@:3}")
cd "$dir" || exit 1
# The guest runs the host's userspace: without these, 8 of the 14 tests skip
# on any kernel and the comparison says little about them.
for tool in mausezahn socat; do
	command -v "$tool" > /dev/null ||
		echo "note: no $tool here (apt-get install netsniff-ng socat): tests that need it skip"
done
echo "kernel $(uname -r), ${#progs[@]} tests, limit ${limit} s each"
for t in "${progs[@]}"; do
	start=$SECONDS
	timeout "$limit" bash "./$t" > "/tmp/$t.log" 2>&1
	rc=$?
	printf '%-24s rc=%-3s %4ss  %s\n' "$t" "$rc" "$((SECONDS - start))" \
		"$(grep -E 'FAIL|SKIP|PASS|[Ss]kipping|^ok|not ok' "/tmp/$t.log" | tail -n 1 | cut -c1-70)"
done
