/*
 * uk_mode.c - what makes a reference-kernel image behave like a unikernel
 * built with Unikraft (kern.h): its command line is read the Unikraft way
 * (NAME netdev.ip=CIDR:GW ... -- ARGS, the "unikraft" preset of
 * docs/node.md) and PCI set-up is left to the firmware (a BAR left
 * unassigned is an error, as for Unikraft's virtio drivers). Linked into
 * foreign_uk_httpd with apps/httpd.c; foreign/CMakeLists.txt then removes
 * the shoal note and symbols and adds Unikraft's section names, so the
 * image store takes it for kind unikraft (SeaBIOS, the unikraft preset).
 */
const char *const shoal_cmdline_dialect = "unikraft";
const int shoal_pci_firmware_only = 1;
