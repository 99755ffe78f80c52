# Devmem receive under faults (issue 6): the receiver killed with tokens held
# and skbs queued, the receiving netdevsim device deleted and the receiving
# namespace destroyed under traffic, a 1 MiB dma-buf exhausted by held tokens
# (drops, then recovery). Each ends by checking that the kernel let go of
# everything (no page pool of the dma-buf with net_iovs in flight, nothing
# attached to the dma-buf); vm-run.sh checks the guest's log. The fixture is
# tests/common/gpud_devmem_test.h, shared with rx_devmem_e2e.
add_executable(devmem_fault ${CMAKE_CURRENT_LIST_DIR}/devmem_fault.c)
target_link_libraries(devmem_fault PRIVATE gpud_devmem_testutil)
add_dependencies(gpud_kernel_vm_tests devmem_fault)
foreach(mode kill deldev netns exhaust unbind restart vmap)
  gpud_add_vm_test(NAME devmem_fault_${mode} COMMAND devmem_fault ${mode}
    TIMEOUT ${GPUD_KP_TIMEOUT} LABELS kernel vm-debug ${GPUD_KP_VM_ARGS})
endforeach()
