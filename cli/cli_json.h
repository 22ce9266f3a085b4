/* cli_json.h: small accessors over jansson for rendering API objects.
 * Accessors never fail: a missing or mistyped field reads as NULL / 0. */
#ifndef SHOAL_CLI_JSON_H
#define SHOAL_CLI_JSON_H

#include <jansson.h>
#include <stdio.h>

/* String field or NULL. */
const char *cli_jstr(const json_t *obj, const char *key);
/* Number field (integer or real) or dflt. */
double cli_jnum(const json_t *obj, const char *key, double dflt);
/* "k1=v1,k2=v2" with keys sorted; "" for none. Writes at most len bytes. */
void cli_jlabels(const json_t *obj, char *out, size_t len);
/* Pretty-print v (2-space indent, keys in server order) and a newline. */
int cli_jprint(FILE *out, const json_t *v);

#endif
