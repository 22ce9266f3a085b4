/*
 * status.c - status channel records (see status.h).
 */
#include "status.h"

#include "sbuf.h"
#include "../arch/x86_64/serial.h"

static void status_line(struct sbuf *sb)
{
    sb_str(sb, "\n");
    serial_write(SERIAL_COM2, sb->buf, sb->len, 0);
}

void status_ready(uint64_t boot_us)
{
    char b[64];
    struct sbuf sb;
    sb_init(&sb, b, sizeof b);
    sb_str(&sb, "shoal-status ready boot_us=");
    sb_num(&sb, boot_us, 10);
    status_line(&sb);
}

void status_exit(int code)
{
    char b[64];
    struct sbuf sb;
    sb_init(&sb, b, sizeof b);
    sb_str(&sb, "shoal-status exit code=");
    sb_num(&sb, (unsigned)code & 255, 10);
    status_line(&sb);
}

void status_crash(uint64_t vector, uint64_t error, uint64_t rip, uint64_t cr2)
{
    char b[128];
    struct sbuf sb;
    sb_init(&sb, b, sizeof b);
    sb_str(&sb, "shoal-status crash vector=");
    sb_num(&sb, vector, 10);
    sb_str(&sb, " error=");
    sb_num(&sb, error, 16);
    sb_str(&sb, " rip=");
    sb_num(&sb, rip, 16);
    sb_str(&sb, " cr2=");
    sb_num(&sb, cr2, 16);
    status_line(&sb);
}
