/* instance.c - what the operator does to instances: create (names, ports,
 * placement, addresses, rows: all or nothing), stop, start, restart,
 * delete, and lookups. Runs themselves happen on workers (run.c). */
#include "fleet_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <jansson.h>

#include "boot.h"
#include "disk.h"
#include "guestcmd.h"
#include "killpoint.h"
#include "log.h"
#include "netbr.h"
#include "pool.h"
#include "portfwd.h"
#include "snapshot.h"

/* ---- lookups ------------------------------------------------------------ */

int fleet_lookup(fleet *f, const char *key, state_instance *in, fleet_err *e)
{
    char err[256];
    int rc = state_inst_find(f->db, key, in, err, sizeof err);
    if (rc == STATE_ENOTFOUND)
        return fleet_err_set(e, FLEET_E_NOT_FOUND, "id", "instance '%s' not found", key);
    if (rc == STATE_ECONFLICT)
        return fleet_err_set(e, FLEET_E_CONFLICT, "id", "%s", err);
    if (rc != 0)
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "%s", err);
    return FLEET_OK;
}

int fleet_instance_find(fleet *f, const char *key, state_instance *out, fleet_err *e)
{
    return fleet_lookup(f, key, out, e);
}

int fleet_instance_page(fleet *f, const char *after, int state, const char *host,
                        state_inst_match match, void *ctx, size_t limit, state_instance **rows,
                        size_t *n, int *more, fleet_err *e)
{
    char err[256];
    int rc = state_inst_page(f->db, after, state, host, match, ctx, limit, rows, n, more, err,
                             sizeof err);
    if (rc == STATE_ENOTFOUND)
        return fleet_err_set(e, FLEET_E_INVALID, "after", "%s", err);
    if (rc != 0)
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "%s", err);
    return FLEET_OK;
}

int fleet_instance_runs(fleet *f, const char *id, state_run *out, size_t max, size_t *n)
{
    return state_run_list(f->db, id, out, max, n);
}

/* ---- create ------------------------------------------------------------- */

