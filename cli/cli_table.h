/* cli_table.h: aligned text tables and usage bars.
 *
 * A table owns copies of every cell. Column widths are measured over the
 * header and all cells in UTF-8 code points; a column with a maximum width
 * truncates longer cells to max-3 code points plus "...". Columns are
 * separated by three spaces, cells are left-aligned (or right-aligned when
 * the column is marked so), and the last column carries no trailing padding.
 * Control characters in cells print as '?'.
 */
#ifndef SHOAL_CLI_TABLE_H
#define SHOAL_CLI_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_TABLE_MAX_COLS 16

typedef struct cli_table cli_table;

/* New table with ncols (<= CLI_TABLE_MAX_COLS) headers. NULL on ENOMEM. */
cli_table *cli_table_new(size_t ncols, const char *const *headers);
/* Truncate cells of column col to max code points (0: no limit, >= 4). */
void cli_table_set_max(cli_table *t, size_t col, size_t max);
void cli_table_set_right(cli_table *t, size_t col, bool right);
/* Append a row of ncols cells (NULL cells print as "-"). 0, or -1 on ENOMEM. */
int cli_table_add(cli_table *t, const char *const *cells);
size_t cli_table_rows(const cli_table *t);
/* Print the header and rows. */
void cli_table_print(const cli_table *t, FILE *out);
void cli_table_free(cli_table *t);

/* Number of UTF-8 code points in s. */
size_t cli_utf8_width(const char *s);

/* "[#####.....]  48%": a bar of width cells (rounded to nearest, at least one
 * '#' when used > 0), then the percentage rounded down; total 0 gives an
 * empty bar and "  -". */
void cli_bar(double used, double total, int width, char *out, size_t len);

#endif
