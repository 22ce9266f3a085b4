# Packaging.cmake - shoald's systemd unit and man page for `cmake --install`,
# and the Debian package CPack makes from the same build:
#   cmake --build build && (cd build && cpack -G DEB)  ->  shoal_VERSION-1_ARCH.deb
# docs/shoald.md "Running as a service", README "Install the Debian package".

install(FILES ${PROJECT_SOURCE_DIR}/daemon/shoald.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
# the system users guests run as; the package's postinst runs it, and so
# should whoever installs by hand (scripts/setup-debian.sh runs the source)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/daemon/packaging/shoal-users.sh
        DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/shoal RENAME shoal-users)

# The unit names shoald by its installed path, known only when installing:
# cpack installs under /usr whatever prefix the build was configured with.
# So the unit is written at install time from the prefix in force then
# (CPACK_SET_DESTDIR below makes that /usr, not cpack's staging dir). Under
# /usr it goes to /lib/systemd/system, where Debian 12's packages put units.
set(_unit_in ${PROJECT_SOURCE_DIR}/daemon/shoald.service.in)
set(_unit_out ${CMAKE_BINARY_DIR}/daemon/shoald.service)
install(CODE "
  set(SHOALD_PATH \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/shoald\")
  set(_unitdir \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(_unitdir /lib/systemd/system)
  endif()
  configure_file(\"${_unit_in}\" \"${_unit_out}\" @ONLY)
  file(INSTALL DESTINATION \"\${_unitdir}\" TYPE FILE FILES \"${_unit_out}\")
")

# --- the Debian package ---
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME shoal)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR shoal)
set(SHOAL_DEB_MAINTAINER "shoal developers <shoal@localhost>" CACHE STRING
    "Maintainer field of the Debian package cpack makes")
set(CPACK_PACKAGE_CONTACT "${SHOAL_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "fleets of small unikernel VMs on QEMU/KVM")
# CPack puts the summary first and indents these lines itself.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "shoald keeps images and instances in SQLite, packs many tiny guests onto
as few hosts as possible, starts them through libvirt's embedded QEMU
driver (no libvirtd needed) and serves a REST API; shoal is its
command-line client. The package holds both, the systemd unit
shoald.service (not enabled on install), the man pages, bash completion
and the reference guest images under /usr/share/shoal/images.")
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # shoal_0.1.0-1_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr) # what CPACK_SET_DESTDIR installs under
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
# Libraries the binaries link (libvirt0, libmicrohttpd12, libjansson4,
# libsqlite3-0, libcurl4, libgnutls30, libssl3, ...): dpkg-shlibdeps.
# Programs shoald runs: QEMU (qemu-system-x86 brings qboot and SeaBIOS, the
# firmware of the reference and foreign images), qemu-img (disk images),
# libvirt's QEMU driver module (the embedded driver loads it), ip, nft,
# dnsmasq (DHCP); useradd/groupadd for the
# maintainer scripts. virsh only speeds up a first start (node.c
# caps_preprobe).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "qemu-system-x86, qemu-utils, libvirt-daemon-driver-qemu, iproute2, nftables, dnsmasq-base, passwd")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libvirt-clients")
set(_pkgdir ${PROJECT_SOURCE_DIR}/daemon/packaging)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${_pkgdir}/postinst ${_pkgdir}/prerm ${_pkgdir}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
# Gzipped man pages, copyright, changelog, lintian overrides (DebStage.cmake)
set(CPACK_SHOAL_DEB_SRC ${_pkgdir}) # CPACK_*: cpack's scripts see it
set(CPACK_PRE_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/DebStage.cmake)
include(CPack)
