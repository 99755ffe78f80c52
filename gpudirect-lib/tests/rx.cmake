# Receive path (src/rx): unit tests on internals, a netns copy-mode test on
# the host kernel, and the devmem end-to-end test inside the patched VM.
gpud_add_test(NAME rx_cmsg SOURCES ${CMAKE_CURRENT_LIST_DIR}/rx_cmsg_test.c LABELS unit
  LIBS gpudirect_internal)
gpud_add_test(NAME rx_tokens SOURCES ${CMAKE_CURRENT_LIST_DIR}/rx_tokens_test.c LABELS unit
  LIBS gpudirect_internal)
gpud_add_test(NAME rx_devmem_fake SOURCES ${CMAKE_CURRENT_LIST_DIR}/rx_devmem_fake_test.c
  LABELS unit LIBS gpudirect_internal)
gpud_add_test(NAME rx_copy_netns SOURCES ${CMAKE_CURRENT_LIST_DIR}/rx_copy_netns_test.c
  LABELS netns LIBS gpudirect TIMEOUT 180)
gpud_add_test(NAME rx_auto_netns SOURCES ${CMAKE_CURRENT_LIST_DIR}/rx_auto_netns_test.c
  LABELS netns LIBS gpudirect_internal TIMEOUT 120)
# The devmem end-to-end test runs only inside the patched-kernel VM (it
# skips with the reason when started elsewhere), so it is registered through
# gpud_add_vm_test, which boots the VM around it.
add_executable(rx_devmem_e2e ${CMAKE_CURRENT_LIST_DIR}/rx_devmem_e2e_test.c)
target_link_libraries(rx_devmem_e2e PRIVATE gpud_devmem_testutil)
if(COMMAND gpud_add_vm_test)
  gpud_add_vm_test(NAME rx_devmem_e2e COMMAND rx_devmem_e2e TIMEOUT 600)
endif()
