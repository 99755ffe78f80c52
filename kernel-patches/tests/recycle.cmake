# Devmem receive under the recycling paths that break page pools (issue 11):
# packet taps (skb clones), GRO on and off, netem loss/reorder/duplicate,
# receive-buffer pressure (prune/collapse), token storms. Each test receives
# a validated pattern through devmem, then checks the bound queue's page
# pool (inflight 0 after close, destroyed after unbind); vm-run.sh checks
# the guest log. The long variants (label vm-stress, minutes each) are
# registered only with -DGPUD_VM_STRESS=ON, so that CI's plain ctest run
# stays short:
#   cmake -B build-stress -DGPUD_VM_STRESS=ON [-DGPUD_VM_FLAVOUR=debug]
#   ctest --test-dir build-stress -L vm-stress --output-on-failure
option(GPUD_VM_STRESS "Register the long VM stress tests (label vm-stress)" OFF)

add_library(gpud_recycle STATIC ${CMAKE_CURRENT_LIST_DIR}/recycle_common.c)
target_include_directories(gpud_recycle PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(gpud_recycle PUBLIC gpud_devmem_testutil)

function(gpud_recycle_test name)
  add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/${name}.c)
  target_link_libraries(${name} PRIVATE gpud_recycle Threads::Threads)
  # uapi_compat.h: the 6.12 devmem uapi Debian 12's headers lack
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/gpudirect-lib/src)
  add_dependencies(gpud_kernel_vm_tests ${name})
endfunction()

gpud_recycle_test(recycle_packet_tap)
gpud_add_vm_test(NAME recycle_packet_ring COMMAND recycle_packet_tap ring TIMEOUT ${GPUD_KP_TIMEOUT} LABELS vm-debug ${GPUD_KP_VM_ARGS})
gpud_add_vm_test(NAME recycle_packet_recv COMMAND recycle_packet_tap recv TIMEOUT ${GPUD_KP_TIMEOUT} LABELS vm-debug ${GPUD_KP_VM_ARGS})
# packet_rcv() clones the shared devmem skb and trims the clone to its
# headers; pskb_expand_head() then takes a reference on every net_iov frag.
# Plain 6.12 oopses there (get_page(NULL)); series patches 0006-0007
# backport the fix (skb_frag_ref() -> get_netmem()).

gpud_recycle_test(recycle_token_storm)
gpud_add_vm_test(NAME recycle_token_storm COMMAND recycle_token_storm TIMEOUT ${GPUD_KP_TIMEOUT} LABELS vm-debug ${GPUD_KP_VM_ARGS})

gpud_recycle_test(recycle_netem)
gpud_add_vm_test(NAME recycle_netem COMMAND recycle_netem TIMEOUT ${GPUD_KP_TIMEOUT} LABELS vm-debug ${GPUD_KP_VM_ARGS})

gpud_recycle_test(recycle_gro)
gpud_add_vm_test(NAME recycle_gro COMMAND recycle_gro TIMEOUT ${GPUD_KP_TIMEOUT} LABELS vm-debug ${GPUD_KP_VM_ARGS})

gpud_recycle_test(recycle_rcvbuf)
# A window of one or two MSS frames plus netem loss waits on RTOs: 6-110 s
# measured on the vm kernel (idle machine), so its own, longer limit.
set(GPUD_RCVBUF_TIMEOUT 300)
if(GPUD_KP_TIMEOUT GREATER GPUD_RCVBUF_TIMEOUT)
  set(GPUD_RCVBUF_TIMEOUT ${GPUD_KP_TIMEOUT})
endif()
gpud_add_vm_test(NAME recycle_rcvbuf COMMAND recycle_rcvbuf TIMEOUT ${GPUD_RCVBUF_TIMEOUT} LABELS vm-debug ${GPUD_KP_VM_ARGS})

if(GPUD_VM_STRESS)
  # 8 x 64 MiB, 256 MiB through netem, 1 GiB under a ring tap, 256 MiB under
  # a cloning tap, 64 MiB per GRO mode: ~30 s to 2 min each on the vm
  # kernel, 4 to 16 min each on the debug one (kernel-patches/README.md)
  gpud_add_vm_test(NAME recycle_token_storm_long COMMAND recycle_token_storm 64
    TIMEOUT 1800 LABELS vm-stress ${GPUD_KP_VM_ARGS})
  gpud_add_vm_test(NAME recycle_netem_long COMMAND recycle_netem 256
    TIMEOUT 1800 LABELS vm-stress ${GPUD_KP_VM_ARGS})
  gpud_add_vm_test(NAME recycle_packet_ring_long COMMAND recycle_packet_tap ring 1024
    TIMEOUT 1800 LABELS vm-stress ${GPUD_KP_VM_ARGS})
  gpud_add_vm_test(NAME recycle_packet_recv_long COMMAND recycle_packet_tap recv 256
    TIMEOUT 1800 LABELS vm-stress ${GPUD_KP_VM_ARGS})
  gpud_add_vm_test(NAME recycle_gro_long COMMAND recycle_gro 64
    TIMEOUT 1800 LABELS vm-stress ${GPUD_KP_VM_ARGS})
endif()
