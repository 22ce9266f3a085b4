/*
 * test_openapi.c - the route table (api/route.c) and api/openapi.yaml agree:
 * every routed method+path is documented and every documented one is
 * routed. The YAML's `paths:` section is read line by line: a path is a
 * line "  /...:" (2 spaces), a method a line "    get:" (4 spaces).
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "route.h"

#define MAX_OPS 128

typedef struct op {
    char method[16];
    char path[128];
} op;

static const char *yaml_path;
static op doc[MAX_OPS];
static size_t n_doc;

static void read_yaml(void)
{
    FILE *f = fopen(yaml_path, "r");
    char line[512], cur[128] = "";
    bool in_paths = false;

    assert_non_null(f);
    n_doc = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (line[0] != ' ' && line[0] != '\0' && line[0] != '#') {
            in_paths = strcmp(line, "paths:") == 0;
            continue;
        }
        if (!in_paths)
            continue;
        if (strncmp(line, "  /", 3) == 0 && line[len - 1] == ':') {
            snprintf(cur, sizeof cur, "%.*s", (int)(len - 3), line + 2);
        } else if (strncmp(line, "    ", 4) == 0 && line[4] != ' ' && line[len - 1] == ':') {
            static const char *const methods[] = { "get",   "put",  "post",    "delete",
                                                   "patch", "head", "options", "trace" };
            char m[16];
            snprintf(m, sizeof m, "%.*s", (int)(len - 5), line + 4);
            for (size_t i = 0; i < 8; i++) {
                if (strcmp(m, methods[i]) != 0)
                    continue;
                assert_true(n_doc < MAX_OPS);
                assert_true(cur[0] != '\0');
                for (size_t k = 0; m[k]; k++)
                    m[k] = (char)toupper((unsigned char)m[k]);
                snprintf(doc[n_doc].method, sizeof doc[0].method, "%s", m);
                snprintf(doc[n_doc].path, sizeof doc[0].path, "%s", cur);
                n_doc++;
            }
        }
    }
    fclose(f);
}

static void t_routes_documented(void **state)
{
    size_t n, i, j;
    const api_route *rt = api_route_table(&n);
    int missing = 0;

    (void)state;
    read_yaml();
    assert_true(n_doc > 0);
    for (i = 0; i < n; i++) {
        for (j = 0; j < n_doc; j++) {
            if (strcmp(rt[i].method, doc[j].method) == 0 && strcmp(rt[i].pattern, doc[j].path) == 0)
                break;
        }
        if (j == n_doc) {
            print_error("routed but not in openapi.yaml: %s %s\n", rt[i].method, rt[i].pattern);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
}

static void t_documented_routed(void **state)
{
    size_t n, i, j;
    const api_route *rt = api_route_table(&n);
    int extra = 0;

    (void)state;
    read_yaml();
    for (j = 0; j < n_doc; j++) {
        for (i = 0; i < n; i++) {
            if (strcmp(rt[i].method, doc[j].method) == 0 && strcmp(rt[i].pattern, doc[j].path) == 0)
                break;
        }
        if (i == n) {
            print_error("in openapi.yaml but not routed: %s %s\n", doc[j].method, doc[j].path);
            extra++;
        }
        for (i = 0; i < j; i++) {
            if (strcmp(doc[i].method, doc[j].method) == 0 &&
                strcmp(doc[i].path, doc[j].path) == 0) {
                print_error("documented twice: %s %s\n", doc[j].method, doc[j].path);
                extra++;
            }
        }
    }
    assert_int_equal(extra, 0);
    assert_int_equal(n_doc, n);
}

static void t_match(void **state)
{
    char param[256], allow[64];
    bool known;
    const api_route *r;

    (void)state;
    r = api_route_match("GET", "/v1/images/hello:1.0", param, sizeof param, &known, allow,
                        sizeof allow);
    assert_non_null(r);
    assert_int_equal(r->op, API_OP_IMAGE_GET);
    assert_string_equal(param, "hello:1.0");
    r = api_route_match("POST", "/v1/instances/web-1/stop", param, sizeof param, &known, allow,
                        sizeof allow);
    assert_non_null(r);
    assert_int_equal(r->op, API_OP_INSTANCE_STOP);
    assert_string_equal(param, "web-1");
    /* bulk paths: a POST there is the bulk call, other methods still
	 * reach the instance of that name */
    r = api_route_match("POST", "/v1/instances/stop", param, sizeof param, &known, allow,
                        sizeof allow);
    assert_non_null(r);
    assert_int_equal(r->op, API_OP_BULK_STOP);
    r = api_route_match("GET", "/v1/instances/delete", param, sizeof param, &known, allow,
                        sizeof allow);
    assert_non_null(r);
    assert_int_equal(r->op, API_OP_INSTANCE_GET);
    assert_string_equal(param, "delete");
    r = api_route_match("DELETE", "/v1/instances", param, sizeof param, &known, allow,
                        sizeof allow);
    assert_non_null(r);
    assert_int_equal(r->op, API_OP_BULK_DELETE_QUERY);
    r = api_route_match("PUT", "/v1/hosts/h1", param, sizeof param, &known, allow, sizeof allow);
    assert_null(r);
    assert_true(known);
    assert_string_equal(allow, "GET, DELETE");
    r = api_route_match("GET", "/v1/nope", param, sizeof param, &known, allow, sizeof allow);
    assert_null(r);
    assert_false(known);
    r = api_route_match("GET", "/v1/images/", param, sizeof param, &known, allow, sizeof allow);
    assert_null(r);
    r = api_route_match("GET", "/v1/images/a/b", param, sizeof param, &known, allow, sizeof allow);
    assert_null(r);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_routes_documented),
        cmocka_unit_test(t_documented_routed),
        cmocka_unit_test(t_match),
    };

    yaml_path = argc > 1 ? argv[1] : "api/openapi.yaml";
    return cmocka_run_group_tests(tests, NULL, NULL);
}
