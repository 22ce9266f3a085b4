/* images.c - the fleet's image operations: pushes (with events), tags,
 * profile changes, deletes under the rule that instances protect an
 * image's last name, what an instance's image says of its status channel,
 * and the store's errors in the core's terms. */
#include "fleet_int.h"
#include "pool.h"

#include <stdio.h>
#include <string.h>

#include "killpoint.h"
#include "boot.h"
#include "log.h"

fleet_code fleet_img_err(fleet_err *e, const img_err *ie, const char *field)
{
    fleet_code c;
    switch (ie->code) {
    case IMG_E_NOT_FOUND: c = FLEET_E_NOT_FOUND; break;
    case IMG_E_INVALID: c = FLEET_E_BAD_IMAGE; break;
    case IMG_E_AMBIGUOUS: c = FLEET_E_INVALID; break;
    case IMG_E_CONFLICT:
    case IMG_E_IN_USE: c = FLEET_E_CONFLICT; break;
    case IMG_E_TOO_LARGE: c = FLEET_E_TOO_LARGE; break;
    case IMG_E_BUSY: c = FLEET_E_UNAVAILABLE; break;
    default: c = FLEET_E_INTERNAL; break;
    }
    return fleet_err_set(e, c, field, "%s", ie->msg);
}

int fleet_image_push_begin(fleet *f, uint64_t content_length, img_upload **up, fleet_err *e)
{
    img_err ie;
    if (img_upload_begin(f->img, content_length, up, &ie) != 0)
        return fleet_img_err(e, &ie, NULL);
    return FLEET_OK;
}

int fleet_image_push_write(fleet *f, img_upload *up, const void *data, size_t len, fleet_err *e)
{
    img_err ie;
    (void)f;
    if (img_upload_write(up, data, len, &ie) != 0)
        return fleet_img_err(e, &ie, NULL);
    if (img_upload_size(up) >= FLEET_KP_UPLOAD_PARTIAL)
        kp_hit("upload.partial"); /* test only (killpoint.h) */
    return FLEET_OK;
}

int fleet_image_push_commit(fleet *f, img_upload *up, const char *expect_digest, const char *name,
                            const char *tag, const img_label *labels, size_t n_labels,
                            img_info *out, fleet_err *e)
{
    img_err ie;
    char ref[IMG_NAME_MAX + IMG_TAG_MAX + 2];

    /* With an expected digest, a mismatch fails the commit before anything
     * becomes visible; name, tag and labels land in one transaction. */
    if (expect_digest && img_upload_expect(up, expect_digest, &ie) != 0) {
        img_upload_abort(up);
        return fleet_img_err(e, &ie, "digest");
    }
    if (img_upload_commit(up, name, tag, labels, n_labels, out, &ie) != 0)
        return fleet_img_err(e, &ie,
                             ie.code == IMG_E_NOT_FOUND || strstr(ie.msg, "initrd") ? "initrd"
                             : expect_digest && ie.code == IMG_E_INVALID            ? "digest"
                                                                                    : NULL);
    kp_hit("upload.row");
    snprintf(ref, sizeof ref, "%s:%s", name, tag);
    fleet_emit(f, "image.pushed", NULL, NULL, NULL, NULL, ref, out->digest, NULL);
    log_info("image %s pushed (%s, %llu bytes)", ref, out->digest, (unsigned long long)out->size);
    return FLEET_OK;
}

void fleet_image_push_abort(fleet *f, img_upload *up)
{
    (void)f;
    img_upload_abort(up);
}

int fleet_image_push_initrd(fleet *f, img_upload *up, const char *digest, fleet_err *e)
{
    img_err ie;
    (void)f;
    if (img_upload_initrd(up, digest, &ie) != 0)
        return fleet_err_set(e, FLEET_E_INVALID, "initrd", "%s", ie.msg);
    return FLEET_OK;
}

int fleet_initrd_push_begin(fleet *f, uint64_t content_length, img_upload **up, fleet_err *e)
{
    img_err ie;
    if (img_initrd_begin(f->img, content_length, up, &ie) != 0)
        return fleet_img_err(e, &ie, NULL);
    return FLEET_OK;
}

int fleet_initrd_push_commit(fleet *f, img_upload *up, const char *expect_digest, img_info *out,
                             fleet_err *e)
{
    img_err ie;
    if (expect_digest && img_upload_expect(up, expect_digest, &ie) != 0) {
        img_upload_abort(up);
        return fleet_img_err(e, &ie, "digest");
    }
    if (img_initrd_commit(up, out, &ie) != 0)
        return fleet_err_set(e,
                             ie.code == IMG_E_INVALID     ? FLEET_E_INVALID
                             : ie.code == IMG_E_TOO_LARGE ? FLEET_E_TOO_LARGE
                             : ie.code == IMG_E_CONFLICT  ? FLEET_E_CONFLICT
                                                          : FLEET_E_INTERNAL,
                             ie.code == IMG_E_INVALID && strstr(ie.msg, "digest") ? "digest" : NULL,
                             "%s", ie.msg);
    fleet_emit(f, "initrd.pushed", NULL, NULL, NULL, NULL, NULL, out->digest, NULL);
    log_info("initrd %s pushed (%llu bytes)", out->digest, (unsigned long long)out->size);
    return FLEET_OK;
}

int fleet_image_rows(fleet *f, img_info **rows, size_t *n, fleet_err *e)
{
    img_filter flt;
    img_err ie;
    memset(&flt, 0, sizeof flt);
    flt.include_untagged = 1;
    if (img_list(f->img, &flt, rows, n, &ie) != 0)
        return fleet_img_err(e, &ie, NULL);
    return FLEET_OK;
}

