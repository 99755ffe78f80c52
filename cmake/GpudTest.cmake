# gpud_add_test(NAME <name> SOURCES <src...> LABELS <label...>
#               [LIBS <lib...>] [ARGS <arg...>] [TIMEOUT <s>] [RUN_SERIAL])
#
# One program per feature. Exit 0 = pass, 77 = skipped (the program prints
# why), anything else = fail. Labels are the tiers: unit, netns, vm, gpu.
function(gpud_add_test)
  cmake_parse_arguments(T "RUN_SERIAL" "NAME;TIMEOUT" "SOURCES;LABELS;LIBS;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE gpud_testutil ${T_LIBS})
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS})
  set_tests_properties(${T_NAME} PROPERTIES
    LABELS "${T_LABELS}"
    TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77)
  if(T_RUN_SERIAL)
    set_tests_properties(${T_NAME} PROPERTIES RUN_SERIAL TRUE)
  endif()
endfunction()
