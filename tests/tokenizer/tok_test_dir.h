/* A temporary model directory that a tokenizer test writes its own small
 * files into (tokenizer.json, tokenizer_config.json, ...) and loads with
 * tokenizer_load: json_numbers and tokenizer_ids. Header-only (static), so
 * each test stays one program. */
#ifndef VB_TEST_TOK_TEST_DIR_H
#define VB_TEST_TOK_TEST_DIR_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char tok_test_dir[128];

/* Makes /tmp/PREFIX-XXXXXX; exits on failure. */
static inline void tok_test_dir_make(const char *prefix)
{
    snprintf(tok_test_dir, sizeof tok_test_dir, "/tmp/%s-XXXXXX", prefix);
    if (!mkdtemp(tok_test_dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

/* Writes text to the directory's file name; NULL removes the file. Exits
 * when it cannot write. */
static inline void tok_test_write(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tok_test_dir, name);
    if (!text) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Removes the directory (its files removed first by the test). */
static inline void tok_test_dir_remove(void)
{
    if (rmdir(tok_test_dir) != 0)
        perror(tok_test_dir);
}

#endif
