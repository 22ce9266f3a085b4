/* hosturi.h - which libvirt URIs a client of the API may add as hosts
 * (issue 16).
 *
 * The threat: `POST /v1/hosts` hands a URI to virConnectOpen in a root
 * process. libvirt reads parameters from it that run programs or open
 * files: `qemu+ssh://u@h/system?command=PATH` ran PATH as root,
 * `?socket=PATH` connects to any unix socket, `netcat=`, `keyfile=`,
 * `known_hosts=`, `pkipath=`, `no_tty`... and `qemu+ext` exists only to run
 * a command. Adding a host is an admin-scope action, but a stolen token
 * must still not be root on the machine.
 *
 * The rule: a URI from the API is parsed here, once, by a strict parser
 * whose accepted language is a small subset of what libvirt's parser
 * (libxml2's xmlParseURI) accepts, so both read the same scheme, host and
 * parameters; anything outside that subset is refused. Then:
 *   - its scheme (driver+transport) must be in the operator's allow list;
 *   - every query parameter must be allowed for that scheme by name;
 *   - the path must be /system (no /session: that autostarts a libvirtd
 *     for root; no /embed: one embedded driver per process, the local
 *     host's);
 *   - no fragment, no empty parameter names, no percent-encoding in
 *     parameter names (libvirt decodes them: `so%63ket` is `socket`), no
 *     characters outside [A-Za-z0-9] and a few punctuation marks anywhere.
 *
 * The allow list (`--host-uri-allow`, config key `host-uri-allow`): entries
 * separated by commas or spaces, each `SCHEME` or `SCHEME?P1&P2` naming the
 * query parameters allowed for that scheme. The scheme `qemu` stands for a
 * libvirtd on this machine reached through its default socket
 * (`qemu:///system`, no host part). Default: HURI_DEFAULT_ALLOW, i.e.
 * qemu+tls (certificates on both ends), qemu+ssh (the ssh client runs with
 * root's keys and known_hosts, to the named host only) and the local
 * libvirtd, none with parameters. Not by default: qemu+tcp (no encryption;
 * authentication only if the far libvirtd configured SASL), qemu+unix and
 * qemu+ext, and any parameter. Example for a test's private libvirtd:
 * `host-uri-allow = qemu?socket` (then `qemu:///system?socket=PATH` is
 * accepted, and only that parameter).
 *
 * Errors: HURI_E_SYNTAX (malformed: the API answers 400) or HURI_E_REFUSED
 * (well-formed but not allowed: 400 too, naming the refused part), with a
 * message quoting the part: "uri 'qemu+ssh://h/system?command=x': parameter
 * 'command' is not allowed for qemu+ssh (host-uri-allow)".
 */
#ifndef SHOAL_HOSTURI_H
#define SHOAL_HOSTURI_H

#include <stddef.h>

#define HURI_DEFAULT_ALLOW "qemu+tls,qemu+ssh,qemu"
#define HURI_MAX           1024 /* longest URI or allow list, bytes */

enum huri_status {
    HURI_OK = 0,
    HURI_E_SYNTAX = -1,  /* not a URI of the accepted form */
    HURI_E_REFUSED = -2, /* a scheme or parameter the allow list does not name */
};

/* The parts of a URI, pointing into the caller's copy (parse in place). */
struct huri {
    char scheme[32];      /* "qemu+ssh"; lower case */
    char user[64];        /* "" when none */
    char host[256];       /* "" for a local URI; IPv6 without brackets */
    int port;             /* 0 when none */
    char path[64];        /* "/system" */
    char query[HURI_MAX]; /* raw query without '?', "" when none */
};

/* Parse uri strictly into out. HURI_OK or HURI_E_SYNTAX with err filled. */
int huri_parse(const char *uri, struct huri *out, char *err, size_t errlen);

/* Is allow a well-formed allow list? 0 or -1 with err naming the entry. */
int huri_allow_check(const char *allow, char *err, size_t errlen);

/* Is uri allowed by allow (NULL or "": HURI_DEFAULT_ALLOW)? HURI_OK, or an
 * error with err naming the refused part (and which setting allows it). */
int huri_check(const char *allow, const char *uri, char *err, size_t errlen);

#endif
