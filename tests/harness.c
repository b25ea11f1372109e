/* The unit-test harness; see harness.h. */
#include "harness.h"

int test_checks_failed_in_current;
int test_passed, test_failed;

void test_run(const char *name, void (*fn)(void))
{
    test_checks_failed_in_current = 0;
    fn();
    if (test_checks_failed_in_current == 0) {
        test_passed++;
        printf("ok   %s\n", name);
    } else {
        test_failed++;
        printf("FAIL %s (%d checks)\n", name, test_checks_failed_in_current);
    }
    fflush(stdout);
}

int test_summary(void)
{
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed == 0 ? 0 : 1;
}

int test_skip(const char *why)
{
    printf("SKIP: %s\n", why);
    return 77;
}
