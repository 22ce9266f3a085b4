# check_sector.cmake -DIMG=<file>: the disk is 1 MiB and its first sector
# ends with the boot signature 55 aa.
file(SIZE ${IMG} size)
if(NOT size EQUAL 1048576)
  message(FATAL_ERROR "${IMG}: ${size} bytes, expected 1 MiB (a boot sector and zeros)")
endif()
file(READ ${IMG} sig OFFSET 510 LIMIT 2 HEX)
if(NOT sig STREQUAL "55aa")
  message(FATAL_ERROR "${IMG}: no boot signature at offset 510 (found ${sig})")
endif()
