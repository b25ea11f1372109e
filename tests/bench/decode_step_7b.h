/* The bytes a Qwen2.5-7B decode step reads (fp16 weights, fp16 K/V), for
 * the micro-benchmarks that state a kernel's time as a share of that
 * step's lower bound. The weights are those bench counts a step reading
 * (src/run/bench_metrics.h): every matrix and lm_head, not the untied input
 * embedding, of which a step looks up only its rows (the 15.23e9 of the
 * weights held on the GPU overstated the step by 1.09e9 bytes, 7.7 %).
 * tests/run/test_bench_metrics.c checks them against bench_model_cost_make. */
#ifndef VB_DECODE_STEP_7B_H
#define VB_DECODE_STEP_7B_H

#define QWEN7B_STEP_WEIGHT_BYTES 14141238272.0
/* K and V of one position: 28 layers x 2 x 4 KV heads x 128 x 2 bytes */
#define QWEN7B_KV_BYTES_PER_POSITION (28.0 * 2 * 4 * 128 * 2)

#endif
