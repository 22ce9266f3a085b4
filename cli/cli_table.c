/* cli_table.c: table rendering with measured column widths. */
#include "cli_table.h"

#include <stdlib.h>
#include <string.h>

struct cli_table {
    size_t ncols;
    char *headers[CLI_TABLE_MAX_COLS];
    size_t max[CLI_TABLE_MAX_COLS];
    bool right[CLI_TABLE_MAX_COLS];
    char **cells; /* rows * ncols */
    size_t rows, cap;
};

size_t cli_utf8_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* Byte offset just past the first n code points of s. */
static size_t utf8_prefix(const char *s, size_t n)
{
    size_t i = 0, cps = 0;
    while (s[i]) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (cps == n)
                break;
            cps++;
        }
        i++;
    }
    return i;
}

cli_table *cli_table_new(size_t ncols, const char *const *headers)
{
    if (ncols == 0 || ncols > CLI_TABLE_MAX_COLS)
        return NULL;
    cli_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        t->headers[i] = strdup(headers[i]);
        if (!t->headers[i]) {
            cli_table_free(t);
            return NULL;
        }
    }
    return t;
}

void cli_table_set_max(cli_table *t, size_t col, size_t max)
{
    if (col < t->ncols)
        t->max[col] = max && max < 4 ? 4 : max;
}

void cli_table_set_right(cli_table *t, size_t col, bool right)
{
    if (col < t->ncols)
        t->right[col] = right;
}

/* Copy of s limited to max code points ("..." marks a cut). Control
 * characters (from server data) are replaced by '?' so they cannot move the
 * cursor or recolour the terminal. */
static char *cell_dup(const char *s, size_t max)
{
    if (!s || !*s)
        s = "-";
    size_t keep = strlen(s);
    bool cut = max && cli_utf8_width(s) > max;
    if (cut)
        keep = utf8_prefix(s, max - 3);
    char *c = malloc(keep + 4);
    if (!c)
        return NULL;
    for (size_t i = 0; i < keep; i++) {
        unsigned char ch = (unsigned char)s[i];
        c[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    memcpy(c + keep, cut ? "..." : "", cut ? 4 : 1);
    return c;
}

int cli_table_add(cli_table *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **p = realloc(t->cells, cap * t->ncols * sizeof *p);
        if (!p)
            return -1;
        t->cells = p;
        t->cap = cap;
    }
    char **row = t->cells + t->rows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = cell_dup(cells[i], t->max[i]);
        if (!row[i]) {
            while (i--)
                free(row[i]);
            return -1;
        }
    }
    t->rows++;
    return 0;
}

size_t cli_table_rows(const cli_table *t)
{
    return t->rows;
}

static void print_row(const cli_table *t, char *const *cells, const size_t *width, FILE *out)
{
    for (size_t i = 0; i < t->ncols; i++) {
        size_t w = cli_utf8_width(cells[i]);
        size_t pad = width[i] > w ? width[i] - w : 0;
        bool last = i + 1 == t->ncols;
        if (i)
            fputs("   ", out);
        if (t->right[i])
            fprintf(out, "%*s", (int)pad, "");
        fputs(cells[i], out);
        if (!t->right[i] && !last)
            fprintf(out, "%*s", (int)pad, "");
    }
    fputc('\n', out);
}

void cli_table_print(const cli_table *t, FILE *out)
{
    size_t width[CLI_TABLE_MAX_COLS] = { 0 };
    for (size_t i = 0; i < t->ncols; i++)
        width[i] = cli_utf8_width(t->headers[i]);
    for (size_t r = 0; r < t->rows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            size_t w = cli_utf8_width(t->cells[r * t->ncols + i]);
            if (w > width[i])
                width[i] = w;
        }
    print_row(t, t->headers, width, out);
    for (size_t r = 0; r < t->rows; r++)
        print_row(t, t->cells + r * t->ncols, width, out);
}

void cli_table_free(cli_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncols; i++)
        free(t->headers[i]);
    for (size_t k = 0; k < t->rows * t->ncols; k++)
        free(t->cells[k]);
    free(t->cells);
    free(t);
}

void cli_bar(double used, double total, int width, char *out, size_t len)
{
    char bar[64];
    if (width < 1)
        width = 1;
    if (width > 60)
        width = 60;
    double frac = total > 0 ? used / total : 0;
    if (frac < 0)
        frac = 0;
    int fill = (int)(frac * width + 0.5);
    if (fill > width)
        fill = width;
    if (used > 0 && fill == 0)
        fill = 1; /* something is there: show it */
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    if (total > 0)
        snprintf(out, len, "[%s] %3d%%", bar, (int)(frac * 100));
    else
        snprintf(out, len, "[%s]   -", bar);
}
