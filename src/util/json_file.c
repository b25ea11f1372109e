/* vb_json_load_file / vb_json_loadb: see json_file.h.
 *
 * Chosen over JSON_DECODE_INT_AS_REAL, which would make every integer a real
 * and so accept 7.0 where a token id must be an integer, and lose integers
 * past 2^53. Here only the numbers Jansson would refuse change, in a copy of
 * the text; strings are skipped (a "1e999" inside one is text), and a
 * malformed number is left for Jansson to report. No newline is added or
 * removed, so Jansson's line numbers still point into the file. */
#include "util/json_file.h"

#include <errno.h>
#include <float.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/open_regular.h"

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Length of the JSON number at s[0..n) (RFC 8259 grammar), or 0 when what
 * is there is not one. *is_int: no fraction and no exponent. */
static size_t number_len(const char *s, size_t n, bool *is_int)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || !is_digit(s[i]))
        return 0;
    if (s[i] == '0')
        i++;
    else
        while (i < n && is_digit(s[i]))
            i++;
    *is_int = true;
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
        *is_int = false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
        *is_int = false;
    }
    return i;
}

/* The text Jansson will take for the number tok (NUL-terminated), written
 * into out[32]; false when Jansson takes tok as it is. */
static bool replacement(const char *tok, bool is_int, char out[static 32])
{
    errno = 0;
    if (is_int) {
        (void)strtoll(tok, NULL, 10);
        if (errno != ERANGE)
            return false;
    }
    errno = 0;
    double d = strtod(tok, NULL);
    if (!is_int && errno != ERANGE)
        return false;
    if (d > DBL_MAX || d < -DBL_MAX)
        d = d > 0 ? DBL_MAX : -DBL_MAX; /* Jansson holds no infinity */
    else if (!is_int)
        return false; /* an underflow to 0 or a denormal Jansson accepts */
    /* %.17g keeps the double exactly; past int64 it always has an exponent,
     * so Jansson reads it as a real, never as an integer again. */
    snprintf(out, 32, "%.17g", d);
    return true;
}

/* A copy of buf with the out-of-range numbers replaced, or NULL when none
 * is (*out_len then unset) or memory runs out (*oom). */
static char *rewrite(const char *buf, size_t len, size_t *out_len, bool *oom)
{
    char *out = NULL, tok[512];
    size_t o = 0, cap = 0, copied = 0;
    bool in_str = false;
    *oom = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
            continue;
        }
        if (c != '-' && !is_digit(c))
            continue;
        bool is_int = false;
        size_t n = number_len(buf + i, len - i, &is_int);
        if (n == 0)
            continue;
        char rep[32];
        char *t = n < sizeof tok ? tok : malloc(n + 1);
        if (!t) {
            free(out);
            *oom = true;
            return NULL;
        }
        memcpy(t, buf + i, n);
        t[n] = 0;
        bool replace = replacement(t, is_int, rep);
        if (t != tok)
            free(t);
        if (replace) {
            size_t rl = strlen(rep), need = o + (i - copied) + rl + (len - i) + 1;
            if (need > cap) {
                cap = need + len / 4 + 64;
                char *p = realloc(out, cap);
                if (!p) {
                    free(out);
                    *oom = true;
                    return NULL;
                }
                out = p;
            }
            memcpy(out + o, buf + copied, i - copied);
            o += i - copied;
            memcpy(out + o, rep, rl);
            o += rl;
            copied = i + n;
        }
        i += n - 1;
    }
    if (!out)
        return NULL;
    memcpy(out + o, buf + copied, len - copied);
    o += len - copied;
    out[o] = 0;
    *out_len = o;
    return out;
}

static void set_error(json_error_t *je, const char *source, const char *text)
{
    if (!je)
        return;
    je->line = -1;
    je->column = -1;
    je->position = 0;
    snprintf(je->source, sizeof je->source, "%s", source);
    snprintf(je->text, sizeof je->text, "%s", text);
}

json_t *vb_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *je)
{
    size_t n = 0;
    bool oom = false;
    char *copy = rewrite(buf, len, &n, &oom);
    if (oom) {
        set_error(je, "<buffer>", "out of memory");
        return NULL;
    }
    json_t *root = copy ? json_loadb(copy, n, flags, je) : json_loadb(buf, len, flags, je);
    free(copy);
    return root;
}

json_t *vb_json_load_file(const char *path, size_t flags, json_error_t *je)
{
    char msg[JSON_ERROR_TEXT_LENGTH];
    struct stat st;
    int fd = vb_open_regular(path, &st), open_errno = errno;
    if (fd == -2) {
        snprintf(msg, sizeof msg, "not a regular file (a FIFO, a device or a directory)");
        set_error(je, path, msg);
        return NULL;
    }
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (fd >= 0 && !f) {
        open_errno = errno;
        close(fd);
    }
    if (!f) {
        snprintf(msg, sizeof msg, "unable to open %s: %s", path, strerror(open_errno));
        set_error(je, path, msg);
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                set_error(je, path, "out of memory");
                return NULL;
            }
            buf = p;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f);
    int saved = errno;
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(msg, sizeof msg, "unable to read %s: %s", path, strerror(saved));
        set_error(je, path, msg);
        return NULL;
    }
    /* Jansson's message for it quotes the invisible mark ("'[' or '{'
     * expected near ''"); transformers refuses such a file too (Python's
     * json: "Unexpected UTF-8 BOM"), so it is refused, by name */
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        free(buf);
        set_error(je, path, "the file starts with a UTF-8 byte order mark (bytes EF BB BF), "
                            "which JSON does not allow: remove it");
        je->line = 1;
        return NULL;
    }
    json_t *root = vb_json_loadb(buf, len, flags, je);
    free(buf);
    return root;
}