int fleet_image_resolve(fleet *f, const char *ref, char digest[IMG_DIGEST_LEN + 1], fleet_err *e)
{
    img_err ie;
    if (img_resolve(f->img, ref, digest, &ie) != 0)
        return fleet_img_err(e, &ie, "ref");
    return FLEET_OK;
}

int fleet_image_tag(fleet *f, const char *ref, const char *new_ref, char digest[IMG_DIGEST_LEN + 1],
                    fleet_err *e)
{
    img_err ie;
    if (img_resolve(f->img, ref, digest, &ie) != 0 || img_tag(f->img, digest, new_ref, &ie) != 0)
        return fleet_img_err(e, &ie, "ref");
    fleet_emit(f, "image.tagged", NULL, NULL, NULL, NULL, new_ref, digest, NULL);
    return FLEET_OK;
}

int fleet_image_set_profile(fleet *f, const char *ref, const img_profile_change *change,
                            char digest[IMG_DIGEST_LEN + 1], fleet_err *e)
{
    img_err ie;
    img_info info;
    const char *field = NULL;
    img_profile_change ch = *change;

    /* the probes' syntax is probe.h's, judged on the profile as it would be */
    ch.check = fleet_profile_probe_check;
    ch.check_ctx = f;
    if (img_profile_set(f->img, ref, &ch, &info, &field, &ie) != 0) {
        if (ie.code == IMG_E_INVALID)
            return fleet_err_set(e, FLEET_E_INVALID, field, "image '%s': %s", ref, ie.msg);
        return fleet_img_err(e, &ie, "ref");
    }
    snprintf(digest, IMG_DIGEST_LEN + 1, "%s", info.digest);
    /* its pool's size is read again; guests booted with a profile that
     * changed how it boots are replaced (pool.h) */
    fleet_pool_image_changed(f, ch.firmware || ch.cmdline || ch.exit ? info.digest : NULL);
    fleet_emit(f, "image.updated", NULL, NULL, NULL, NULL, ref, info.digest, NULL);
    log_info("image %s (%s): profile firmware %s, cmdline %s, exit %s, ready %s, health %s", ref,
             info.digest, img_firmware_name(info.profile.firmware),
             info.profile.cmdline == IMG_CMDLINE_TEMPLATE ? info.profile.template
                                                          : img_cmdline_name(info.profile.cmdline),
             img_exit_name(info.profile.exit),
             info.profile.ready[0] ? info.profile.ready : "(the kind's default)",
             info.profile.health[0] ? info.profile.health : "none");
    img_info_clear(&info);
    return FLEET_OK;
}

int fleet_has_status_channel(fleet *f, const state_instance *in)
{
    img_info info;
    img_err ierr;
    fleet_boot boot;
    char err[256];
    int yes = 1;

    memset(&info, 0, sizeof info);
    if (img_get(f->img, in->image_digest, &info, &ierr) == 0 &&
        fleet_boot_plan(&info, &boot, err, sizeof err) == 0)
        yes = boot.status_channel;
    img_info_clear(&info);
    return yes;
}

int fleet_image_is_digest(const char *ref, const char *digest)
{
    size_t n = strlen(ref);
    if (!strncmp(ref, "sha256:", 7))
        return 1;
    /* The store resolves names before prefixes: a ref that resolved to a
     * digest it is a prefix of was taken as a digest. */
    return n >= IMG_DIGEST_PREFIX_MIN && strspn(ref, "0123456789abcdef") == n &&
           !strncmp(digest + 7, ref, n);
}

int fleet_image_delete(fleet *f, const char *ref, bool force, fleet_err *e)
{
    img_err ie;
    img_info info;
    img_info *rows = NULL;
    size_t nrows = 0, names = 0;
    char digest[IMG_DIGEST_LEN + 1];
    int rc = FLEET_OK;

    memset(&info, 0, sizeof info);
    if (img_resolve(f->img, ref, digest, &ie) != 0 || img_get(f->img, digest, &info, &ie) != 0)
        return fleet_img_err(e, &ie, "ref");
    if (fleet_image_is_digest(ref, digest)) {
        if (img_delete(f->img, digest, force, &ie) != 0)
            rc = fleet_img_err(e, &ie, "ref");
        goto done;
    }
    /* A name: remove just that tag; the image goes with its last name,
     * which instances in use protect unless forced. */
    if ((rc = fleet_image_rows(f, &rows, &nrows, e)) != FLEET_OK)
        goto done;
    for (size_t i = 0; i < nrows; i++)
        names += !strcmp(rows[i].digest, digest) && rows[i].name[0];
    if (names <= 1 && info.refs > 0 && !force) {
        rc = fleet_err_set(e, FLEET_E_CONFLICT, "ref",
                           "image '%s' is used by %u instance%s; "
                           "delete them first or use force",
                           ref, info.refs, info.refs == 1 ? "" : "s");
        goto done;
    }
    if (img_untag(f->img, ref, &ie) != 0) {
        rc = fleet_img_err(e, &ie, "ref");
        goto done;
    }
    img_gc(f->img, NULL, NULL);
done:
    if (rc == FLEET_OK) /* its warm pool goes with its last name (pool.h) */
        fleet_pool_image_changed(f, names <= 1 ? digest : NULL);
    if (rc == FLEET_OK) {
        fleet_remote_gc_bounded(f); /* its volumes on remote hosts */
        fleet_emit(f, "image.deleted", NULL, NULL, NULL, NULL, ref, digest, NULL);
    }
    img_list_free(rows, nrows);
    img_info_clear(&info);
    return rc;
}
