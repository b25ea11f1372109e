/* `voltbatch pack` and `unpack` as library calls (the cli files only parse
 * options), so tests can drive them directly.
 *
 * pack: JSON Lines or plain text -> the HDF5 input schema (input_reader.h).
 *   JSONL (by extension .jsonl/.json/.ndjson, else when the first non-blank
 *   line starts with '{'): one object per line with "prompt" (string) or
 *   "messages" (array of {"role","content"}), the same kind on every line;
 *   optional "id" (string or integer), "system" (string), "max_new_tokens"
 *   (integer), "seed" (non-negative integer). Other keys are ignored (data
 *   sets carry references and labels). Blank lines are skipped.
 *   Text: every non-blank line is one prompt (trailing \r\n removed).
 *   A prompt may hold NUL characters (\u0000 in JSON, a NUL byte in a text
 *   line): /prompts is then written in the byte form of io/h5_text.h;
 *   messages keep theirs escaped in their JSON. "id" and "system" holding
 *   one are refused, naming the line.
 *   An optional key given on some lines only is stored as the schema's
 *   "unset" value on the others: "" for id and system, -1 for
 *   max_new_tokens and seed; ids are int64 when every line has an integer
 *   id, strings otherwise. Errors name the file and line.
 *   Streaming: rows are written a block of 8192 at a time as they are
 *   parsed (io/pack_columns.h), so memory does not grow with the input; a
 *   regular file is read twice (its rows counted first, so the columns are
 *   contiguous as before), a pipe once (chunked columns).
 *
 * unpack: an output file (has /completions) -> one JSON object per row with
 *   every output field; an input file -> one object per row in the pack
 *   format (so pack -> unpack round-trips). Unset optional fields are left
 *   out. An unsigned 64-bit /id above 2^63 - 1 is written as a string of
 *   its digits (JSON readers take integers as signed 64-bit). */
#ifndef VB_IO_PACK_H
#define VB_IO_PACK_H

#include "util/errors.h"

/* Both write OUT.tmp and rename it to OUT; neither checks whether OUT
 * exists (the command does, for --overwrite). */
int vb_pack(const char *in_path, const char *out_path, vb_err *err);
int vb_unpack(const char *in_path, const char *out_path, vb_err *err);

#endif
