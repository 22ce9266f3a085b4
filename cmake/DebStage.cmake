# DebStage.cmake - run by cpack (CPACK_PRE_BUILD_SCRIPTS, Packaging.cmake) on
# the staged files of the Debian package, before it is built: what Debian
# asks of a package but a `cmake --install` does not need. Gzipped man
# pages, /usr/share/doc/shoal/{copyright,changelog.Debian.gz} and the
# lintian overrides. Gzip with -n and a fixed changelog date: the same
# build gives the same package.
file(GLOB_RECURSE _stage_roots LIST_DIRECTORIES true "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*/share/man")
set(_root "")
foreach(d IN LISTS _stage_roots)
  if(IS_DIRECTORY "${d}" AND d MATCHES "/usr/share/man$")
    string(REGEX REPLACE "/usr/share/man$" "" _root "${d}")
  endif()
endforeach()
if(NOT _root)
  message(FATAL_ERROR "DebStage: no usr/share/man under ${CPACK_TEMPORARY_INSTALL_DIRECTORY}")
endif()

find_program(_gzip gzip REQUIRED)
file(GLOB _man_pages "${_root}/usr/share/man/man*/*.[0-9]")
foreach(p IN LISTS _man_pages)
  execute_process(COMMAND ${_gzip} -9nf "${p}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "DebStage: gzip ${p} failed")
  endif()
endforeach()

set(_doc "${_root}/usr/share/doc/shoal")
file(MAKE_DIRECTORY "${_doc}" "${_root}/usr/share/lintian/overrides")
file(COPY "${CPACK_SHOAL_DEB_SRC}/copyright" DESTINATION "${_doc}")
file(COPY_FILE "${CPACK_SHOAL_DEB_SRC}/lintian-overrides" "${_root}/usr/share/lintian/overrides/shoal")
file(WRITE "${_doc}/changelog.Debian"
  "shoal (${CPACK_PACKAGE_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}) unstable; urgency=medium\n\n"
  "  * Built by CPack from the shoal sources (README, docs/shoald.md).\n\n"
  " -- ${CPACK_PACKAGE_CONTACT}  Tue, 01 Dec 2026 00:00:00 +0000\n")
execute_process(COMMAND ${_gzip} -9nf "${_doc}/changelog.Debian" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "DebStage: gzip changelog failed")
endif()
file(CHMOD "${_doc}/copyright" "${_doc}/changelog.Debian.gz" "${_root}/usr/share/lintian/overrides/shoal"
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
