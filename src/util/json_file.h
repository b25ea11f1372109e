/* Loading a model directory's JSON files (config.json, generation_config.json,
 * tokenizer.json, tokenizer_config.json, model.safetensors.index.json) so
 * that every number JSON allows loads.
 *
 * Jansson refuses an integer beyond int64 ("too big integer") and a real
 * beyond double ("real number overflow"), and transformers writes
 * "model_max_length": 1000000000000000019884624838656 into many published
 * tokenizer_config.json files. These loaders turn such a number into a real
 * (the nearest double; past double's range, +-DBL_MAX) before Jansson parses
 * the text, and leave every other number as it is: 7 stays an integer and
 * 7.0 a real, so the callers' checks of the fields they use (an id must be
 * a JSON integer in range) are unchanged and refuse such a value by name. */
#ifndef VB_JSON_FILE_H
#define VB_JSON_FILE_H

#include <jansson.h>
#include <stddef.h>

/* json_load_file's contract: NULL with je filled (line -1 when the file
 * cannot be read, as Jansson does). */
json_t *vb_json_load_file(const char *path, size_t flags, json_error_t *je);
/* json_loadb's contract for text already in memory. */
json_t *vb_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *je);

#endif
