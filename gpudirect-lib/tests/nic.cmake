# NIC configuration, dma-buf binding, gpudctl (src/nic, tools/gpudctl*).
# Unit tests run anywhere; netns tests need root (they make their own
# namespaces and veth pairs and remove them); vm tests need the patched
# kernel with netdevsim and skip (77) elsewhere.
set(NIC_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})

gpud_add_test(NAME nic_nl_unit SOURCES ${NIC_TEST_DIR}/nic_nl_unit.c LABELS unit
  LIBS gpudirect_internal)
gpud_add_test(NAME nic_gpudctl_parse
  SOURCES ${NIC_TEST_DIR}/nic_gpudctl_parse.c ${PROJECT_SOURCE_DIR}/gpudirect-lib/tools/gpudctl_parse.c
  LABELS unit LIBS gpudirect)
target_include_directories(nic_gpudctl_parse PRIVATE ${PROJECT_SOURCE_DIR}/gpudirect-lib/tools)

# netns: families, dumps, bind errors and save/restore on a veth pair.
gpud_add_test(NAME nic_netns SOURCES ${NIC_TEST_DIR}/nic_netns.c LABELS netns
  LIBS gpudirect_internal TIMEOUT 120)
# netns: without gpudd one process at a time changes a NIC; the second is
# refused naming the holder and gpudd; SIGKILL of the holder frees it.
gpud_add_test(NAME nic_lock_netns SOURCES ${NIC_TEST_DIR}/nic_lock_netns.c LABELS netns
  LIBS gpudirect_internal TIMEOUT 60)
if(TARGET gpudctl)
  gpud_add_test(NAME nic_gpudctl_netns SOURCES ${NIC_TEST_DIR}/nic_gpudctl_netns.c
    LABELS netns ARGS $<TARGET_FILE:gpudctl> TIMEOUT 120)
endif()

# vm: the same on linked netdevsim ports of the patched kernel. Run through
# the VM when GpudVm.cmake is there; otherwise registered directly, where it
# skips (77) outside the VM.
add_executable(nic_vm_nsim ${NIC_TEST_DIR}/nic_vm_nsim.c)
target_link_libraries(nic_vm_nsim PRIVATE gpud_testutil gpudirect_internal)
if(COMMAND gpud_add_vm_test)
  gpud_add_vm_test(NAME nic_vm_nsim COMMAND nic_vm_nsim $<TARGET_FILE:gpudctl> TIMEOUT 300)
else()
  add_test(NAME nic_vm_nsim COMMAND nic_vm_nsim $<TARGET_FILE:gpudctl>)
  set_tests_properties(nic_vm_nsim PROPERTIES LABELS vm SKIP_RETURN_CODE 77 TIMEOUT 240)
endif()
