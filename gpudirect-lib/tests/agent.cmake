# gpudd, the node agent (gpudirect-lib/agent): wire format, queue pool and
# RSS table (unit), the agent itself on veth in namespaces (netns, root).
set(AGENT_TEST_DIR ${CMAKE_CURRENT_LIST_DIR}/agent)
set(AGENT_SRC_DIR ${PROJECT_SOURCE_DIR}/gpudirect-lib/agent)

gpud_add_test(NAME agent_proto_unit
  SOURCES ${AGENT_TEST_DIR}/agent_proto_unit.c ${AGENT_SRC_DIR}/proto.c LABELS unit)
target_include_directories(agent_proto_unit PRIVATE ${AGENT_SRC_DIR})
gpud_add_test(NAME agent_pool_unit
  SOURCES ${AGENT_TEST_DIR}/agent_pool_unit.c ${AGENT_SRC_DIR}/gpudd_pool.c LABELS unit)
target_include_directories(agent_pool_unit PRIVATE ${AGENT_SRC_DIR})

# netns: access by group, malformed requests, rules only for proven sockets,
# release on close and on SIGKILL, bind errors the same as without the agent.
gpud_add_test(NAME agent_netns SOURCES ${AGENT_TEST_DIR}/agent_netns.c LABELS netns
  LIBS gpudirect_internal ARGS $<TARGET_FILE:gpudd> $<TARGET_FILE:gpudctl> TIMEOUT 180)
target_include_directories(agent_netns PRIVATE ${AGENT_SRC_DIR})

# libFuzzer on the parser (~20 s), built like the plugin's fuzz_ctrl.
find_program(GPUD_FUZZ_CLANG NAMES clang-14 clang)
set(GPUD_HAVE_FUZZER OFF)
if(GPUD_FUZZ_CLANG)
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/agent_fuzzprobe.c
    "#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n")
  execute_process(COMMAND ${GPUD_FUZZ_CLANG} -fsanitize=fuzzer
                          ${CMAKE_CURRENT_BINARY_DIR}/agent_fuzzprobe.c
                          -o ${CMAKE_CURRENT_BINARY_DIR}/agent_fuzzprobe
                  RESULT_VARIABLE agent_fuzz_rc OUTPUT_QUIET ERROR_QUIET)
  if(agent_fuzz_rc EQUAL 0)
    set(GPUD_HAVE_FUZZER ON)
  endif()
endif()
if(GPUD_HAVE_FUZZER)
  set(AGENT_FUZZ_BIN ${CMAKE_CURRENT_BINARY_DIR}/fuzz_agent_proto)
  add_custom_command(OUTPUT ${AGENT_FUZZ_BIN}
    COMMAND ${GPUD_FUZZ_CLANG} -g -O1 -fsanitize=fuzzer,address,undefined
            -fno-sanitize-recover=all -I${AGENT_SRC_DIR}
            ${AGENT_TEST_DIR}/fuzz_agent_proto.c ${AGENT_SRC_DIR}/proto.c -o ${AGENT_FUZZ_BIN}
    DEPENDS ${AGENT_TEST_DIR}/fuzz_agent_proto.c ${AGENT_SRC_DIR}/proto.c
            ${AGENT_SRC_DIR}/proto.h
    COMMENT "Building libFuzzer target fuzz_agent_proto with ${GPUD_FUZZ_CLANG}")
  add_custom_target(fuzz_agent_proto ALL DEPENDS ${AGENT_FUZZ_BIN})
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/agent_fuzz_corpus)
  add_test(NAME agent_fuzz_proto
    COMMAND ${AGENT_FUZZ_BIN} -max_total_time=20 -timeout=5
            ${CMAKE_CURRENT_BINARY_DIR}/agent_fuzz_corpus ${AGENT_TEST_DIR}/corpus)
  set_tests_properties(agent_fuzz_proto PROPERTIES LABELS unit TIMEOUT 90)
else()
  message(STATUS "gpudirect-lib: no clang with libFuzzer; agent_fuzz_proto not registered")
endif()

# vm: four unprivileged receivers through gpudd on an 8-queue netdevsim port
# (t_netpair) found with 4 channels, which gpudd raises for its pool; plain
# TCP meanwhile, one receiver killed with SIGKILL, the NIC as found after;
# a rule gone with its connection; gpudctl agent bench.
add_executable(agent_vm_nsim ${AGENT_TEST_DIR}/agent_vm_nsim.c)
target_link_libraries(agent_vm_nsim PRIVATE gpud_devmem_testutil gpudirect_internal)
if(COMMAND gpud_add_vm_test)
  gpud_add_vm_test(NAME agent_vm_nsim
    COMMAND agent_vm_nsim $<TARGET_FILE:gpudd> $<TARGET_FILE:gpudctl> TIMEOUT 600)
else()
  add_test(NAME agent_vm_nsim COMMAND agent_vm_nsim $<TARGET_FILE:gpudd> $<TARGET_FILE:gpudctl>)
  set_tests_properties(agent_vm_nsim PROPERTIES LABELS vm SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