static void random_id(char out[STATE_ID_LEN + 1])
{
    unsigned char raw[STATE_ID_LEN / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        /* getrandom on Linux does not fail for small sizes once seeded. */
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (unsigned char)(rand() & 0xff);
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* Default instance name from the image name: invalid characters become '-'.
 * It always holds a letter outside a-f or a '-', so it never looks like an
 * id: "<base>-<6 hex>". */
static void default_name(const char *image_ref, const char *id, char *out, size_t len)
{
    char base[40];
    size_t j = 0;
    for (const char *p = image_ref; *p && *p != ':' && j < 24; p++) {
        char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')
            base[j++] = c;
        else if (c >= 'A' && c <= 'Z')
            base[j++] = (char)(c - 'A' + 'a');
        else
            base[j++] = '-';
    }
    base[j] = 0;
    if (!j || base[0] == '-' || base[0] == '.' || base[0] == '_')
        snprintf(base, sizeof base, "i");
    snprintf(out, len, "%s-%.6s", base, id);
}

static int name_taken(fleet *f, const char *name)
{
    state_instance in;
    char err[256];
    int taken = 0;
    if (state_inst_find(f->db, name, &in, err, sizeof err) == 0) {
        taken = !strcmp(in.name, name) || !strcmp(in.id, name);
        state_inst_free(&in);
    }
    return taken;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

char *fleet_kv_json(const fleet_kv *kv, size_t n)
{
    json_t *o = json_object();
    char *s;
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i].key, json_string(kv[i].value));
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

static char *args_json(const char *const *args, size_t n)
{
    json_t *a = json_array();
    char *s;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(args[i]));
    s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

/* The guest gets args and env on its command line, in its image's preset:
 * refuse what cannot be carried now rather than fail at start. Room is
 * kept for the longest address, gateway and MAC. */
static int check_cmdline(const fleet_instance_spec *spec, const fleet_boot *boot,
                         const char *image_ref, fleet_err *e)
{
    gcmd c;
    char cerr[256], argv0[IMG_NAME_MAX + 1];
    gcmd_kv *kv = calloc(spec->n_env + 1, sizeof *kv);
    gcmd_run r;
    int rc;

    if (boot->disk && (spec->n_args || spec->n_env)) {
        free(kv);
        return fleet_err_set(e, FLEET_E_INVALID, spec->n_args ? "args" : "env",
                             "image '%s' is a disk image: it boots from its disk and takes no "
                             "command line, so %s cannot reach it",
                             spec->image, spec->n_args ? "args" : "env");
    }
    if (!kv)
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
    for (size_t i = 0; i < spec->n_env; i++) {
        kv[i].key = spec->env[i].key;
        kv[i].value = spec->env[i].value;
    }
    memset(&r, 0, sizeof r);
    r.ip = "255.255.255.255";
    r.prefix = 32;
    r.gw = "255.255.255.255";
    r.mac = "00:00:00:00:00:00";
    if (boot->argv0) {
        fleet_boot_argv0(image_ref, argv0, sizeof argv0);
        r.argv0 = argv0;
    }
    r.env = kv;
    r.n_env = spec->n_env;
    r.args = spec->args;
    r.n_args = spec->n_args;
    rc = fleet_boot_cmdline(boot, image_ref, &r, &c, cerr, sizeof cerr);
    free(kv);
    if (rc != 0)
        return fleet_err_set(e, FLEET_E_INVALID,
                             !strncmp(cerr, "env ", 4) || !spec->n_args ? "env" : "args",
                             "image '%s' (command line '%s'): %s", spec->image,
                             gcmd_preset_name(boot->preset), cerr);
    return FLEET_OK;
}

/* Ids and names of the batch; published ports free. Under place_mu. */
static int claim_names(fleet *f, const fleet_instance_spec *spec, uint32_t count, bool network,
                       state_instance *made, fleet_err *e)
{
    for (uint32_t i = 0, tries = 0; i < count;) {
        state_instance *in = &made[i];
        int clash = 0;
        do
            random_id(in->id);
        while (name_taken(f, in->id));
        if (spec->name && count == 1)
            snprintf(in->name, sizeof in->name, "%s", spec->name);
        else if (spec->name)
            snprintf(in->name, sizeof in->name, "%s-%u", spec->name, i + 1);
        else
            default_name(spec->image, in->id, in->name, sizeof in->name);
        for (uint32_t k = 0; k < i && !clash; k++)
            clash = !strcmp(made[k].name, in->name);
        if (!clash)
            clash = name_taken(f, in->name) ? 2 : 0;
        /* A derived name holds only 6 hex digits of the id: when it is
         * taken, draw another id rather than refuse a name the caller
         * never chose. */
        if (clash && !spec->name && ++tries < 1000)
            continue;
        if (clash == 1)
            return fleet_err_set(e, FLEET_E_CONFLICT, "name",
                                 "instance name '%s' is "
                                 "given twice",
                                 in->name);
        if (clash)
            return fleet_err_set(e, FLEET_E_CONFLICT, "name",
                                 "instance name '%s' is already "
                                 "taken",
                                 in->name);
        i++;
    }
    for (size_t p = 0; p < spec->n_ports; p++) {
        char perr[256];
        state_proto proto = spec->ports[p].proto;
        if (state_port_in_use(f->db, spec->ports[p].host, proto) ||
            (proto == STATE_PROTO_TCP && spec->ports[p].host == f->cfg.listen_port))
            return fleet_err_set(e, FLEET_E_CONFLICT, "ports",
                                 "host port %d/%s is already "
                                 "published",
                                 spec->ports[p].host, state_proto_name(proto));
        if (pfwd_probe(f->pfwd, proto == STATE_PROTO_UDP ? PFWD_UDP : PFWD_TCP, spec->ports[p].host,
                       perr, sizeof perr) != 0)
            return fleet_err_set(e, FLEET_E_CONFLICT, "ports", "%s", perr);
        if (!network)
            return fleet_err_set(e, FLEET_E_INVALID, "ports",
                                 "published ports need the "
                                 "instance network (network is %s)",
                                 spec->network ? "disabled on this daemon" : "false");
    }
    if (spec->idle_s) { /* scale to zero: a tcp port's connections wake it */
        int tcp = 0;
        for (size_t p = 0; p < spec->n_ports; p++)
            tcp |= spec->ports[p].proto == STATE_PROTO_TCP;
        if (!tcp || spec->idle_s > FLEET_IDLE_S_MAX)
            return fleet_err_set(e, FLEET_E_INVALID, "scale_to_zero",
                                 tcp ? "scale_to_zero idle_s %u is over %d s"
                                     : "scale_to_zero (idle_s %u) needs a published tcp port",
                                 spec->idle_s, FLEET_IDLE_S_MAX);
    }
    return FLEET_OK;
}

/* Where each replica goes: the whole batch or nothing. The decision's host
 * names belong to *sst, which the caller frees after using them. */
static int place(const fleet_instance_spec *spec, const char *image_ref, const img_info *image,
                 uint32_t count, fleet_snapshot *snap, sched_state **sst, sched_decision *dec,
                 fleet_err *e)
{
    sched_request req;
    sched_rule rules[SCHED_RULES_MAX + 1];
    sched_label *labels = NULL;
    sched_place_opts po = { .policy = spec->spread ? SCHED_SPREAD : SCHED_BINPACK };
    int rc;

    if (spec->n_rules > SCHED_RULES_MAX)
        return fleet_err_set(e, FLEET_E_INVALID, "placement.rules", "at most %d rules",
                             SCHED_RULES_MAX);
    if (spec->host && fleet_snapshot_host(snap, spec->host) == snap->nhosts)
        return fleet_err_set(e, FLEET_E_NOT_FOUND, "host", "host '%s' not found", spec->host);
    if ((rc = fleet_snapshot_sched(snap, sst, e)) != FLEET_OK)
        return rc;
    memset(&req, 0, sizeof req);
    memset(rules, 0, sizeof rules);
    req.name = spec->name ? spec->name : image_ref;
    /* Charged what guests of this image really cost (capacity.c). */
    if ((rc = fleet_snapshot_fits(snap, spec->memory_mib, spec->vcpus, e)) != FLEET_OK) {
        fleet_snapshot_note_others(snap, e);
        return rc;
    }
    fleet_charge_new(snap, image->digest, spec->memory_mib, spec->vcpus, &req.mem_mib, &req.vcpus);
    req.count = count;
    fleet_rules_to_sched(spec->rules, spec->n_rules, rules);
    req.n_rules = spec->n_rules;
    if (spec->host) {
        rules[req.n_rules].kind = SCHED_RULE_HOST_AFFINITY;
        rules[req.n_rules].key = FLEET_HOST_LABEL;
        rules[req.n_rules].value = spec->host;
        req.n_rules++;
    }
    req.rules = rules;
    labels = calloc(spec->n_labels + 1, sizeof *labels);
    if (!labels) {
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < spec->n_labels; i++) {
        labels[i].key = spec->labels[i].key;
        labels[i].value = spec->labels[i].value;
    }
    req.labels = labels;
    req.n_labels = spec->n_labels;
    rc = FLEET_OK;
    if (sched_place(*sst, &req, 1, &po, dec) != SCHED_OK)
        rc = fleet_err_set(e, dec->status == SCHED_EINVAL ? FLEET_E_INVALID : FLEET_E_CAPACITY,
                           NULL, "%s", dec->message);
    if (rc == FLEET_E_CAPACITY)
        fleet_snapshot_note_others(snap, e);
out:
    free(labels);
    return rc;
}

/* Addresses: the lowest free ones above the gateway. */
static int assign_addresses(fleet *f, const fleet_snapshot *snap, uint32_t count,
                            state_instance *made, fleet_err *e)
{
    uint32_t bcast = f->cfg.subnet | ~(0xffffffffu << (32 - f->cfg.prefix));
    uint32_t *used = calloc(snap->nrows + 1, sizeof *used), next = f->gateway + 1;
    size_t nused = 0;
    int rc = FLEET_OK;

    if (!used)
        return fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
    for (size_t r = 0; r < snap->nrows; r++) {
        if (snap->rows[r].ipv4)
            used[nused++] = snap->rows[r].ipv4;
    }
    qsort(used, nused, sizeof *used, cmp_u32);
    for (uint32_t i = 0; i < count; i++) {
        size_t k = 0;
        while (k < nused && used[k] < next)
            k++;
        while (k < nused && used[k] == next) {
            next++;
            k++;
        }
        if (next >= bcast) {
            rc = fleet_err_set(e, FLEET_E_CAPACITY, "network",
                               "subnet has no free address "
                               "left for %u more instance%s",
                               count - i, count - i == 1 ? "" : "s");
            break;
        }
        made[i].ipv4 = next++;
    }
    free(used);
    return rc;
}

/* Instances whose run matches a warm pool guest's take one (pool.h): same
 * image, host, memory, vCPUs and network, and neither an initrd nor a
 * command line of their own. The instance takes the guest's id, and so its
 * domain, MAC, tap and files; a name derived from the id follows it.
 * pooled[i] is set for those. Under place_mu, before the rows are written. */
static void claim_pool(fleet *f, const fleet_instance_spec *spec, const fleet_boot *boot,
                       const char *digest, bool network, uint32_t count, state_instance *made,
                       const sched_decision *dec, char *pooled)
{
    if (!fleet_pool_fits(boot, spec->initrd != NULL, spec->cmdline != NULL))
        return;
    for (uint32_t i = 0; i < count; i++) {
        char id[STATE_ID_LEN + 1], name[STATE_NAME_MAX];
        int clash = 0;
        if (!fleet_pool_claim(f, digest, dec->assignments[i].host_id, spec->memory_mib, spec->vcpus,
                              network, id))
            break;
        snprintf(name, sizeof name, "%s", made[i].name);
        if (!spec->name) {
            default_name(spec->image, id, name, sizeof name);
            for (uint32_t k = 0; k < count && !clash; k++)
                clash = k != i && !strcmp(made[k].name, name);
            clash = clash || name_taken(f, name);
        }
        if (clash || name_taken(f, id)) {
            fleet_pool_unclaim(f, id);
            continue;
        }
        snprintf(made[i].id, sizeof made[i].id, "%s", id);
        snprintf(made[i].name, sizeof made[i].name, "%s", name);
        pooled[i] = 1;
    }
}

/* A run's own initrd (spec->initrd): not for a disk image (422, as at an
 * image's push), and stored (404). Each instance made takes a reference. */
static int check_initrd(fleet *f, const fleet_instance_spec *spec, const fleet_boot *boot,
                        fleet_err *e)
{
    img_err ie;
    if (boot->disk)
        return fleet_err_set(e, FLEET_E_BAD_IMAGE, "initrd",
                             "initrd: image '%s' is a disk image: it boots from its disk and "
                             "takes no initrd",
                             spec->image);
    /* taken and given back at once: the syntax and that it is stored */
    if (img_initrd_acquire(f->img, spec->initrd, &ie) != 0)
        return fleet_err_set(e,
                             ie.code == IMG_E_NOT_FOUND ? FLEET_E_NOT_FOUND
                             : ie.code == IMG_E_INVALID ? FLEET_E_INVALID
                                                        : FLEET_E_INTERNAL,
                             "initrd", "%s", ie.msg);
    img_initrd_release(f->img, spec->initrd, &ie);
    return FLEET_OK;
}

int fleet_instance_create(fleet *f, const fleet_instance_spec *spec, state_instance **out,
                          size_t *nout, fleet_err *e)
{
    img_info info;
    img_err ie;
    fleet_boot boot;
    fleet_snapshot snap;
    sched_state *sst = NULL;
    sched_decision dec;
    state_instance *made = NULL, probes;
    size_t nmade = 0;
    char err[512], digest[IMG_DIGEST_LEN + 1], image_ref[256];
    char *args = NULL, *env = NULL, *labels = NULL, *placement = NULL, *pooled = NULL;
    uint32_t count = spec->count ? spec->count : 1;
    bool network = spec->network && f->gateway;
    int rc = FLEET_OK, src, evict = 0;
    int64_t t_request = fleet_now_ms();

    *out = NULL;
    *nout = 0;
    memset(&info, 0, sizeof info);
    memset(&snap, 0, sizeof snap);
    memset(&dec, 0, sizeof dec);
    if (img_resolve(f->img, spec->image, digest, &ie) != 0)
        return ie.code == IMG_E_NOT_FOUND ? fleet_err_set(e, FLEET_E_NOT_FOUND, "image",
                                                          "image '%s' not found", spec->image)
                                          : fleet_img_err(e, &ie, "image");
    if (img_get(f->img, digest, &info, &ie) != 0)
        return fleet_img_err(e, &ie, "image");
    /* An image shoald cannot boot is refused now, not at every start. */
    if (fleet_boot_plan(&info, &boot, err, sizeof err) != 0) {
        rc = fleet_err_set(e, FLEET_E_BAD_IMAGE, "image", "image '%s' %s", spec->image, err);
        goto out;
    }
    if (strchr(spec->image, ':') || fleet_image_is_digest(spec->image, digest))
        snprintf(image_ref, sizeof image_ref, "%s", spec->image);
    else
        snprintf(image_ref, sizeof image_ref, "%s:%s", spec->image, IMG_DEFAULT_TAG);
    if (spec->n_ports > STATE_MAX_PORTS) {
        rc = fleet_err_set(e, FLEET_E_INVALID, "ports", "at most %d published ports",
                           STATE_MAX_PORTS);
        goto out;
    }
    /* a run's own initrd: uploaded (404 otherwise), and only for a kernel */
    if (spec->initrd && (rc = check_initrd(f, spec, &boot, e)) != FLEET_OK)
        goto out;
    /* a per-run command line override replaces the image's (health.c) */
    if ((rc = fleet_boot_override(&boot, spec->cmdline, spec->image, e)) != FLEET_OK)
        goto out;
    if ((rc = check_cmdline(spec, &boot, image_ref, e)) != FLEET_OK)
        goto out;
    /* Probes: decided now, stored in every row (health.c). */
    memset(&probes, 0, sizeof probes);
    if ((rc = fleet_probe_plan(spec, &info.profile, boot.status_channel, network, &probes, e)) !=
        FLEET_OK)
        goto out;
    args = args_json(spec->args, spec->n_args);
    env = fleet_kv_json(spec->env, spec->n_env);
    labels = fleet_kv_json(spec->labels, spec->n_labels);
    placement = fleet_placement_format(spec->spread, spec->rules, spec->n_rules, spec->host);
    made = calloc(count, sizeof *made);
    pooled = calloc(count, 1);
    if (!made || !pooled || !args || !env || !labels || !placement) {
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
        goto out;
    }

    pthread_mutex_lock(&f->place_mu);
    if ((rc = claim_names(f, spec, count, network, made, e)) != FLEET_OK)
        goto unlock;
    /* Warm pool guests hold room like any guest (pool.h)... */
    if (fleet_snapshot_take_pool(f, &snap, err, sizeof err) != 0) {
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "%s", err);
        goto unlock;
    }
    rc = place(spec, image_ref, &info, count, &snap, &sst, &dec, e);
    /* ...but never push out a create: placed without them, it takes the
     * room of those on its hosts that it does not claim. */
    if (rc == FLEET_E_CAPACITY && snap.npool) {
        sched_decision_clear(&dec);
        sched_state_free(sst);
        sst = NULL;
        fleet_snapshot_free(&snap);
        if (fleet_snapshot_take(f, &snap, err, sizeof err) != 0) {
            rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "%s", err);
            goto unlock;
        }
        rc = place(spec, image_ref, &info, count, &snap, &sst, &dec, e);
        evict = rc == FLEET_OK;
    }
    if (rc != FLEET_OK)
        goto unlock;
    claim_pool(f, spec, &boot, digest, network, count, made, &dec, pooled);
    for (uint32_t i = 0; evict && i < count; i++)
        if (fleet_pool_make_room(f, dec.assignments[i].host_id))
            log_info("warm pool guests on %s make room for a create of %s",
                     dec.assignments[i].host_id, image_ref);
    if (network && (rc = assign_addresses(f, &snap, count, made, e)) != FLEET_OK)
        goto unlock;
    for (uint32_t i = 0; i < count; i++) {
        state_instance *in = &made[i];
        snprintf(in->image_ref, sizeof in->image_ref, "%s", image_ref);
        snprintf(in->image_digest, sizeof in->image_digest, "%s", digest);
        snprintf(in->host, sizeof in->host, "%s", dec.assignments[i].host_id);
        in->state = ST_PENDING;
        in->memory_mib = (int)spec->memory_mib;
        in->vcpus = (int)spec->vcpus;
        in->restart = spec->restart;
        in->network = network;
        if (network)
            netbr_mac(in->id, in->mac);
        /* On another machine it takes an address of that host's /24 at
         * its start (hostnet.c): none of this one's meanwhile. */
        if (network && in->ipv4 && fleet_host_is_remote(f, in->host))
            in->ipv4 = 0;
        for (size_t p = 0; p < spec->n_ports; p++)
            in->ports[p] = spec->ports[p];
        in->nports = (int)spec->n_ports;
        in->idle_s = (int)spec->idle_s;
        in->created_ms = fleet_wall_ms();
        in->boot_us = -1;
        in->ready_ms = -1;
        in->exit_code = -1;
        in->want_running = 1;
        in->args_json = strdup(args);
        in->env_json = strdup(env);
        in->labels_json = strdup(labels);
        in->placement_json = strdup(placement);
        memcpy(in->ready, probes.ready, sizeof in->ready);
        memcpy(in->health, probes.health, sizeof in->health);
        in->health_interval_s = probes.health_interval_s;
        in->health_timeout_s = probes.health_timeout_s;
        in->health_retries = probes.health_retries;
        if (spec->initrd)
            snprintf(in->initrd, sizeof in->initrd, "%s", spec->initrd);
        /* the per-run command line override, kept for every start */
        if (spec->cmdline && !(in->cmdline = strdup(spec->cmdline))) {
            rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
            goto unlock;
        }
        if (!in->args_json || !in->env_json || !in->labels_json || !in->placement_json) {
            rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "out of memory");
            goto unlock;
        }
        /* a batch's rows are marked until all are written (issue 16) */
        src = state_inst_insert_batch(f->db, in, count > 1 ? made[0].id : NULL, err, sizeof err);
        if (src != 0) {
            rc = fleet_err_set(e, fleet_state_code(src), NULL, "%s", err);
            goto unlock;
        }
        nmade++;
        kp_hit("create.row");
        if (img_ref_acquire(f->img, digest, &ie) != 0)
            log_warn("instance %s: image reference: %s", in->id, ie.msg);
        /* each instance holds its initrd: neither GC nor its image going removes it */
        if (spec->initrd && img_initrd_acquire(f->img, spec->initrd, &ie) != 0) {
            rc = fleet_err_set(e, ie.code == IMG_E_NOT_FOUND ? FLEET_E_NOT_FOUND : FLEET_E_INTERNAL,
                               "initrd", "%s", ie.msg);
            in->initrd[0] = '\0'; /* not held: not released below */
            goto unlock;
        }
    }
    /* All written: commit the batch as a whole, before any start. */
    if (rc == FLEET_OK && count > 1 &&
        (src = state_batch_commit(f->db, made[0].id, err, sizeof err)) != 0)
        rc = fleet_err_set(e, fleet_state_code(src), NULL, "%s", err);
