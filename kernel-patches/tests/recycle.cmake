# Devmem receive under the recycling paths that break page pools (issue 11):
# packet taps (skb clones), GRO on and off, netem loss/reorder/duplicate,
# receive-buffer pressure (prune/collapse), token storms. Each test receives a validated
# pattern through devmem, then checks the bound queue's page pool (inflight
# 0 after close, destroyed after unbind); vm-run.sh checks the guest log.
# The long variants (label vm-stress, minutes each) are registered only with
# -DGPUD_VM_STRESS=ON, so that CI's plain ctest run stays short:
#   cmake -B build-stress -DGPUD_VM_STRESS=ON [-DGPUD_VM_FLAVOUR=debug]
#   ctest --test-dir build-stress -L vm-stress --output-on-failure
if(NOT COMMAND gpud_add_vm_test)
  return()
endif()
option(GPUD_VM_STRESS "Register the long VM stress tests (label vm-stress)" OFF)

add_library(gpud_recycle STATIC ${CMAKE_CURRENT_LIST_DIR}/recycle_common.c)
target_include_directories(gpud_recycle PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(gpud_recycle PUBLIC gpud_devmem_testutil)

# DMA-API debugging (debug flavour) checks every entry of the dma-buf's
# 16384-entry sg list on each DMA_BUF_IOCTL_SYNC, i.e. on every fragment the
# test reads back: under TCG a 4 MiB transfer stalls for minutes. Keep it
# compiled in (it still checks mapping and unmapping when booted with it)
# but boot these tests without it.
# The debug kernel moves data ~10x slower under TCG: longer limits there.
set(GPUD_RECYCLE_VM_ARGS "")
set(GPUD_RECYCLE_TIMEOUT 120)
if(GPUD_VM_FLAVOUR STREQUAL "debug")
  set(GPUD_RECYCLE_VM_ARGS VM_ARGS --append dma_debug=off)
  set(GPUD_RECYCLE_TIMEOUT 600)
endif()

function(gpud_recycle_test name)
  add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/${name}.c)
  target_link_libraries(${name} PRIVATE gpud_recycle Threads::Threads)
  # uapi_compat.h: the 6.12 devmem uapi Debian 12's headers lack
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/gpudirect-lib/src)
endfunction()

gpud_recycle_test(recycle_packet_tap)
gpud_add_vm_test(NAME recycle_packet_ring COMMAND recycle_packet_tap ring TIMEOUT ${GPUD_RECYCLE_TIMEOUT} ${GPUD_RECYCLE_VM_ARGS})
gpud_add_vm_test(NAME recycle_packet_recv COMMAND recycle_packet_tap recv TIMEOUT ${GPUD_RECYCLE_TIMEOUT} ${GPUD_RECYCLE_VM_ARGS})
# packet_rcv() clones the shared devmem skb and trims the clone to its
# headers; pskb_expand_head() then takes a reference on every net_iov frag.
# Plain 6.12 oopses there (get_page(NULL)); series patches 0006-0007
# backport the fix (skb_frag_ref() -> get_netmem()).

gpud_recycle_test(recycle_token_storm)
gpud_add_vm_test(NAME recycle_token_storm COMMAND recycle_token_storm TIMEOUT ${GPUD_RECYCLE_TIMEOUT} ${GPUD_RECYCLE_VM_ARGS})

gpud_recycle_test(recycle_netem)
gpud_add_vm_test(NAME recycle_netem COMMAND recycle_netem TIMEOUT ${GPUD_RECYCLE_TIMEOUT} ${GPUD_RECYCLE_VM_ARGS})

gpud_recycle_test(recycle_gro)
gpud_add_vm_test(NAME recycle_gro COMMAND recycle_gro TIMEOUT ${GPUD_RECYCLE_TIMEOUT} ${GPUD_RECYCLE_VM_ARGS})

gpud_recycle_test(recycle_rcvbuf)
gpud_add_vm_test(NAME recycle_rcvbuf COMMAND recycle_rcvbuf TIMEOUT ${GPUD_RECYCLE_TIMEOUT} ${GPUD_RECYCLE_VM_ARGS})

if(GPUD_VM_STRESS)
  # 8 x 64 MiB, 256 MiB through netem, 1 GiB under a tap: minutes each on
  # the vm kernel, up to ~10x that on the debug one (see README.md)
  gpud_add_vm_test(NAME recycle_token_storm_long COMMAND recycle_token_storm 64
    TIMEOUT 1800 LABELS vm-stress ${GPUD_RECYCLE_VM_ARGS})
  gpud_add_vm_test(NAME recycle_netem_long COMMAND recycle_netem 256
    TIMEOUT 1800 LABELS vm-stress ${GPUD_RECYCLE_VM_ARGS})
  gpud_add_vm_test(NAME recycle_packet_ring_long COMMAND recycle_packet_tap ring 1024
    TIMEOUT 1800 LABELS vm-stress ${GPUD_RECYCLE_VM_ARGS})
endif()
