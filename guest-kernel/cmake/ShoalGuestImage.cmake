# ShoalGuestImage.cmake - build bootable shoal guest images.
#
#   shoal_add_guest_image(<name>
#       SOURCES <file>...                 # the app: C or .S, defines main()
#       [INCLUDE_DIRECTORIES <dir>...]
#       [COMPILE_DEFINITIONS <def>...]
#       [NO_INSTALL]                      # do not install the image
#       [NET]                             # sockets: the network stack and
#                                         # virtio-net driver (docs/guest-net.md)
#       [BARE]                            # link SOURCES alone, no kernel/libc
#       [LINKER_SCRIPT <file>])           # instead of arch/x86_64/link.ld
#
# Produces ${SHOAL_GUEST_IMAGE_DIR}/<name>.elf (stripped of debug info, what
# you boot) and ${SHOAL_GUEST_IMAGE_DIR}/debug/<name>.elf (with it, for
# addr2line/gdb). The path is published three ways:
#   - cache variable SHOAL_GUEST_IMAGE_<name>
#   - target property SHOAL_IMAGE_PATH on target guest_image_<name>
#   - the file name pattern above
# and the image installs to ${CMAKE_INSTALL_DATADIR}/shoal/images/<name>.elf.
# Build one with: cmake --build <dir> --target guest_image_<name>
#
# Guest code is freestanding: flags are set per target, and options that a
# build directory may put in CMAKE_C_FLAGS (sanitizers, coverage, PIE,
# stack protector) are switched off again after them.

set(SHOAL_GUEST_KERNEL_DIR ${CMAKE_CURRENT_LIST_DIR}/.. CACHE INTERNAL "")
set(SHOAL_GUEST_IMAGE_DIR ${CMAKE_BINARY_DIR}/guest-kernel/images CACHE INTERNAL "")

execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=include
                OUTPUT_VARIABLE _shoal_cc_include OUTPUT_STRIP_TRAILING_WHITESPACE)
set(SHOAL_GUEST_CC_INCLUDE ${_shoal_cc_include} CACHE INTERNAL "")

# Compile and link options of every guest object and image.
function(shoal_guest_target_flags target scope)
  set(c_only -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter)
  target_compile_options(${target} ${scope}
    # Last on the command line, so they win over CMAKE_C_FLAGS(_<CONFIG>).
    -O2 -g
    -ffreestanding -nostdinc -fno-pic -fno-pie -mno-red-zone
    -mgeneral-regs-only -mno-sse -mno-mmx -mno-80387
    -fno-stack-protector -fno-omit-frame-pointer -fno-strict-aliasing
    -fno-sanitize=all -fno-profile-arcs -fno-test-coverage -fcf-protection=none
    -fno-asynchronous-unwind-tables -ffunction-sections -fdata-sections
    $<$<COMPILE_LANGUAGE:C>:${c_only}>)
  # gcc's own headers (stdint.h, stdarg.h ...) by hand: -nostdinc drops
  # them, and CMake filters the compiler's implicit dirs out of
  # include_directories.
  target_include_directories(${target} SYSTEM ${scope}
    ${SHOAL_GUEST_KERNEL_DIR}/libc/include)
  target_compile_options(${target} ${scope} "SHELL:-isystem ${SHOAL_GUEST_CC_INCLUDE}")
endfunction()