unlock:
    if (rc != FLEET_OK) {
        /* Nothing half-made stays behind. */
        for (size_t i = 0; i < nmade; i++) {
            state_inst_delete(f->db, made[i].id, NULL, 0);
            img_ref_release(f->img, digest, &ie);
            if (made[i].initrd[0])
                img_initrd_release(f->img, made[i].initrd, &ie);
        }
        nmade = 0;
        for (uint32_t i = 0; pooled && i < count; i++)
            if (pooled[i]) /* back to the pool, untouched */
                fleet_pool_unclaim(f, made[i].id);
    }
    pthread_mutex_unlock(&f->place_mu);
    if (nmade && network)
        fleet_dhcp_sync(f); /* their leases, before any start is queued */

    /* Followed as one batch (batch.progress events) before any start is
     * queued, so that no start can finish uncounted. */
    fleet_batch_begin(f, made, nmade);
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < nmade; i++) {
        fleet_rt *rt = fleet_rt_get(f, made[i].id);
        if (rt)
            rt->request_ms = t_request; /* ready_ms counts from the request */
    }
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < nmade; i++) {
        fleet_emit(f, "instance.created", made[i].id, made[i].name, "pending", made[i].host,
                   image_ref, digest, pooled[i] ? "from the warm pool" : NULL);
        fleet_queue(f, JOB_START, made[i].id, NULL);
    }
    if (nmade) {
        log_info("created %zu instance%s of %s", nmade, nmade == 1 ? "" : "s", image_ref);
        *out = made;
        *nout = nmade;
        made = NULL;
    }
