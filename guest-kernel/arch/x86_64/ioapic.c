/*
 * ioapic.c - see ioapic.h. Registers from the 82093AA I/O APIC datasheet:
 * an index register (IOREGSEL) and a data window (IOWIN); redirection
 * entry n is registers 0x10 + 2n (low) and 0x11 + 2n (high).
 */
#include "ioapic.h"

#define IOAPIC_BASE  0xFEC00000u
#define IOREGSEL     0x00
#define IOWIN        0x10
#define REG_VER      0x01
#define REG_REDIR(n) (0x10u + 2u * (n))

#define RED_LEVEL  (1u << 15)
#define RED_LOW    (1u << 13)
#define RED_MASKED (1u << 16)

#define MAX_ROUTES 4

static volatile uint32_t *const ioapic = (volatile uint32_t *)(uintptr_t)IOAPIC_BASE;
static struct {
    uint8_t pin, vector;
} routes[MAX_ROUTES];
static unsigned nroutes;

static uint32_t rd(uint32_t reg)
{
    ioapic[IOREGSEL / 4] = reg;
    return ioapic[IOWIN / 4];
}

static void wr(uint32_t reg, uint32_t v)
{
    ioapic[IOREGSEL / 4] = reg;
    ioapic[IOWIN / 4] = v;
}

int ioapic_route(unsigned pin, uint8_t vector, uint8_t apic, int level, int active_low)
{
    uint32_t ver = rd(REG_VER);
    unsigned max_pin = (ver >> 16) & 0xFF; /* highest entry index */
    if (ver == 0xFFFFFFFFu || pin > max_pin || nroutes == MAX_ROUTES)
        return -1;
    wr(REG_REDIR(pin), RED_MASKED);               /* masked while changed */
    wr(REG_REDIR(pin) + 1, (uint32_t)apic << 24); /* physical destination */
    wr(REG_REDIR(pin), vector | (level ? RED_LEVEL : 0) | (active_low ? RED_LOW : 0));
    routes[nroutes].pin = (uint8_t)pin;
    routes[nroutes].vector = vector;
    nroutes++;
    return 0;
}

void ioapic_mask_vector(uint8_t vector)
{
    for (unsigned i = 0; i < nroutes; i++)
        if (routes[i].vector == vector)
            wr(REG_REDIR(routes[i].pin), rd(REG_REDIR(routes[i].pin)) | RED_MASKED);
}
