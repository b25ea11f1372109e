/* Stop flag: SIGTERM, SIGUSR1 and SIGINT each set it and do not kill us. */
#include <signal.h>

#include "harness.h"
#include "util/signals.h"

static void test_each_signal_sets_the_flag(void)
{
    const int sigs[] = {SIGTERM, SIGUSR1, SIGINT};
    vb_signals_install();
    for (int i = 0; i < 3; i++) {
        vb_signals_reset();
        CHECK(!vb_stop_requested());
        raise(sigs[i]);
        CHECK(vb_stop_requested());
        CHECK_INT_EQ(vb_stop_signal(), sigs[i]);
    }
    vb_signals_reset();
}

static void test_first_signal_is_kept(void)
{
    vb_signals_reset();
    raise(SIGUSR1);
    raise(SIGTERM);
    CHECK_INT_EQ(vb_stop_signal(), SIGUSR1);
    vb_signals_reset();
    vb_request_stop(0);
    CHECK(vb_stop_requested());
    CHECK_INT_EQ(vb_stop_signal(), SIGTERM);
    vb_signals_reset();
}

int main(void)
{
    RUN_TEST(test_each_signal_sets_the_flag);
    RUN_TEST(test_first_signal_is_kept);
    return test_summary();
}