out:
    if (made)
        state_inst_array_free(made, count);
    free(args);
    free(env);
    free(labels);
    free(placement);
    free(pooled);
    sched_decision_clear(&dec);
    sched_state_free(sst);
    fleet_snapshot_free(&snap);
    img_info_clear(&info);
    return rc;
}

/* ---- stop, start, delete ------------------------------------------------ */

static void want_down_fn(state_instance *in, void *ctx)
{
    int *stopping = ctx;
    in->want_running = 0;
    if (*stopping)
        in->state = ST_STOPPING;
    else if (in->state == ST_PENDING || in->state == ST_BACKOFF || in->state == ST_IDLE)
        in->state = ST_STOPPED;
}

static void want_up_fn(state_instance *in, void *ctx)
{
    (void)ctx;
    in->want_running = 1;
    in->state = ST_PENDING;
    in->exit_code = -1;
    in->last_error[0] = 0;
}

/* The identity (fleet_run_id) of the row as stored now: a wake's start
 * job may have given it a pool guest's since `in` was read. */
static void refresh_identity(fleet *f, state_instance *in)
{
    state_instance now;
    char err[STATE_ERR_MAX];
    if (state_inst_find(f->db, in->id, &now, err, sizeof err) != 0)
        return;
    if (!strcmp(now.id, in->id)) {
        memcpy(in->guest, now.guest, sizeof in->guest);
        memcpy(in->mac, now.mac, sizeof in->mac);
    }
    state_inst_free(&now);
}

