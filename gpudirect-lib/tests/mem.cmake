# gpud_mem tests (issue 4): host memory, udmabuf export, and the CUDA and HIP
# backends against fake driver libraries, plus a real-GPU test (label gpu).

# Fake drivers: tests point GPUD_LIBCUDA / GPUD_LIBHSA / GPUD_LIBNVML at them.
add_library(fakecuda SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fakes/fake_cuda.c)
# its engine thread runs the stream ops; dladdr/dlopen pin it while it runs
target_link_libraries(fakecuda PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
add_library(fakehsa SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fakes/fake_hsa.c)
add_library(fakehsa_old SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fakes/fake_hsa.c)
target_compile_definitions(fakehsa_old PRIVATE FAKE_HSA_OLD)
set(GPUD_FAKE_DEFS
  FAKE_CUDA_PATH="$<TARGET_FILE:fakecuda>"
  FAKE_HSA_PATH="$<TARGET_FILE:fakehsa>"
  FAKE_HSA_OLD_PATH="$<TARGET_FILE:fakehsa_old>")

gpud_add_test(NAME mem_spec_test SOURCES mem_spec_test.c LABELS unit LIBS gpudirect)
gpud_add_test(NAME mem_host_test SOURCES mem_host_test.c LABELS unit
  LIBS gpudirect_internal)
gpud_add_test(NAME mem_udmabuf_test SOURCES mem_udmabuf_test.c LABELS unit
  LIBS gpudirect_internal)
if(COMMAND gpud_add_vm_test)
  # Runs for real in the patched-kernel VM, which has CONFIG_UDMABUF.
  gpud_add_vm_test(NAME mem_udmabuf_vm COMMAND mem_udmabuf_test TIMEOUT 300)
endif()

foreach(t mem_cuda_fake_test mem_hip_fake_test)
  gpud_add_test(NAME ${t} SOURCES ${t}.c LABELS unit LIBS gpudirect ${CMAKE_DL_LIBS})
  target_compile_definitions(${t} PRIVATE ${GPUD_FAKE_DEFS})
  add_dependencies(${t} fakecuda fakehsa fakehsa_old)
endforeach()

# The fake's model of CUDA's concurrency (streams, ordering, deadlocks behind
# a resident kernel, the call log) against its own rules, with real threads.
gpud_add_test(NAME fake_cuda_model_test SOURCES fake_cuda_model_test.c LABELS unit TIMEOUT 60
  LIBS Threads::Threads ${CMAKE_DL_LIBS})
target_compile_definitions(fake_cuda_model_test PRIVATE ${GPUD_FAKE_DEFS})
add_dependencies(fake_cuda_model_test fakecuda)

# Leaks and invalid accesses on every error path, under valgrind (ASan builds
# check the same through the plain tests).
find_program(GPUD_VALGRIND valgrind)
if(GPUD_VALGRIND AND NOT GPUD_SANITIZE)
  foreach(t mem_cuda_fake_test mem_hip_fake_test mem_host_test)
    add_test(NAME ${t}_valgrind
      COMMAND ${GPUD_VALGRIND} --quiet --error-exitcode=99 --leak-check=full
              --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
              --track-fds=no $<TARGET_FILE:${t}>)
    set_tests_properties(${t}_valgrind PROPERTIES LABELS unit TIMEOUT 300
      SKIP_RETURN_CODE 77)
  endforeach()
endif()

gpud_add_test(NAME mem_cuda_gpu_test SOURCES mem_cuda_gpu_test.c LABELS gpu LIBS gpudirect)
