/* The settings a run's completions depend on, as one canonical JSON object.
 *
 * The journal header and the output's `settings_json` root attribute store
 * it; --resume compares the saved object with the new run's key by key and
 * refuses a difference, naming the key (mixing rows made with two seeds or
 * two models in one file would silently break reproducibility). Settings
 * that do not change a row's completion (dp, batch sizes, threads, memory
 * use) are left out on purpose, so a requeued job may run on other hardware.
 *
 * Unset reals (NAN) and counts (-1) are stored as null: "unset" resolves to
 * generation_config.json, which belongs to the model, which is compared. */
#ifndef VB_IO_RUN_SETTINGS_H
#define VB_IO_RUN_SETTINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/errors.h"

typedef struct vb_run_settings {
    const char *model;        /* what identifies the model (the engine picks:
                                 its directory's real path, say) */
    const json_t *model_files; /* what the model's files were: size and mtime by
                                  name (model/model_files.h); NULL = no key */
    int tp;                   /* numerics differ with tp, so it must match */
    uint64_t seed;
    long max_new_tokens;      /* -1 = unset */
    double temperature, top_p; /* NAN = unset */
    long top_k;               /* -1 = unset */
    double min_p, repetition_penalty, frequency_penalty, presence_penalty;
    long n;                   /* samples per prompt */
    long logprobs;            /* -1 = unset */
    bool ignore_eos;
    const char *const *stops;
    int n_stops;
    bool chat;
    const char *chat_template; /* NULL = from tokenizer_config.json */
    const char *system;        /* NULL = none */
    const json_t *chat_template_kwargs; /* the parsed --chat-template-kwargs (a
                                  string where they did not parse), NULL = none */
    const json_t *chat_template_file;   /* a --chat-template file's size and
                                  mtime (model_file_stamp), NULL = none */
    long max_model_len;        /* -1 = unset */
    const char *quantize;      /* --quantize's value, NULL = none (then no key:
                                  journals from before the option still resume) */
    const char *kv_cache_dtype; /* --kv-cache-dtype when not the default (int8),
                                  else NULL and no key, as quantize */
    bool batch_invariant;      /* --batch-invariant; false: no key, as quantize (a file's
                                  rows are all made in one mode: resume refuses a change) */
    const char *version;       /* the binary's, "VERSION (git REVISION)"; NULL = no key.
                                  Ranks must agree on it (two builds on two nodes);
                                  --resume under another warns, never refuses */
    uint32_t input_checksum;   /* vb_input.checksum */
    int64_t input_rows;        /* vb_input.n_rows */
} vb_run_settings;

/* A new reference to the canonical object (keys sorted when dumped), or
 * NULL when out of memory. */
json_t *vb_run_settings_json(const vb_run_settings *s);

/* 0 when the paths the settings hold are valid UTF-8 (JSON strings must
 * be; vb_run_settings_json fails otherwise); else -1 with err naming it:
 * a model directory (its real path) or --chat-template of other bytes.
 * --system and --stop are checked as the command line is read. */
int vb_run_settings_check_text(const vb_run_settings *s, vb_err *err);

/* Canonical text (compact, sorted keys); free() it. */
char *vb_run_settings_dump(const json_t *settings);

/* 0 when `saved` and `now` agree on every key; else -1 with
 * "WHERE: KEY was X, now Y (...)" naming the first differing key, or for
 * "model_files" and "chat_template_file" the file that changed, appeared
 * or went. The keys added in session 44 (model_files, chat_template_kwargs,
 * chat_template_file: always written, null where none) are not compared
 * where `saved` lacks them: a journal begun by an older build resumes. */
int vb_run_settings_compare(const json_t *saved, const json_t *now, const char *where,
                            vb_err *err);

#endif