/* A stop's shutdown or a delete's destroy on a remote host, as a remote
 * I/O call. */
typedef struct {
    char dom[64];
    int timeout_s; /* < 0: destroy */
} dom_call;

static int dom_fn(fleet *f, struct node *node, void *arg, char *err, size_t errlen)
{
    dom_call *dc = arg;
    (void)f;
    if (!node)
        return NODE_OK; /* down now: the reconnect's reconcile ends it */
    if (dc->timeout_s < 0)
        return node_destroy(node, dc->dom, err, errlen);
    return node_shutdown(node, dc->dom, (unsigned)dc->timeout_s * 1000u, NULL, err, errlen);
}

/* node_shutdown of dom within timeout_s, or node_destroy (timeout_s < 0),
 * bounded on a host behind a libvirtd, remote or qemu:///system
 * (fleet_rio_call: a frozen libvirtd would hold the API call until it
 * answers): FLEET_RIO_LATE when it did not answer in
 * time (the call is carried out when it does). */
static int dom_call_bounded(fleet *f, fleet_host *host, struct node *node, const char *dom,
                            int timeout_s, char *err, size_t errlen)
{
    dom_call *dc;
    if (fleet_host_in_process(host)) {
        if (timeout_s < 0)
            return node_destroy(node, dom, err, errlen);
        return node_shutdown(node, dom, (unsigned)timeout_s * 1000u, NULL, err, errlen);
    }
    if (!(dc = calloc(1, sizeof *dc))) {
        snprintf(err, errlen, "out of memory");
        return NODE_E_NOMEM;
    }
    snprintf(dc->dom, sizeof dc->dom, "%s", dom);
    dc->timeout_s = timeout_s;
    return fleet_rio_call(f, host, dom_fn, dc, free,
                          (timeout_s > 0 ? timeout_s * 1000 : 0) + FLEET_HOST_ANSWER_MS, err,
                          errlen);
}

