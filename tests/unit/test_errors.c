/* vb_err: messages are formatted, prefixed and cut to one line's buffer. */
#include <string.h>

#include "harness.h"
#include "util/errors.h"

static void test_set_and_prefix(void)
{
    vb_err e;
    CHECK_INT_EQ(vb_err_set(&e, "tensor '%s': bad dtype %d", "w", 7), -1);
    CHECK_STR_EQ(e.msg, "tensor 'w': bad dtype 7");
    CHECK_INT_EQ(vb_err_prefix(&e, "%s", "model.safetensors"), -1);
    CHECK_STR_EQ(e.msg, "model.safetensors: tensor 'w': bad dtype 7");
    CHECK_INT_EQ(vb_err_set(NULL, "ignored"), -1);
}

static void test_prefix_truncates(void)
{
    vb_err e;
    char longp[2000];
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    vb_err_set(&e, "tail");
    vb_err_prefix(&e, "%s", longp);
    CHECK(strlen(e.msg) < sizeof e.msg);
    CHECK(e.msg[0] == 'p');
}

int main(void)
{
    RUN_TEST(test_set_and_prefix);
    RUN_TEST(test_prefix_truncates);
    return test_summary();
}
