# GpudVm.cmake: register tests that run inside the patched-kernel QEMU VM.
#
#   include(cmake/GpudVm.cmake)
#   gpud_add_vm_test(NAME <name> COMMAND <cmd> [args...]
#                    [TIMEOUT <seconds>]        # ctest timeout, default 300
#                    [LABELS <label>...]        # added to "vm"
#                    [VM_ARGS <arg>...]         # extra vm-run.sh options,
#                                               # e.g. --mem 1024 --rw <dir>
#                    [WORKING_DIRECTORY <dir>]) # default: current binary dir
#
# The test runs `kernel-patches/scripts/vm-run.sh --build-dir <CMAKE_BINARY_DIR>
# [VM_ARGS] -- <cmd...>`, so a build dir the guest's tmpfs would hide (one
# made with mktemp -d) is shared whole.
# A target name as the first COMMAND word becomes its $<TARGET_FILE:...>
# (add_test would only do that for the first word of its own COMMAND).
# Exit 77 (no kernel built, no qemu, or the test skipped itself) is a skip.
# All VM tests share RESOURCE_LOCK gpud_vm: one TCG VM already needs both
# cores of a small CI machine, so they never run concurrently.
#
# Cache variables:
#   GPUD_VM_KERNEL   bzImage to boot; empty = the one build-kernel.sh cached
#   GPUD_VM_FLAVOUR  vm, debug or kasan, which cached kernel to look up
# Target:
#   gpud_vm_kernel   builds the kernel (kernel-patches/scripts/build-kernel.sh)
include_guard(GLOBAL)

get_filename_component(GPUD_VM_SOURCE_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(GPUD_VM_RUN "${GPUD_VM_SOURCE_ROOT}/kernel-patches/scripts/vm-run.sh")
set(GPUD_VM_KERNEL "" CACHE FILEPATH
    "bzImage for VM tests (empty: use kernel-patches/scripts/build-kernel.sh's cache)")
set(GPUD_VM_FLAVOUR "vm" CACHE STRING "Kernel flavour for VM tests: vm, debug or kasan")
set_property(CACHE GPUD_VM_FLAVOUR PROPERTY STRINGS vm debug kasan)

if(NOT TARGET gpud_vm_kernel)
  # Not part of ALL: a kernel build takes minutes and needs the Debian
  # linux-source package; VM tests skip (77) until it has been built.
  add_custom_target(gpud_vm_kernel
    COMMAND "${GPUD_VM_SOURCE_ROOT}/kernel-patches/scripts/build-kernel.sh"
            --flavour "${GPUD_VM_FLAVOUR}"
    USES_TERMINAL
    COMMENT "Building the test-VM kernel (${GPUD_VM_FLAVOUR})")
endif()

function(gpud_add_vm_test)
  cmake_parse_arguments(PARSE_ARGV 0 ARG ""
    "NAME;TIMEOUT;WORKING_DIRECTORY" "COMMAND;LABELS;VM_ARGS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "gpud_add_vm_test: unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_NAME OR NOT ARG_COMMAND)
    message(FATAL_ERROR "gpud_add_vm_test: NAME and COMMAND are required")
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  if(NOT ARG_WORKING_DIRECTORY)
    set(ARG_WORKING_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}")
  endif()

  # vm-run.sh gets a shorter limit than ctest so that it, not ctest's kill,
  # stops the VM: it then reports the console tail and removes its temp dir.
  math(EXPR vm_timeout "${ARG_TIMEOUT} - 15")
  if(vm_timeout LESS 30)
    set(vm_timeout 30)
  endif()

  list(GET ARG_COMMAND 0 first)
  if(TARGET "${first}")
    list(REMOVE_AT ARG_COMMAND 0)
    list(INSERT ARG_COMMAND 0 "$<TARGET_FILE:${first}>")
  endif()

  # The whole build tree, not just the working dir: a test binary's shared
  # libraries (libgpudirect, the fakes) and helpers lie all over it, and a
  # build dir under /tmp is hidden by the guest's tmpfs unless shared.
  set(vm_args --timeout ${vm_timeout} --flavour "${GPUD_VM_FLAVOUR}"
      --build-dir "${CMAKE_BINARY_DIR}")
  if(GPUD_VM_KERNEL)
    list(APPEND vm_args --kernel "${GPUD_VM_KERNEL}")
  endif()

  add_test(NAME ${ARG_NAME}
    COMMAND "${GPUD_VM_RUN}" ${vm_args} ${ARG_VM_ARGS} -- ${ARG_COMMAND}
    WORKING_DIRECTORY "${ARG_WORKING_DIRECTORY}")
  set(labels vm ${ARG_LABELS})
  set_tests_properties(${ARG_NAME} PROPERTIES
    LABELS "${labels}"
    SKIP_RETURN_CODE 77
    TIMEOUT ${ARG_TIMEOUT}
    RESOURCE_LOCK gpud_vm)
endfunction()
