# rdma importer tests (issue 10): against a fake libibverbs (unit), and RDMA
# writes over soft-RoCE in the VM (need rdma-core's headers to build): one
# queue pair looped to itself, and two processes in two namespaces.
add_library(fakeibverbs SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fakes/fake_ibverbs.c)

gpud_add_test(NAME rdma_fake_test SOURCES rdma_fake_test.c LABELS unit
  LIBS gpudirect_internal ${CMAKE_DL_LIBS})
target_compile_definitions(rdma_fake_test PRIVATE
  FAKE_IBVERBS_PATH="$<TARGET_FILE:fakeibverbs>"
  FAKE_HSA_PATH="$<TARGET_FILE:fakehsa>")
add_dependencies(rdma_fake_test fakeibverbs fakehsa)

# The soft-RoCE test posts work requests itself, which are static inlines
# in <infiniband/verbs.h>: built only where libibverbs-dev is installed.
find_path(GPUD_VERBS_INCLUDE infiniband/verbs.h)
find_library(GPUD_VERBS_LIB ibverbs)
if(GPUD_VERBS_INCLUDE AND GPUD_VERBS_LIB)
  gpud_add_test(NAME rdma_rxe_test SOURCES rdma_rxe_test.c LABELS unit
    LIBS gpudirect ${GPUD_VERBS_LIB})
  target_include_directories(rdma_rxe_test PRIVATE ${GPUD_VERBS_INCLUDE})
  # Two processes in the two namespaces of a veth pair, one writing into
  # the other's registered buffers (skips outside the VM).
  gpud_add_test(NAME rdma_rxe_netns_test SOURCES rdma_rxe_netns_test.c LABELS unit
    LIBS gpudirect ${GPUD_VERBS_LIB})
  target_include_directories(rdma_rxe_netns_test PRIVATE ${GPUD_VERBS_INCLUDE})
  if(COMMAND gpud_add_vm_test)
    gpud_add_vm_test(NAME rdma_rxe_vm COMMAND rdma_rxe_test TIMEOUT 300)
    gpud_add_vm_test(NAME rdma_rxe_netns_vm COMMAND rdma_rxe_netns_test TIMEOUT 120)
  endif()
else()
  message(STATUS "gpudirect: libibverbs-dev not found, soft-RoCE test not built")
endif()