/* Destroy the instance's domain, wherever it is (a missing one is fine):
 * 0, or FLEET_RIO_LATE (its remote host did not answer in time). */
static int destroy_domain(fleet *f, const state_instance *in)
{
    char err[NODE_ERR_MAX], dom[64];
    fleet_host *host;
    struct node *node = fleet_host_node(f, in->host, &host);
    int rc;
    if (!node)
        return 0;
    fleet_domain_name(fleet_run_id(in), dom, sizeof dom);
    rc = dom_call_bounded(f, host, node, dom, -1, err, sizeof err);
    if (rc != NODE_OK && rc != NODE_E_NOTFOUND && rc != FLEET_RIO_LATE)
        log_warn("instance %s: destroy: %s", in->id, err);
    fleet_host_release(f, host);
    return rc == FLEET_RIO_LATE ? rc : 0;
}

static int forget_fn(fleet *f, struct node *node, void *arg, char *err, size_t errlen)
{
    (void)f;
    return node ? node_store_forget(node, arg, err, errlen) : NODE_OK;
}

/* Its domain's files on its remote host (serial files, disk overlay),
 * bounded like the destroy: a host that does not answer in time removes
 * them when it does, or its volume GC does. */
static void forget_remote(fleet *f, const state_instance *in)
{
    char err[NODE_ERR_MAX], *dom;
    fleet_host *host = NULL;
    struct node *node = fleet_host_node(f, in->host, &host);
    int rc;

    if (node && node_remote(node) && (dom = malloc(64))) {
        fleet_domain_name(fleet_run_id(in), dom, 64);
        rc = fleet_rio_call(f, host, forget_fn, dom, free, FLEET_HOST_ANSWER_MS, err, sizeof err);
        if (rc != NODE_OK && rc != FLEET_RIO_LATE)
            log_warn("instance %s: cannot remove its files from host %s: %s", in->id, in->host,
                     err);
    }
    fleet_host_release(f, host);
}

