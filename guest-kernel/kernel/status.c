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

/* "shoal-status <what> boot_us=N[ claim_us=N]" */
static void status_boot(const char *what, uint64_t boot_us, uint64_t claim_us)
{
    char b[80];
    struct sbuf sb;
    sb_init(&sb, b, sizeof b);
    sb_str(&sb, "shoal-status ");
    sb_str(&sb, what);
    sb_str(&sb, " boot_us=");
    sb_num(&sb, boot_us, 10);
    if (claim_us != STATUS_NO_CLAIM) {
        sb_str(&sb, " claim_us=");
        sb_num(&sb, claim_us, 10);
    }
    status_line(&sb);
}

void status_ready(uint64_t boot_us, uint64_t claim_us)
{
    status_boot("ready", boot_us, claim_us);
}

void status_pool_wait(uint64_t boot_us)
{
    status_boot("pool-wait", boot_us, STATUS_NO_CLAIM);
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
