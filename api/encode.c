/*
 * encode.c - results -> JSON exactly as docs/api.md shows them, and the
 * api_sink the backend emits into.
 *
 * Strings from the backend may carry guest-written text; anything that is
 * not valid UTF-8 has its bad bytes replaced by '?' rather than failing the
 * response.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "codec.h"

struct api_sink {
	api_sink_kind kind;
	api_sink_shape shape;
	bool failed;
	size_t count;
	json_t *items;                 /* LIST/ITEMS: array; ONE: NULL */
	json_t *one;                   /* ONE: the object */
	char *next;                    /* LIST cursor or NULL */
	char *text;                    /* TEXT */
	size_t text_len, text_cap;
};

/* ---- value helpers ------------------------------------------------------ */

/* Length of a valid UTF-8 sequence at s (n bytes left) or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t k, len;
	unsigned long cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* JSON string or null for NULL; invalid UTF-8 bytes become '?'. */
static json_t *
jstr(const char *s)
{
	size_t len, i, k;
	char *copy;
	json_t *j;

	if (s == NULL)
		return json_null();
	len = strlen(s);
	for (i = 0; i < len; i += k) {
		k = utf8_seq((const unsigned char *)s + i, len - i);
		if (k == 0)
			break;
	}
	if (i >= len)
		return json_stringn_nocheck(s, len);
	copy = malloc(len + 1);
	if (copy == NULL)
		return NULL;
	memcpy(copy, s, len + 1);
	for (i = 0; i < len; i += k) {
		k = utf8_seq((unsigned char *)copy + i, len - i);
		if (k == 0) {
			copy[i] = '?';
			k = 1;
		}
	}
	j = json_stringn_nocheck(copy, len);
	free(copy);
	return j;
}

void
api_format_time(int64_t t, char buf[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, 32, "1970-01-01T00:00:00Z");
}

static json_t *
jtime(int64_t t)
{
	char buf[32];

	if (t == API_TIME_NONE)
		return json_null();
	api_format_time(t, buf);
	return json_string(buf);
}

/* set obj[key] = v (stealing v); returns -1 if v is NULL or set fails */
static int
put(json_t *obj, const char *key, json_t *v)
{
	if (v == NULL)
		return -1;
	return json_object_set_new(obj, key, v) == 0 ? 0 : -1;
}