int fleet_stop_id(fleet *f, const char *id, int timeout_s, fleet_err *e)
{
    state_instance in;
    char err[NODE_ERR_MAX], dom[64];
    struct node *node;
    fleet_host *host = NULL;
    fleet_rt *rt;
    int active, stopping, moving, rc;
    char to[STATE_NAME_MAX + 1];

    if ((rc = fleet_lookup(f, id, &in, e)) != FLEET_OK)
        return rc;
    if (timeout_s < 0)
        timeout_s = FLEET_STOP_TIMEOUT_S;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    moving = rt->moving;
    active = rt->active || rt->busy;
    rt->backoff_due_ms = 0;
    if (active)
        rt->stop_requested = 1;
    pthread_mutex_unlock(&f->mu);
    /* A stop not made by a move cancels a move left to finish
     * (fleet_move_finish_left): stopped means stopped. */
    if (!moving && state_inst_move_to(f->db, in.id, to, sizeof to) == 1) {
        state_inst_mark_move(f->db, in.id, "", NULL, 0);
        log_info("instance %s: its move to %s is cancelled by a stop", in.id, to);
    }
    stopping = active;
    fleet_mutate(f, in.id, want_down_fn, &stopping);
    if (!active && in.idle_s > 0)
        pfwd_remove(f->pfwd, in.id); /* idle: no more wake on connect */
    if (active) {
        /* A start job may still be creating the domain: let it finish. */
        fleet_rt_wait(f, in.id, 0, 30000);
        refresh_identity(f, &in);
        fleet_domain_name(fleet_run_id(&in), dom, sizeof dom);
        if ((node = fleet_host_node(f, in.host, &host))) {
            rc = dom_call_bounded(f, host, node, dom, timeout_s, err, sizeof err);
            fleet_host_release(f, host);
            if (rc == FLEET_RIO_LATE) {
                rc = fleet_err_set(e, FLEET_E_UNAVAILABLE, NULL,
                                   "stopping '%s': host %s did not answer within %d s; the stop "
                                   "is recorded and carried out when it answers",
                                   in.name, in.host, timeout_s + FLEET_HOST_ANSWER_MS / 1000);
                state_inst_free(&in);
                return rc;
            }
            if (rc != NODE_OK && rc != NODE_E_NOTFOUND) {
                rc = fleet_err_set(e, FLEET_E_UNAVAILABLE, NULL, "stopping '%s': %s", in.name, err);
                state_inst_free(&in);
                return rc;
            }
        }
        if (!fleet_rt_wait(f, in.id, 1, 15000))
            log_warn("instance %s: still not stopped 15 s after destroy", in.id);
    }
    state_inst_free(&in);
    return FLEET_OK;
}

int fleet_start_id(fleet *f, const char *id, fleet_err *e)
{
    state_instance in;
    fleet_rt *rt;
    int rc;

    if ((rc = fleet_lookup(f, id, &in, e)) != FLEET_OK)
        return rc;
    if (state_inst_deleting(f->db, in.id) == 1) {
        rc = fleet_err_set(e, FLEET_E_CONFLICT, "id", "instance '%s' is being deleted", in.name);
        state_inst_free(&in);
        return rc;
    }
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    if (rt->active || fleet_state_live(in.state)) {
        pthread_mutex_unlock(&f->mu);
        rc = fleet_err_set(e, FLEET_E_CONFLICT, "id", "instance '%s' is already %s", in.name,
                           state_inst_state_name(in.state));
        state_inst_free(&in);
        return rc;
    }
    rt->request_ms = fleet_now_ms();
    rt->backoff_due_ms = 0;
    rt->backoff_level = 0;
    if (in.state == ST_IDLE && !rt->wake_ms) { /* a start wakes it too (idle.c) */
        rt->wake_ms = rt->request_ms;
        fleet_text_copy(rt->wake_reason, sizeof rt->wake_reason, "start request");
    }
    pthread_mutex_unlock(&f->mu);
    fleet_mutate(f, in.id, want_up_fn, NULL);
    fleet_queue(f, JOB_START, in.id, NULL);
    state_inst_free(&in);
    return FLEET_OK;
}

/* Resolve key once so that a name or prefix means the same instance
 * throughout an operation. */
static int resolve(fleet *f, const char *key, char id[STATE_ID_LEN + 1], fleet_err *e)
{
    state_instance in;
    int rc = fleet_lookup(f, key, &in, e);
    if (rc != FLEET_OK)
        return rc;
    snprintf(id, STATE_ID_LEN + 1, "%s", in.id);
    state_inst_free(&in);
    return FLEET_OK;
}

int fleet_instance_stop(fleet *f, const char *key, int timeout_s, char id_out[STATE_ID_LEN + 1],
                        fleet_err *e)
{
    char id[STATE_ID_LEN + 1];
    int rc = resolve(f, key, id, e);
    if (rc == FLEET_OK && id_out)
        snprintf(id_out, STATE_ID_LEN + 1, "%s", id);
    return rc != FLEET_OK ? rc : fleet_stop_id(f, id, timeout_s, e);
}

int fleet_instance_start(fleet *f, const char *key, char id_out[STATE_ID_LEN + 1], fleet_err *e)
{
    char id[STATE_ID_LEN + 1];
    int rc = resolve(f, key, id, e);
    if (rc == FLEET_OK && id_out)
        snprintf(id_out, STATE_ID_LEN + 1, "%s", id);
    return rc != FLEET_OK ? rc : fleet_start_id(f, id, e);
}

int fleet_instance_restart(fleet *f, const char *key, int timeout_s, char id_out[STATE_ID_LEN + 1],
                           fleet_err *e)
{
    char id[STATE_ID_LEN + 1];
    int rc = resolve(f, key, id, e);
    if (rc == FLEET_OK && id_out)
        snprintf(id_out, STATE_ID_LEN + 1, "%s", id);
    if (rc == FLEET_OK)
        rc = fleet_stop_id(f, id, timeout_s, e);
    return rc != FLEET_OK ? rc : fleet_start_id(f, id, e);
}

