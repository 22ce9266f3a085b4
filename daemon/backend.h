/* backend.h - shoald's REST adapter: the api_backend (api.h) over the
 * fleet core (core/fleet.h). The context passed to api_server_start() is
 * the fleet. */
#ifndef SHOAL_BACKEND_H
#define SHOAL_BACKEND_H

#include "api.h"

const api_backend *backend_get(void);

/* API wire name of a core rule kind (fleet_rule_kind), for the test that
 * checks the API's and the core's names agree. NULL when out of range. */
const char *backend_rule_name(int fleet_kind);

#endif