function(shoal_add_guest_image name)
  cmake_parse_arguments(G "NO_INSTALL;BARE;NET" "LINKER_SCRIPT"
                        "SOURCES;INCLUDE_DIRECTORIES;COMPILE_DEFINITIONS" ${ARGN})
  if(NOT G_SOURCES)
    message(FATAL_ERROR "shoal_add_guest_image(${name}): SOURCES is required")
  endif()
  set(pfx guest_image_${name})
  set(image ${SHOAL_GUEST_IMAGE_DIR}/${name}.elf)
  set(sources ${G_SOURCES})
  if(NOT G_BARE)
    # argv[0] of the app; the kernel reads it as shoal_app_name.
    set(namefile ${CMAKE_CURRENT_BINARY_DIR}/${pfx}_name.c)
    file(CONFIGURE OUTPUT ${namefile}
         CONTENT "const char shoal_app_name[] = \"${name}\";\n")
    list(APPEND sources ${namefile})
  endif()

  # The app's objects, compiled once for both links below.
  add_library(${pfx}_objs OBJECT ${sources})
  shoal_guest_target_flags(${pfx}_objs PRIVATE)
  target_include_directories(${pfx}_objs PRIVATE ${G_INCLUDE_DIRECTORIES})
  if(G_NET)
    # sys/socket.h, poll.h, ...; ahead of the libc headers they extend.
    target_include_directories(${pfx}_objs BEFORE PRIVATE ${SHOAL_GUEST_KERNEL_DIR}/net/include)
  endif()
  target_compile_definitions(${pfx}_objs PRIVATE ${G_COMPILE_DEFINITIONS})
  set_target_properties(${pfx}_objs PROPERTIES POSITION_INDEPENDENT_CODE OFF)

  set(ld ${SHOAL_GUEST_KERNEL_DIR}/arch/x86_64/link.ld)
  if(G_LINKER_SCRIPT)
    get_filename_component(ld ${G_LINKER_SCRIPT} ABSOLUTE)
  endif()
  set(ksyms_cmake ${SHOAL_GUEST_KERNEL_DIR}/cmake/ksyms.cmake)
  macro(_shoal_guest_link target)
    if(NOT G_BARE)
      target_link_libraries(${target} PRIVATE shoal_guest_kernel)
    endif()
    if(G_NET)
      target_link_libraries(${target} PRIVATE shoal_guest_net)
    endif()
    target_link_options(${target} PRIVATE
      -nostdlib -static -no-pie -fno-sanitize=all -fno-profile-arcs
      -Wl,-T,${ld} -Wl,--gc-sections -Wl,--build-id=none
      -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack)
    set_target_properties(${target} PROPERTIES
      SUFFIX "" LINKER_LANGUAGE C
      POSITION_INDEPENDENT_CODE OFF INTERPROCEDURAL_OPTIMIZATION OFF
      LINK_DEPENDS ${ld})
  endmacro()

  # Two links, so the crash report can name functions: pass 1 without a
  # symbol table, whose text symbols become the table (ksyms.S) that pass 2
  # adds at the end of .rodata. Text does not move between the two (checked
  # after pass 2). BARE images have no kernel to read a table: one link.
  set(exe ${pfx}_debug)
  if(G_BARE)
    add_executable(${exe} $<TARGET_OBJECTS:${pfx}_objs>)
  else()
    set(ksyms ${CMAKE_CURRENT_BINARY_DIR}/${pfx}_ksyms.S)
    add_executable(${pfx}_pass1 $<TARGET_OBJECTS:${pfx}_objs>)
    _shoal_guest_link(${pfx}_pass1)
    set_target_properties(${pfx}_pass1 PROPERTIES OUTPUT_NAME ${pfx}_pass1.elf)
    add_custom_command(OUTPUT ${ksyms}
      COMMAND ${CMAKE_COMMAND} -DMODE=gen -DNM=${CMAKE_NM} -DELF=$<TARGET_FILE:${pfx}_pass1>
              -DOUT=${ksyms} -P ${ksyms_cmake}
      DEPENDS ${pfx}_pass1 ${ksyms_cmake}
      COMMENT "guest image ${name}: symbol table")
    add_executable(${exe} $<TARGET_OBJECTS:${pfx}_objs> ${ksyms})
    add_custom_command(TARGET ${exe} POST_BUILD
      COMMAND ${CMAKE_COMMAND} -DMODE=check -DNM=${CMAKE_NM} -DELF=$<TARGET_FILE:${pfx}_pass1>
              -DELF2=$<TARGET_FILE:${exe}> -P ${ksyms_cmake})
  endif()
  _shoal_guest_link(${exe})
  set_target_properties(${exe} PROPERTIES
    OUTPUT_NAME ${name}.elf
    RUNTIME_OUTPUT_DIRECTORY ${SHOAL_GUEST_IMAGE_DIR}/debug)

  # The bootable image: same code, no DWARF (keeps the ELF symbol table).
  add_custom_command(OUTPUT ${image}
    COMMAND ${CMAKE_OBJCOPY} --strip-debug $<TARGET_FILE:${exe}> ${image}
    DEPENDS ${exe}
    COMMENT "guest image ${name}.elf")
  add_custom_target(${pfx} ALL DEPENDS ${image})
  set_target_properties(${pfx} PROPERTIES SHOAL_IMAGE_PATH ${image})
  set(SHOAL_GUEST_IMAGE_${name} ${image} CACHE INTERNAL "")
  if(NOT G_NO_INSTALL)
    install(FILES ${image} DESTINATION ${CMAKE_INSTALL_DATADIR}/shoal/images)
  endif()
endfunction()
