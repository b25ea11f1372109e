/* The unit-test harness: a few macros and a summary line.
 *
 * Each test program defines test functions, runs them with RUN_TEST, and
 * returns test_summary(), which prints "N passed, N failed" and gives the
 * exit status meson test reads (0 pass, 1 fail, 77 skip). A failed check
 * prints file, line, the expression and the values, and the test goes on,
 * so one run shows every failure. */
#ifndef VB_TEST_HARNESS_H
#define VB_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <string.h>

extern int test_checks_failed_in_current;
extern int test_passed, test_failed;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);  \
            test_checks_failed_in_current++;                                            \
        }                                                                               \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                              \
    do {                                                                                \
        long long va_ = (long long)(a), vb_ = (long long)(b);                           \
        if (va_ != vb_) {                                                               \
            fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__,       \
                    __LINE__, #a, #b, va_, vb_);                                        \
            test_checks_failed_in_current++;                                            \
        }                                                                               \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                              \
    do {                                                                                \
        const char *sa_ = (a), *sb_ = (b);                                              \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                    \
            fprintf(stderr, "  %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,   \
                    __LINE__, #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");      \
            test_checks_failed_in_current++;                                            \
        }                                                                               \
    } while (0)

/* |a - b| <= tol (absolute); NaN never passes. */
#define CHECK_NEAR(a, b, tol)                                                           \
    do {                                                                                \
        double da_ = (double)(a), db_ = (double)(b);                                    \
        if (!(fabs(da_ - db_) <= (tol))) {                                              \
            fprintf(stderr, "  %s:%d: |%s - %s| <= %g failed: %.9g vs %.9g\n",          \
                    __FILE__, __LINE__, #a, #b, (double)(tol), da_, db_);               \
            test_checks_failed_in_current++;                                            \
        }                                                                               \
    } while (0)

void test_run(const char *name, void (*fn)(void));
#define RUN_TEST(fn) test_run(#fn, fn)

/* Prints "N passed, N failed"; returns the exit status. */
int test_summary(void);

/* For tests that cannot run here (no GPU, missing model file): prints the
 * reason and returns 77, which meson test shows as SKIP. */
int test_skip(const char *why);

#endif