static json_t *
jkv(const api_kv *kv, size_t n)
{
	json_t *o = json_object();
	size_t i;

	if (o == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		json_t *v = jstr(kv[i].value != NULL ? kv[i].value : "");
		if (kv[i].key == NULL || put(o, kv[i].key, v) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static json_t *
jstrs(const char *const *s, size_t n)
{
	json_t *a = json_array();
	size_t i;

	if (a == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (json_array_append_new(a, jstr(s[i] != NULL ? s[i] : "")) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *
jports(const api_port *p, size_t n)
{
	json_t *a = json_array();
	size_t i;

	if (a == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		const char *proto = api_proto_str(p[i].protocol);
		json_t *o = json_pack("{s:i,s:i,s:s}", "host", (int)p[i].host,
		                      "guest", (int)p[i].guest, "protocol",
		                      proto != NULL ? proto : "tcp");
		if (json_array_append_new(a, o) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *
jplacement(bool spread, const api_rule *r, size_t n)
{
	json_t *o = json_object(), *a = json_array();
	size_t i;

	if (o == NULL || a == NULL) {
		json_decref(o);
		json_decref(a);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		const char *kind = api_rule_kind_str(r[i].kind);
		json_t *ro = json_pack("{s:s,s:s,s:o,s:b,s:i}", "kind",
		                       kind != NULL ? kind : "affinity", "key", r[i].key,
		                       "value", jstr(r[i].value), "soft", r[i].soft,
		                       "weight", (int)r[i].weight);
		if (json_array_append_new(a, ro) != 0) {
			json_decref(a);
			json_decref(o);
			return NULL;
		}
	}
	if (json_object_set_new(o, "policy", json_string(spread ? "spread" : "binpack")) ||
	    json_object_set_new(o, "rules", a)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
jopt_real(double v)
{
	return v < 0 ? json_null() : json_real(v);
}

/* ---- objects ------------------------------------------------------------ */

static json_t *
enc_image(const api_image *img)
{
	json_t *o = json_object();
	int rc = 0;

	if (o == NULL)
		return NULL;
	rc |= put(o, "digest", jstr(img->digest));
	rc |= put(o, "size", json_integer((json_int_t)img->size));
	rc |= put(o, "boot", jstr(img->boot));
	rc |= put(o, "refs", jstrs(img->refs, img->n_refs));
	rc |= put(o, "labels", jkv(img->labels, img->n_labels));
	rc |= put(o, "created", jtime(img->created));
	rc |= put(o, "instances", json_integer(img->instances));
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
enc_runs(const api_run *r, size_t n)
{
	json_t *a = json_array();
	size_t i;

	if (a == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		json_t *o = json_object();
		int rc = o == NULL ? -1 : 0;
		if (rc == 0) {
			rc |= put(o, "started", jtime(r[i].started));
			rc |= put(o, "ended", jtime(r[i].ended));
			rc |= put(o, "exit_code", r[i].has_exit_code ?
			          json_integer(r[i].exit_code) : json_null());
			rc |= put(o, "outcome", jstr(r[i].outcome));
			rc |= put(o, "reason", jstr(r[i].reason));
		}
		if (rc != 0 || json_array_append_new(a, o) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *
enc_instance(const api_instance *in)
{
	json_t *o = json_object(), *net;
	const char *state = api_state_str(in->state);
	const char *restart = api_restart_str(in->restart);
	int rc = 0;

	if (o == NULL)
		return NULL;
	rc |= put(o, "id", jstr(in->id));
	rc |= put(o, "name", jstr(in->name));
	rc |= put(o, "image", jstr(in->image));
	rc |= put(o, "image_digest", jstr(in->image_digest));
	rc |= put(o, "host", jstr(in->host));
	rc |= put(o, "state", jstr(state != NULL ? state : "lost"));
	rc |= put(o, "memory_mib", json_integer(in->memory_mib));
	rc |= put(o, "vcpus", json_integer(in->vcpus));
	rc |= put(o, "args", jstrs(in->args, in->n_args));
	rc |= put(o, "env", jkv(in->env, in->n_env));
	rc |= put(o, "labels", jkv(in->labels, in->n_labels));
	rc |= put(o, "restart", jstr(restart != NULL ? restart : "never"));
	rc |= put(o, "restarts", json_integer(in->restarts));
	net = json_object();
	if (net != NULL) {
		rc |= put(net, "enabled", json_boolean(in->network.enabled));
		rc |= put(net, "address", jstr(in->network.address));
		rc |= put(net, "gateway", jstr(in->network.gateway));
		rc |= put(net, "mac", jstr(in->network.mac));
		rc |= put(net, "ports", jports(in->network.ports,
		                                in->network.n_ports));
	}
	rc |= put(o, "network", net);
	rc |= put(o, "placement", jplacement(in->spread, in->rules, in->n_rules));
	rc |= put(o, "created", jtime(in->created));
	rc |= put(o, "started", jtime(in->started));
	rc |= put(o, "boot_ms", jopt_real(in->boot_ms));
	rc |= put(o, "ready_ms", jopt_real(in->ready_ms));
	rc |= put(o, "exit_code", in->has_exit_code ?
	          json_integer(in->exit_code) : json_null());
	rc |= put(o, "last_error", jstr(in->last_error));
	if (in->has_runs)
		rc |= put(o, "runs", enc_runs(in->runs, in->n_runs));
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
jres(const api_resources *r)
{
	return json_pack("{s:I,s:i,s:i}", "memory_mib", (json_int_t)r->memory_mib,
	                 "vcpus", (int)r->vcpus, "slots", (int)r->slots);
}

static json_t *
enc_host(const api_host *h)
{
	json_t *o = json_object();
	int rc = 0;

	if (o == NULL)
		return NULL;
	rc |= put(o, "name", jstr(h->name));
	rc |= put(o, "uri", jstr(h->uri));
	rc |= put(o, "state", jstr(h->state));
	rc |= put(o, "cordoned", json_boolean(h->cordoned));
	rc |= put(o, "domain_type", jstr(h->domain_type));
	rc |= put(o, "kvm", h->kvm < 0 ? json_null() : json_boolean(h->kvm));
	rc |= put(o, "domain_type_reason", jstr(h->domain_type_reason));
	rc |= put(o, "labels", jkv(h->labels, h->n_labels));
	rc |= put(o, "capacity", jres(&h->capacity));
	rc |= put(o, "used", jres(&h->used));
	rc |= put(o, "instances", json_integer(h->instances));
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
enc_plan(const api_plan *p)
{
	json_t *o = json_object(), *moves = json_array();
	size_t i;
	int rc = 0;

	if (o == NULL || moves == NULL) {
		json_decref(o);
		json_decref(moves);
		return NULL;
	}
	for (i = 0; i < p->n_moves && rc == 0; i++) {
		json_t *m = json_object();
		if (m == NULL) {
			rc = -1;
			break;
		}
		rc |= put(m, "instance", jstr(p->moves[i].instance));
		rc |= put(m, "from", jstr(p->moves[i].from));
		rc |= put(m, "to", jstr(p->moves[i].to));
		if (json_array_append_new(moves, m) != 0)
			rc = -1;
	}
	rc |= put(o, "moves", moves);
	rc |= put(o, "hosts_freed", jstrs(p->hosts_freed, p->n_hosts_freed));
	rc |= put(o, "hosts_before", json_integer(p->hosts_before));
	rc |= put(o, "hosts_after", json_integer(p->hosts_after));
	rc |= put(o, "executed", json_boolean(p->executed));
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- sink --------------------------------------------------------------- */

api_sink *
api_sink_new(api_sink_kind kind, api_sink_shape shape)
{
	api_sink *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->kind = kind;
	s->shape = shape;
	if (kind != API_SINK_TEXT && shape != API_SHAPE_ONE) {
		s->items = json_array();
		if (s->items == NULL) {
			free(s);
			return NULL;
		}
	}
	return s;
}

void
api_sink_free(api_sink *s)
{
	if (s == NULL)
		return;
	json_decref(s->items);
	json_decref(s->one);
	free(s->next);
	free(s->text);
	free(s);
}

size_t
api_sink_count(const api_sink *s)
{
	return s != NULL ? s->count : 0;
}

static int
sink_add(api_sink *s, api_sink_kind kind, json_t *o)
{
	if (s == NULL || s->failed || s->kind != kind || o == NULL ||
	    (s->shape == API_SHAPE_ONE && s->count > 0)) {
		json_decref(o);
		if (s != NULL)
			s->failed = true;
		return -1;
	}
	if (s->shape == API_SHAPE_ONE) {
		s->one = o;
	} else if (json_array_append_new(s->items, o) != 0) {
		s->failed = true;
		return -1;
	}
	s->count++;
	return 0;
}

int
api_sink_image(api_sink *s, const api_image *img)
{
	return sink_add(s, API_SINK_IMAGE, img != NULL ? enc_image(img) : NULL);
}

int
api_sink_instance(api_sink *s, const api_instance *inst)
{
	return sink_add(s, API_SINK_INSTANCE,
	                inst != NULL ? enc_instance(inst) : NULL);
}

int
api_sink_host(api_sink *s, const api_host *host)
{
	return sink_add(s, API_SINK_HOST, host != NULL ? enc_host(host) : NULL);
}

int
api_sink_plan(api_sink *s, const api_plan *plan)
{
	return sink_add(s, API_SINK_PLAN, plan != NULL ? enc_plan(plan) : NULL);
}

int
api_sink_next(api_sink *s, const char *cursor)
{
	if (s == NULL || s->failed)
		return -1;
	free(s->next);
	s->next = NULL;
	if (cursor == NULL)
		return 0;
	if (!api_valid_cursor(cursor)) {
		s->failed = true;
		return -1;
	}
	s->next = strdup(cursor);
	if (s->next == NULL) {
		s->failed = true;
		return -1;
	}
	return 0;
}

int
api_sink_printf(api_sink *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s == NULL || s->failed || s->kind != API_SINK_TEXT)
		goto fail;
	for (;;) {
		size_t room = s->text_cap - s->text_len;
		va_start(ap, fmt);
		n = vsnprintf(s->text != NULL ? s->text + s->text_len : NULL,
		              room, fmt, ap);
		va_end(ap);
		if (n < 0)
			goto fail;
		if ((size_t)n < room) {
			s->text_len += (size_t)n;
			return 0;
		}
		size_t cap = s->text_cap ? s->text_cap * 2 : 4096;
		while (cap < s->text_len + (size_t)n + 1)
			cap *= 2;
		char *t = realloc(s->text, cap);
		if (t == NULL)
			goto fail;
		s->text = t;
		s->text_cap = cap;
	}
fail:
	if (s != NULL)
		s->failed = true;
	return -1;
}

static char *
dump(json_t *j, size_t *len)
{
	char *out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER |
	                       JSON_REAL_PRECISION(15));

	if (out != NULL)
		*len = strlen(out);
	return out;
}

char *
api_sink_finish(api_sink *s, size_t *len)
{
	json_t *o;
	char *out = NULL;

	*len = 0;
	if (s == NULL || s->failed)
		return NULL;
	switch (s->shape) {
	case API_SHAPE_ONE:
		if (s->kind == API_SINK_TEXT) {
			out = malloc(s->text_len + 1);
			if (out == NULL)
				return NULL;
			if (s->text_len > 0)
				memcpy(out, s->text, s->text_len);
			out[s->text_len] = '\0';
			*len = s->text_len;
			return out;
		}
		if (s->one == NULL)
			return NULL;
		return dump(s->one, len);
	case API_SHAPE_LIST:
	case API_SHAPE_ITEMS:
		o = json_object();
		if (o == NULL)
			return NULL;
		if (json_object_set(o, "items", s->items) != 0 ||
		    (s->shape == API_SHAPE_LIST &&
		     json_object_set_new(o, "next", jstr(s->next)) != 0)) {
			json_decref(o);
			return NULL;
		}
		out = dump(o, len);
		json_decref(o);
		return out;
	}
	return NULL;
}

/* ---- errors and events -------------------------------------------------- */

char *
api_encode_error(const api_status *st, size_t *len)
{
	json_t *root = json_object(), *err = json_object();
	char *out = NULL;
	int rc = 0;

	*len = 0;
	if (root == NULL || err == NULL) {
		json_decref(root);
		json_decref(err);
		return NULL;
	}
	rc |= put(err, "code", jstr(api_code_str(st->code)));
	rc |= put(err, "message", jstr(st->message));
	if (st->field[0] != '\0')
		rc |= put(err, "field", jstr(st->field));
	rc |= put(root, "error", err);
	if (rc == 0)
		out = dump(root, len);
	json_decref(root);
	return out;
}

static int
put_nonempty(json_t *o, const char *key, const char *v)
{
	if (v[0] == '\0')
		return 0;
	return put(o, key, jstr(v));
}

char *
api_encode_event(const api_event *ev, size_t *len)
{
	char type[API_EVENT_TYPE_MAX], ebuf[API_EVENT_STR_MAX];
	json_t *o = json_object();
	char *data = NULL, *out = NULL;
	size_t dlen = 0, i, cap;
	int rc = 0, n;

	*len = 0;
	if (o == NULL)
		return NULL;
	/* copy every fixed array with a guaranteed terminator */
#define FIELD(key, arr)                                                       \
	do {                                                                  \
		snprintf(ebuf, sizeof ebuf, "%.*s", (int)sizeof(arr), arr);   \
		rc |= put_nonempty(o, key, ebuf);                             \
	} while (0)
	snprintf(type, sizeof type, "%.*s", (int)sizeof ev->type, ev->type);
	for (i = 0; type[i] != '\0'; i++) {
		char c = type[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			type[i] = '_';
	}
	rc |= put(o, "id", json_integer((json_int_t)ev->id));
	rc |= put(o, "time", jtime(ev->time));
	rc |= put(o, "type", jstr(type));
	FIELD("instance", ev->instance);
	FIELD("name", ev->name);
	FIELD("state", ev->state);
	FIELD("host", ev->host);
	FIELD("image", ev->image);
	FIELD("digest", ev->digest);
	FIELD("message", ev->message);
#undef FIELD
	if (rc == 0)
		data = dump(o, &dlen);
	json_decref(o);
	if (data == NULL)
		return NULL;
	cap = dlen + sizeof type + 64;
	out = malloc(cap);
	if (out != NULL) {
		n = snprintf(out, cap, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n",
		             ev->id, type, data);
		if (n < 0 || (size_t)n >= cap) {
			free(out);
			out = NULL;
		} else {
			*len = (size_t)n;
		}
	}
	free(data);
	return out;
}