void fleet_run_files_remove(fleet *f, const char *id)
{
    char path[FLEET_PATH_MAX + 2];
    fleet_console_path(f, id, path, sizeof path - 2);
    unlink(path);
    strcat(path, ".1");
    unlink(path);
    fleet_status_path(f, id, path, sizeof path);
    unlink(path);
    /* libvirt's QEMU log of its domain on the local embedded root, which
     * libvirt never removes (issue 16; names are unique, so a log of an
     * instance that ran elsewhere is simply absent). */
    {
        char uri[STATE_URI_MAX], dom[64];
        if (f->cfg.local_uri[0])
            snprintf(uri, sizeof uri, "%s", f->cfg.local_uri);
        else
            snprintf(uri, sizeof uri, "qemu:///embed?root=%s/libvirt", f->cfg.state_dir);
        fleet_domain_name(id, dom, sizeof dom);
        if (node_domain_log_remove(uri, dom) != 0)
            log_warn("instance %s: cannot remove the QEMU log of '%s': %s", id, dom,
                     strerror(errno));
    }
}

/* Files an instance leaves under the state dir: its run's (a pool
 * guest's when it woke from the pool) and its own. */
static void remove_files(fleet *f, const state_instance *in)
{
    fleet_run_files_remove(f, fleet_run_id(in));
    if (strcmp(fleet_run_id(in), in->id))
        fleet_run_files_remove(f, in->id);
    fleet_disk_remove(f, in->id); /* a disk image's overlay, if any */
}

int fleet_instance_delete(fleet *f, const char *key, bool force, fleet_err *e)
{
    state_instance in;
    char err[256];
    fleet_rt *rt;
    int active, rc, stopping = 0;

    if ((rc = fleet_lookup(f, key, &in, e)) != FLEET_OK)
        return rc;
    pthread_mutex_lock(&f->mu);
    rt = fleet_rt_get(f, in.id);
    active = rt->active || rt->busy || fleet_state_live(in.state);
    if (active && !force) {
        pthread_mutex_unlock(&f->mu);
        rc = fleet_err_set(e, FLEET_E_CONFLICT, "id",
                           "instance '%s' is %s; stop it first "
                           "or delete with force",
                           key, state_inst_state_name(in.state));
        goto out;
    }
    rt->stop_requested = 1;
    rt->backoff_due_ms = 0;
    pthread_mutex_unlock(&f->mu);
    /* Marked before anything else is written or the domain goes: a shoald
     * killed from here on finishes the delete after its restart
     * (reconcile.c), never leaves a row it meant to delete stopped, nor a
     * row whose domain it destroyed. */
    if ((rc = state_inst_mark_deleting(f->db, in.id, err, sizeof err)) != 0) {
        rc = fleet_err_set(e, fleet_state_code(rc), NULL, "%s", err);
        goto out;
    }
    fleet_mutate(f, in.id, want_down_fn, &stopping);
    kp_hit("delete.marked");
    fleet_rt_wait(f, in.id, 0, 30000);
    refresh_identity(f, &in);
    if (destroy_domain(f, &in) == FLEET_RIO_LATE) {
        rc = fleet_err_set(e, FLEET_E_UNAVAILABLE, NULL,
                           "deleting '%s': host %s did not answer within %d s; it is marked "
                           "for deletion, try again once the host answers",
                           key, in.host, FLEET_HOST_ANSWER_MS / 1000);
        goto out;
    }
    kp_hit("delete.destroyed");
    if (!fleet_rt_wait(f, in.id, 1, 15000)) {
        rc = fleet_err_set(e, FLEET_E_UNAVAILABLE, NULL,
                           "instance '%s' did not stop; try "
                           "again",
                           key);
        goto out;
    }
    forget_remote(f, &in); /* its run ended: its files were fetched */
    if (fleet_delete_finish(f, &in, err, sizeof err) != 0)
        rc = fleet_err_set(e, FLEET_E_INTERNAL, NULL, "%s", err);
out:
    state_inst_free(&in);
    return rc;
}

int fleet_delete_finish(fleet *f, const state_instance *in, char *err, size_t errlen)
{
    img_err ie;

    /* Its ports, probes and files go before its row: a shoald killed
     * between the two finishes the delete from the row (reconcile.c) and
     * leaves nothing; one killed after the row leaves nothing either
     * (image references are counted again from the rows at start). */
    pfwd_remove(f->pfwd, in->id);
    fleet_probe_unwatch(f, in->id);
    fleet_pool_drop(f, fleet_run_id(in)); /* claimed for it and never handed over */
    remove_files(f, in);
    if (state_inst_delete(f->db, in->id, err, errlen) != 0)
        return -1;
    kp_hit("delete.row");
    if (in->network)
        fleet_dhcp_sync(f); /* its lease goes */
    if (img_ref_release(f->img, in->image_digest, &ie) != 0)
        log_warn("instance %s: releasing image %s: %s", in->id, in->image_digest, ie.msg);
    if (in->initrd[0] && img_initrd_release(f->img, in->initrd, &ie) != 0)
        log_warn("instance %s: releasing initrd %s: %s", in->id, in->initrd, ie.msg);
    pthread_mutex_lock(&f->mu);
    fleet_rt_drop(f, in->id);
    pthread_mutex_unlock(&f->mu);
    fleet_emit(f, "instance.deleted", in->id, in->name, NULL, in->host, in->image_ref, NULL, NULL);
    log_info("instance %s (%s) deleted", in->id, in->name);
    return 0;
}
