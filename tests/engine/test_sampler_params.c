/* sampling_params_resolve: what the user set wins, the model's
 * generation_config fills the rest, voltbatch's defaults last. */
#include "harness.h"

#include "engine/sampler_params.h"

static sampling_overrides unset_options(void)
{
    sampling_overrides o;
    memset(&o, 0, sizeof o);
    o.temperature = o.top_p = o.min_p = NAN;
    o.repetition_penalty = o.frequency_penalty = o.presence_penalty = NAN;
    o.top_k = -1;
    o.logprobs = -1;
    o.seed = 17;
    return o;
}

static void test_defaults_then_model_then_user(void)
{
    sampling_overrides o = unset_options();
    sampling_params p = sampling_params_resolve(&o, NULL);
    CHECK_NEAR(p.temperature, 1.0, 0);
    CHECK_INT_EQ(p.top_k, 0);
    CHECK_NEAR(p.top_p, 1.0, 0);
    CHECK_INT_EQ(p.seed, 17);
    CHECK_INT_EQ(p.n_logprobs, 0);

    sampling_params model = sampling_params_default();
    model.temperature = 0.7f;
    model.top_p = 0.8f;
    model.top_k = 20;
    model.repetition_penalty = 1.05f;
    p = sampling_params_resolve(&o, &model);
    CHECK_NEAR(p.temperature, 0.7, 1e-7);
    CHECK_INT_EQ(p.top_k, 20);
    CHECK_NEAR(p.repetition_penalty, 1.05, 1e-7);

    o.temperature = 0.0;
    o.top_k = 0;
    o.logprobs = 5;
    p = sampling_params_resolve(&o, &model);
    CHECK_NEAR(p.temperature, 0.0, 0);
    CHECK_INT_EQ(p.top_k, 0);
    CHECK_NEAR(p.top_p, 0.8, 1e-7);
    CHECK_INT_EQ(p.n_logprobs, 5);
}

int main(void)
{
    RUN_TEST(test_defaults_then_model_then_user);
    return test_summary();
}
