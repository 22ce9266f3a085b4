/*
 * test_fleet_adapter.c - the REST adapter (daemon/backend.c) and the fleet
 * core name rule kinds alike: the core stores placements with
 * fleet_rule_kind_name(), the API reads and writes the wire names through
 * the adapter's table. A kind whose two names differ would be written by
 * the API in one spelling and not be understood back from the database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "fleet.h"

static void rule_names_agree(void **state)
{
    (void)state;
    for (int k = 0; k < FLEET_RULE__COUNT; k++) {
        const char *core = fleet_rule_kind_name((fleet_rule_kind)k);
        const char *wire = backend_rule_name(k);
        assert_non_null(core);
        assert_non_null(wire);
        if (strcmp(core, wire) != 0)
            fail_msg("rule kind %d: core stores '%s', API says '%s'", k, core, wire);
    }
    /* Distinct names: two kinds spelled alike could not be told apart. */
    for (int a = 0; a < FLEET_RULE__COUNT; a++)
        for (int b = a + 1; b < FLEET_RULE__COUNT; b++)
            assert_string_not_equal(fleet_rule_kind_name((fleet_rule_kind)a),
                                    fleet_rule_kind_name((fleet_rule_kind)b));
    /* Out of range: both say so. */
    assert_null(fleet_rule_kind_name(FLEET_RULE__COUNT));
    assert_null(backend_rule_name(FLEET_RULE__COUNT));
    assert_null(backend_rule_name(-1));
}

/* A placement stored with the core's names parses back to the same kinds. */
static void placement_round_trip(void **state)
{
    (void)state;
    for (int k = 0; k < FLEET_RULE__COUNT; k++) {
        char json[256];
        fleet_placement p;
        snprintf(json, sizeof json,
                 "{\"policy\":\"spread\",\"rules\":[{\"kind\":\"%s\",\"key\":\"app\","
                 "\"value\":\"web\",\"soft\":true,\"weight\":3}]}",
                 backend_rule_name(k));
        assert_int_equal(fleet_placement_parse(json, &p), 0);
        assert_true(p.spread);
        assert_int_equal(p.n_rules, 1);
        assert_int_equal(p.rules[0].kind, k);
        assert_string_equal(p.rules[0].key, "app");
        assert_string_equal(p.rules[0].value, "web");
        assert_true(p.rules[0].soft);
        assert_int_equal(p.rules[0].weight, 3);
        fleet_placement_clear(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rule_names_agree),
        cmocka_unit_test(placement_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
