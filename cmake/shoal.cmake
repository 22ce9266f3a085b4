# Small helpers shared by the host modules and the test suite.

# shoal_add_test(<name> SOURCES <src>... [LIBS <lib>...] [LABELS <label>...]
#                [ARGS <arg>...] [TIMEOUT <seconds>] [CAN_SKIP])
# Builds a test executable (cmocka or plain C) linked with shoal_host_flags
# and LIBS, and registers it with CTest as `<name> ARGS...`, with LABELS and
# TIMEOUT (default 120 s). tests/ is on its include path for shoal_skip.h.
# CAN_SKIP: the test exits 77 when it cannot run here (tests/shoal_skip.h),
# and CTest shows that as "Skipped" (SKIP_RETURN_CODE 77), never "Passed".
# Only tests that use shoal_skip.h may say CAN_SKIP: a bare cmocka main
# returns its failure count, which must not be read as a skip.
function(shoal_add_test name)
  cmake_parse_arguments(T "CAN_SKIP" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE shoal_host_flags ${T_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
  if(T_CAN_SKIP)
    set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77)
  endif()
endfunction()

# shoal_probe_kvm(<var> <reason-var>)
# Whether this machine can run KVM guests, for registering the tests' KVM
# variants (*_kvm): <var> is TRUE when /dev/kvm is readable and writable by
# the user running CMake and QEMU initializes its KVM accelerator (a
# `-machine none` VM, quit at once, ~0.2 s). <reason-var> says why not.
# SHOAL_TEST_KVM overrides the probe: AUTO (default), ON (register the KVM
# variants anyway: where KVM then fails they exit 77, CTest "Skipped"), OFF.
# The variants exist to test KVM; one that ran under TCG would pass without
# testing it, so where KVM is missing they are not registered at all, and
# the accelerator-neutral variants ("auto": KVM if its canary boots, else
# TCG) and the *_tcg variants cover the rest.
set(SHOAL_TEST_KVM AUTO CACHE STRING "Register the *_kvm test variants: AUTO (probe), ON, OFF")
set_property(CACHE SHOAL_TEST_KVM PROPERTY STRINGS AUTO ON OFF)
function(shoal_probe_kvm var reason_var)
  set(ok FALSE)
  set(why "")
  if(SHOAL_TEST_KVM STREQUAL "ON")
    set(ok TRUE)
    set(why "SHOAL_TEST_KVM=ON")
  elseif(SHOAL_TEST_KVM STREQUAL "OFF")
    set(why "SHOAL_TEST_KVM=OFF")
  else()
    find_program(SHOAL_QEMU_X86 qemu-system-x86_64)
    execute_process(COMMAND test -r /dev/kvm -a -w /dev/kvm RESULT_VARIABLE rw)
    if(NOT rw EQUAL 0)
      set(why "/dev/kvm missing or not read-writable by this user")
    elseif(NOT SHOAL_QEMU_X86)
      set(why "no qemu-system-x86_64")
    else()
      file(WRITE ${CMAKE_BINARY_DIR}/CMakeFiles/shoal_kvm_probe.in "quit\n")
      execute_process(
        COMMAND ${SHOAL_QEMU_X86} -machine none -accel kvm -display none
                -nodefaults -S -monitor stdio
        INPUT_FILE ${CMAKE_BINARY_DIR}/CMakeFiles/shoal_kvm_probe.in
        OUTPUT_QUIET ERROR_VARIABLE err TIMEOUT 20 RESULT_VARIABLE rc)
      if(rc EQUAL 0)
        set(ok TRUE)
        set(why "QEMU initializes KVM")
      else()
        string(STRIP "${err}" err)
        set(why "QEMU cannot initialize KVM: ${rc} ${err}")
      endif()
    endif()
  endif()
  set(${var} ${ok} PARENT_SCOPE)
  set(${reason_var} "${why}" PARENT_SCOPE)
endfunction()
