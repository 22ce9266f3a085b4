/* backend.h - shoald's implementation of the REST API backend (api.h).
 * The backend context passed to api_server_start() is the fleet. */
#ifndef SHOAL_BACKEND_H
#define SHOAL_BACKEND_H

#include "api.h"

const api_backend *backend_get(void);

#endif
