# drm backend tests (issue 10): the amdgpu path against a fake libdrm_amdgpu
# (unit), and vgem's dumb buffers + PRIME + a devmem bind in the VM.
add_library(fakedrmamdgpu SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fakes/fake_drm_amdgpu.c)

gpud_add_test(NAME drm_fake_test SOURCES drm_fake_test.c LABELS unit
  LIBS gpudirect_internal ${CMAKE_DL_LIBS})
target_compile_definitions(drm_fake_test PRIVATE
  FAKE_DRM_AMDGPU_PATH="$<TARGET_FILE:fakedrmamdgpu>")
add_dependencies(drm_fake_test fakedrmamdgpu)

# Real ioctls on vgem: skips (77) where /dev/dri has no vgem node.
gpud_add_test(NAME drm_vgem_test SOURCES drm_vgem_test.c LABELS unit
  LIBS gpudirect)
if(COMMAND gpud_add_vm_test)
  gpud_add_vm_test(NAME drm_vgem_vm COMMAND drm_vgem_test TIMEOUT 300)
endif()

find_program(GPUD_VALGRIND valgrind)
if(GPUD_VALGRIND AND NOT GPUD_SANITIZE)
  add_test(NAME drm_fake_test_valgrind
    COMMAND ${GPUD_VALGRIND} --quiet --error-exitcode=99 --leak-check=full
            --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
            $<TARGET_FILE:drm_fake_test>)
  set_tests_properties(drm_fake_test_valgrind PROPERTIES LABELS unit TIMEOUT 300
    SKIP_RETURN_CODE 77)
endif()

# The devmem end-to-end test with a vgem buffer bound instead of udmabuf:
# same checks, another exporter. Skips (77) like the udmabuf run while the
# VM's netdevsim lacks header split.
# (rx.cmake defines rx_devmem_e2e after this fragment: name its file directly.)
if(COMMAND gpud_add_vm_test)
  gpud_add_vm_test(NAME rx_devmem_e2e_vgem COMMAND $<TARGET_FILE:rx_devmem_e2e> TIMEOUT 600
    VM_ARGS --env GPUD_E2E_MEM=drm:/dev/dri/card0)
endif()
