/* Run settings as canonical JSON, and the resume comparison; see run_settings.h. */
#include "io/run_settings.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/utf8_valid.h"

static json_t *real_or_null(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

static json_t *count_or_null(long v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *json_or_null(const json_t *v)
{
    return v ? json_deep_copy(v) : json_null();
}

json_t *vb_run_settings_json(const vb_run_settings *s)
{
    json_t *o = json_object();
    json_t *stops = json_array();
    if (!o || !stops) {
        json_decref(o);
        json_decref(stops);
        return NULL;
    }
    for (int i = 0; i < s->n_stops; i++)
        json_array_append_new(stops, json_string(s->stops[i]));
    char checksum[16];
    snprintf(checksum, sizeof checksum, "%08x", (unsigned)s->input_checksum);
    /* The seed is a u64; JSON integers are i64 in jansson, so text. */
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
    int bad = 0;
    bad |= json_object_set_new(o, "model", str_or_null(s->model));
    bad |= json_object_set_new(o, "model_files", json_or_null(s->model_files));
    bad |= json_object_set_new(o, "chat_template_kwargs", json_or_null(s->chat_template_kwargs));
    bad |= json_object_set_new(o, "chat_template_file", json_or_null(s->chat_template_file));
    if (s->version)
        bad |= json_object_set_new(o, "version", json_string(s->version));
    bad |= json_object_set_new(o, "tp", json_integer(s->tp));
    bad |= json_object_set_new(o, "seed", json_string(seed));
    bad |= json_object_set_new(o, "max_new_tokens", count_or_null(s->max_new_tokens));
    bad |= json_object_set_new(o, "temperature", real_or_null(s->temperature));
    bad |= json_object_set_new(o, "top_p", real_or_null(s->top_p));
    bad |= json_object_set_new(o, "top_k", count_or_null(s->top_k));
    bad |= json_object_set_new(o, "min_p", real_or_null(s->min_p));
    bad |= json_object_set_new(o, "repetition_penalty", real_or_null(s->repetition_penalty));
    bad |= json_object_set_new(o, "frequency_penalty", real_or_null(s->frequency_penalty));
    bad |= json_object_set_new(o, "presence_penalty", real_or_null(s->presence_penalty));
    bad |= json_object_set_new(o, "n", json_integer(s->n < 1 ? 1 : s->n));
    bad |= json_object_set_new(o, "logprobs", count_or_null(s->logprobs));
    bad |= json_object_set_new(o, "ignore_eos", json_boolean(s->ignore_eos));
    bad |= json_object_set_new(o, "stop", stops);
    bad |= json_object_set_new(o, "chat", json_boolean(s->chat));
    bad |= json_object_set_new(o, "chat_template", str_or_null(s->chat_template));
    bad |= json_object_set_new(o, "system", str_or_null(s->system));
    bad |= json_object_set_new(o, "max_model_len", count_or_null(s->max_model_len));
    if (s->quantize)
        bad |= json_object_set_new(o, "quantize", json_string(s->quantize));
    if (s->kv_cache_dtype)
        bad |= json_object_set_new(o, "kv_cache_dtype", json_string(s->kv_cache_dtype));
    if (s->batch_invariant)
        bad |= json_object_set_new(o, "batch_invariant", json_true());
    bad |= json_object_set_new(o, "input_checksum", json_string(checksum));
    bad |= json_object_set_new(o, "input_rows", json_integer(s->input_rows));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int check_text(const char *what, const char *text, vb_err *err)
{
    size_t bad = 0;
    if (!text || vb_utf8_valid(text, strlen(text), &bad))
        return 0;
    return vb_err_set(err, "%s is not valid UTF-8 (byte %zu): the output's run settings record "
                      "it as JSON text; rename it", what, bad + 1);
}

int vb_run_settings_check_text(const vb_run_settings *s, vb_err *err)
{
    /* --system and --stop are refused by the command line already */
    return check_text("the model directory's path", s->model, err) ||
                   check_text("--chat-template", s->chat_template, err)
               ? -1
               : 0;
}

char *vb_run_settings_dump(const json_t *settings)
{
    return json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY |
                                    JSON_REAL_PRECISION(17));
}

static void value_text(const json_t *v, char *buf, size_t n)
{
    if (!v) {
        snprintf(buf, n, "(absent)");
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    snprintf(buf, n, "%s", s ? s : "?");
    if (strlen(buf) > 60)
        strcpy(buf + 57, "...");
    free(s);
}

/* Reals go through text and back in the journal; compare them as numbers. */
static bool same_value(const json_t *a, const json_t *b)
{
    if (a && b && json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return a && b && json_equal((json_t *)a, (json_t *)b);
}

/* "N bytes, modified 2026-12-01 10:00:00.123456789 UTC", or "absent". */
static void file_text(const json_t *f, char *buf, size_t n)
{
    json_t *size = json_object_get(f, "size"), *mtime = json_object_get(f, "mtime_ns");
    if (!json_is_integer(size) || !json_is_integer(mtime)) {
        snprintf(buf, n, "absent");
        return;
    }
    const json_int_t ns = json_integer_value(mtime);
    const time_t sec = (time_t)(ns / 1000000000);
    struct tm tm;
    char when[32] = "?";
    if (gmtime_r(&sec, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf, n, "%" JSON_INTEGER_FORMAT " bytes, modified %s.%09lld UTC",
             json_integer_value(size), when, (long long)(ns % 1000000000));
}

/* One file's stamp, saved against now: -1 naming it where they differ. */
static int compare_stamp(const json_t *a, const json_t *b, const char *where, const char *what,
                         vb_err *err)
{
    if ((!a && !b) || (a && b && json_equal((json_t *)a, (json_t *)b)))
        return 0;
    char sa[96], sb[96];
    file_text(a, sa, sizeof sa);
    file_text(b, sb, sizeof sb);
    return vb_err_set(err, "%s: %s changed since this output was begun (was %s, now %s): its "
                      "rows so far were made with the file as it was; resume with it, or "
                      "--overwrite to start over", where, what, sa, sb);
}

/* The model's files by name, both directions. */
static int compare_model_files(const json_t *saved, const json_t *now, const char *where,
                               vb_err *err)
{
    const char *name;
    json_t *v;
    const json_t *pair[2] = {now, saved};
    char what[512];
    for (int side = 0; side < 2; side++) {
        json_object_foreach((json_t *)pair[side], name, v) {
            snprintf(what, sizeof what, "the model's %s", name);
            if (compare_stamp(json_object_get(saved, name), json_object_get(now, name), where,
                              what, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* Keys a journal begun before session 44 lacks: not compared there. */
static bool added_later(const char *key)
{
    return strcmp(key, "model_files") == 0 || strcmp(key, "chat_template_kwargs") == 0 ||
           strcmp(key, "chat_template_file") == 0;
}

/* A run resumed under another build: its rows and the earlier ones may
 * differ where the two compute or sample differently (a fix to the
 * sampler, say), so it is said; not refused, since the newer build is
 * often the one that should finish the job. An output or journal begun
 * before the key existed has none: nothing to say. */
static void warn_other_version(const json_t *saved, const json_t *now, const char *where)
{
    const char *was = json_string_value(saved), *is = json_string_value(now);
    if (!was || !is || strcmp(was, is) == 0)
        return;
    vb_warn("%s was begun by voltbatch %s, this is %s: the rows of each may differ where the two "
            "compute or sample differently", where, was, is);
}

int vb_run_settings_compare(const json_t *saved, const json_t *now, const char *where,
                            vb_err *err)
{
    const char *key;
    json_t *v;
    const json_t *pair[2] = {now, saved};
    /* Both directions, so a key only one side has is caught too. */
    for (int side = 0; side < 2; side++) {
        json_object_foreach((json_t *)pair[side], key, v) {
            const json_t *a = json_object_get(saved, key), *b = json_object_get(now, key);
            if (!a && added_later(key))
                continue;
            if (strcmp(key, "version") == 0) {
                if (side == 0)
                    warn_other_version(a, b, where);
                continue;
            }
            if (strcmp(key, "model_files") == 0) {
                if (compare_model_files(a, b, where, err) < 0)
                    return -1;
                continue;
            }
            if (strcmp(key, "chat_template_file") == 0) {
                if (compare_stamp(json_is_null(a) ? NULL : a, json_is_null(b) ? NULL : b, where,
                                  "the --chat-template file", err) < 0)
                    return -1;
                continue;
            }
            if (!same_value(a, b)) {
                char sa[64], sb[64];
                value_text(a, sa, sizeof sa);
                value_text(b, sb, sizeof sb);
                if (strncmp(key, "input_", 6) == 0) /* the shard files' rows or bytes */
                    return vb_err_set(err, "%s: the inputs changed since this output was begun "
                                      "(%s was %s, now %s): resume with the same input files, "
                                      "or --overwrite to start over", where, key, sa, sb);
                return vb_err_set(err, "%s: %s was %s, now %s (run with the same %s to resume, "
                                  "or --overwrite to start over)", where, key, sa, sb, key);
            }
        }
    }
    return 0;
}
