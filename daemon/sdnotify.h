/* sdnotify.h - tell a service manager how shoald is doing (systemd's
 * Type=notify; daemon/shoald.service.in).
 *
 * The protocol (sd_notify(3), a stable interface systemd documents for
 * reimplementation): one datagram of newline-separated KEY=VALUE lines to
 * the AF_UNIX socket named by $NOTIFY_SOCKET, a file system path or, with a
 * leading '@', a name in the abstract namespace. shoald sends READY=1 once
 * the API answers, STATUS=... lines as it goes and STOPPING=1 when it shuts
 * down. Written here rather than linked from libsystemd: about forty lines,
 * and shoald then builds and runs the same with or without systemd.
 *
 * Without $NOTIFY_SOCKET (shoald run by hand, by a test, by another
 * supervisor) every call does nothing. Not thread-safe: the main thread
 * alone calls it. */
#ifndef SHOAL_SDNOTIFY_H
#define SHOAL_SDNOTIFY_H

/* Take $NOTIFY_SOCKET and remove it from the environment, so that no child
 * (dnsmasq, qemu-img, ...) inherits it and speaks for shoald. Call once,
 * before any thread starts (it calls unsetenv). */
void sdn_init(void);

/* Send one message, printf-style ("READY=1\nSTATUS=..."). Returns 1 when
 * sent, 0 when there is no service manager to tell, -1 when sending failed
 * (errno set; the caller logs and carries on: the manager then sees shoald
 * as not ready and its start timeout decides). */
int sdn_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
