# The series' own kselftest (patch 0014,
# tools/testing/selftests/drivers/net/netdevsim/devmem.sh): a linked
# netdevsim pair with emulate_nic, the tree's ncdevmem receiving into a
# udmabuf, in the VM. ncdevmem is built on the host from the patched tree
# in build-kernel.sh's cache by a fixture test, so `ctest -L vm` builds it
# first. A kselftest skip (4) is reported as a ctest skip (77).
set(GPUD_KERNEL_SRC "/var/cache/gpudirect/kernel/src/linux" CACHE PATH
    "Patched kernel tree for the kselftest (build-kernel.sh's src/linux)")
if(DEFINED ENV{GPUD_KERNEL_CACHE})
  set(GPUD_KERNEL_SRC "$ENV{GPUD_KERNEL_CACHE}/src/linux")
endif()
set(GPUD_KS_OUT ${CMAKE_CURRENT_BINARY_DIR}/kselftest)

add_test(NAME kselftest_ncdevmem_build
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/kselftest-build.sh ${GPUD_KS_OUT})
set_tests_properties(kselftest_ncdevmem_build PROPERTIES
  LABELS "vm;kernel" SKIP_RETURN_CODE 77 TIMEOUT 300
  ENVIRONMENT "GPUD_KERNEL_SRC=${GPUD_KERNEL_SRC}"
  FIXTURES_SETUP gpud_ncdevmem)

# 8 MiB: ncdevmem logs every fragment (~6k lines) and validates each byte.
# Measured under TCG at load ~7: 8 MiB 196 s, 16 MiB 181 s, so the time is
# mostly fixed cost (ncdevmem's setup, three YNL CLI calls in python), not
# the transfer: hence the limit.
gpud_add_vm_test(NAME kselftest_netdevsim_devmem
  COMMAND /bin/sh -c "rc=0; \"$0\" || rc=$?; [ $rc -eq 4 ] && exit 77; exit $rc"
          ${GPUD_KERNEL_SRC}/tools/testing/selftests/drivers/net/netdevsim/devmem.sh
  TIMEOUT 480 LABELS kernel
  VM_ARGS --env NCDEVMEM=${GPUD_KS_OUT}/ncdevmem --env DEVMEM_SIZE=8388608)
set_tests_properties(kselftest_netdevsim_devmem PROPERTIES
  FIXTURES_REQUIRED gpud_ncdevmem)
