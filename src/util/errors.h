/* Error values for functions that can fail on user input.
 *
 * A function that reads something from outside (a file, an option, a row)
 * returns -1 and fills a vb_err with one line that names the file, tensor,
 * row or option, so the caller can print it and pick the exit status. */
#ifndef VB_ERRORS_H
#define VB_ERRORS_H

#include <stddef.h>

#define VB_ERR_LEN 512

typedef struct vb_err {
    char msg[VB_ERR_LEN];
} vb_err;

/* Formats into err (when not NULL) and returns -1, so callers can write
 * `return vb_err_set(err, "...", ...);`. */
int vb_err_set(vb_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to an existing message (adds context as an error
 * travels up: "model.safetensors: tensor 'x': ..."). Returns -1. */
int vb_err_prefix(vb_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
