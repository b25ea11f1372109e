/* The model directory's files by size and mtime; see model_files.h. */
#include "model/model_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/crc32.h"
#include "util/open_regular.h"
#include "util/utf8_valid.h"

static bool ends_with(const char *s, const char *tail)
{
    const size_t n = strlen(s), t = strlen(tail);
    return n > t && strcmp(s + n - t, tail) == 0;
}

/* Weights, configuration, tokenizer and chat template: every file whose
 * change can change a completion. README.md, LICENSE and the like are not
 * read and may be edited without refusing a resume. */
static bool read_by_engine(const char *name)
{
    return name[0] != '.' &&
           (ends_with(name, ".safetensors") || ends_with(name, ".json") ||
            ends_with(name, ".jinja"));
}

json_t *model_file_stamp(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return NULL;
    const json_int_t ns = (json_int_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return json_pack("{sIsI}", "size", (json_int_t)st.st_size, "mtime_ns", ns);
}

/* CRC-32 of the file's first and last MODEL_PRINT_BYTES (all of a small
 * file: config.json, the tokenizer; a safetensors file's header and the
 * first and last tensors' bytes) */
#define MODEL_PRINT_BYTES (1 << 20)

json_t *model_file_fingerprint(const char *path)
{
    struct stat st;
    int fd = vb_open_regular(path, &st);
    if (fd < 0)
        return NULL;
    unsigned char *buf = malloc(MODEL_PRINT_BYTES);
    bool ok = buf != NULL;
    uint32_t crc = 0;
    const off_t size = ok ? st.st_size : 0;
    const off_t at[2] = {0, size > MODEL_PRINT_BYTES ? size - MODEL_PRINT_BYTES : size};
    for (int k = 0; ok && k < 2; k++) {
        off_t end = k == 0 ? (size < MODEL_PRINT_BYTES ? size : MODEL_PRINT_BYTES) : size;
        for (off_t off = at[k]; ok && off < end;) {
            ssize_t got = pread(fd, buf, (size_t)(end - off), off);
            if (got < 0 && errno == EINTR)
                continue;
            ok = got > 0;
            if (ok)
                crc = vb_crc32(crc, buf, (size_t)got), off += got;
        }
    }
    free(buf);
    close(fd);
    if (!ok)
        return NULL;
    char hex[16];
    snprintf(hex, sizeof hex, "%08x", (unsigned)crc);
    return json_pack("{sIss}", "size", (json_int_t)size, "sampled_crc32", hex);
}

static json_t *files_json(const char *dir, json_t *(*stamp)(const char *), vb_err *err);

json_t *model_files_json(const char *dir, vb_err *err)
{
    return files_json(dir, model_file_stamp, err);
}

json_t *model_files_fingerprints(const char *dir, vb_err *err)
{
    return files_json(dir, model_file_fingerprint, err);
}

static json_t *files_json(const char *dir, json_t *(*stamp)(const char *), vb_err *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        vb_err_set(err, "%s: cannot list the model directory (%s)", dir, strerror(errno));
        return NULL;
    }
    json_t *files = json_object();
    bool bad = !files;
    for (struct dirent *e; !bad && (e = readdir(d));) {
        /* a name of other bytes than UTF-8 cannot be a JSON key; no file
         * the engine reads is named so (config.json, the index's shards) */
        if (!read_by_engine(e->d_name) || !vb_utf8_valid(e->d_name, strlen(e->d_name), NULL))
            continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        json_t *f = stamp(path);
        if (f)
            bad = json_object_set_new(files, e->d_name, f) != 0;
    }
    closedir(d);
    if (bad) {
        json_decref(files);
        vb_err_set(err, "%s: out of memory", dir);
        return NULL;
    }
    return files;
}
