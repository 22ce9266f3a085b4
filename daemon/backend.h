/* backend.h - shoald's REST adapter: the api_backend (api.h) over the
 * fleet core (core/fleet.h). The context passed to api_server_start() is
 * the fleet. */
#ifndef SHOAL_BACKEND_H
#define SHOAL_BACKEND_H

#include "api.h"

const api_backend *backend_get(void);

/* The token store (tokens.h) the backend authenticates with and keeps
 * /v1/tokens in; set once before api_server_start. Without one only
 * api_config.tokens get in. */
struct tok_store;
void backend_set_tokens(struct tok_store *ts);

/* Writes metrics of the process itself (its thread stacks: shoald.c) after
 * the fleet's in /metrics; set once before api_server_start, NULL: none. */
void backend_set_process_metrics(void (*write)(api_sink *out));

/* API wire name of a core rule kind (fleet_rule_kind), for the test that
 * checks the API's and the core's names agree. NULL when out of range. */
const char *backend_rule_name(int fleet_kind);

#endif
