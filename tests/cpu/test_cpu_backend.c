/* The CPU backend's ops against naive double-precision references written
 * here (the reference is the textbook formula, not another backend):
 *   matmul       rel. error <= 1e-5 of the row's largest |value|, odd shapes
 *                (tile edges), 3 threads; rows bitwise independent of T
 *   rope         within 1e-6 of cos/sin in double
 *   attention    paged, ragged, GQA, with a cached prefix: within 1e-5
 *   embed        rows outside the vocabulary slice are zeros
 *   pool         every task runs exactly once
 *   matmul_quant a hand-made quantized weight (4- and 8-bit; plain groups,
 *                act order with a permutation, act order with g_idx): rel.
 *                error <= 1e-5 against w = (q - zero) * scale in double
 *                with x[perm[j]], odd shapes, 3 threads */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_pool.h"
#include "harness.h"
#include "model/quant_weights.h"
#include "util/half.h"

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = frand(&seed);
}

static void test_matmul_matches_naive(void)
{
    vb_backend *b = cpu_backend_create(3, MPI_COMM_NULL, 1);
    int T = 5, n_in = 37, n_out = 53;
    float *x = malloc(sizeof(float) * T * n_in), *w = malloc(sizeof(float) * n_out * n_in);
    float *bias = malloc(sizeof(float) * n_out), *out = malloc(sizeof(float) * T * n_out);
    fill(x, (size_t)T * n_in, 1);
    fill(w, (size_t)n_out * n_in, 2);
    fill(bias, (size_t)n_out, 3);
    b->matmul(b, out, x, w, bias, T, n_in, n_out);
    double worst = 0;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < n_out; o++) {
            double s = bias[o];
            for (int i = 0; i < n_in; i++)
                s += (double)x[t * n_in + i] * w[o * n_in + i];
            double e = fabs(s - out[t * n_out + o]);
            worst = e > worst ? e : worst;
        }
    CHECK(worst <= 1e-5 * n_in);
    /* each row alone gives the same bits: results do not depend on batching */
    float one[53];
    for (int t = 0; t < T; t++) {
        b->matmul(b, one, x + t * n_in, w, bias, 1, n_in, n_out);
        CHECK(memcmp(one, out + t * n_out, sizeof one) == 0);
    }
    free(x);
    free(w);
    free(bias);
    free(out);
    b->destroy(b);
}

/* Two sequences in paged blocks of 4: seq 0 has 5 cached tokens and brings
 * 3 new ones, seq 1 brings 6 new ones (a prompt); 4 query heads, 2 kv heads. */
static void test_attention_paged_ragged_gqa(void)
{
    enum { HEADS = 4, KVH = 2, HD = 8, BS = 4, NB = 8 };
    vb_backend *b = cpu_backend_create(2, MPI_COMM_NULL, 1);
    float *kc = calloc(NB * BS * KVH * HD, sizeof(float)), *vc = calloc(NB * BS * KVH * HD, sizeof(float));
    float inv_freq[HD / 2] = {0}; /* angle 0: rope is the identity, so K/V are plain writes */
    /* full per-sequence K, V, Q in contiguous arrays for the reference */
    int len[2] = {8, 6}, pos0[2] = {5, 0};
    int32_t bt[2][2] = {{6, 1}, {3, 0}};
    float K[2][8][KVH * HD], V[2][8][KVH * HD], Q[2][8][HEADS * HD];
    fill(&K[0][0][0], sizeof K / sizeof(float), 4);
    fill(&V[0][0][0], sizeof V / sizeof(float), 5);
    fill(&Q[0][0][0], sizeof Q / sizeof(float), 6);

    step_batch sb;
    step_batch_init(&sb, 2, 16, 2);
    int32_t toks[8] = {0};
    float q[16 * HEADS * HD], k[16 * KVH * HD], v[16 * KVH * HD], out[16 * HEADS * HD];
    for (int phase = 0; phase < 2; phase++) {
        /* phase 0 writes seq 0's prefix; phase 1 is the step under test */
        step_batch_clear(&sb);
        int T = 0;
        for (int s = 0; s < 2; s++) {
            int from = phase == 0 ? 0 : pos0[s], to = phase == 0 ? pos0[s] : len[s];
            if (to == from)
                continue;
            step_batch_add_seq(&sb, toks, to - from, from, bt[s], 2);
            for (int p = from; p < to; p++, T++) {
                memcpy(q + T * HEADS * HD, Q[s][p], sizeof Q[s][p]);
                memcpy(k + T * KVH * HD, K[s][p], sizeof K[s][p]);
                memcpy(v + T * KVH * HD, V[s][p], sizeof V[s][p]);
            }
        }
        b->step_begin(b, &sb, sb.n_tokens);
        b->rope_kv_write(b, q, k, v, kc, vc, inv_freq, 1.0f, HEADS, KVH, HD, BS);
        b->attention(b, out, q, kc, vc, HEADS, KVH, HD, BS, 0.35f);
    }
    double worst = 0;
    int t = 0;
    for (int s = 0; s < 2; s++)
        for (int p = pos0[s]; p < len[s]; p++, t++)
            for (int h = 0; h < HEADS; h++) {
                int kh = h / (HEADS / KVH);
                double sc[8], m = -1e30, l = 0;
                for (int j = 0; j <= p; j++) {
                    double d = 0;
                    for (int i = 0; i < HD; i++)
                        d += (double)Q[s][p][h * HD + i] * K[s][j][kh * HD + i];
                    sc[j] = d * 0.35;
                    m = sc[j] > m ? sc[j] : m;
                }
                for (int j = 0; j <= p; j++)
                    l += (sc[j] = exp(sc[j] - m));
                for (int i = 0; i < HD; i++) {
                    double o = 0;
                    for (int j = 0; j <= p; j++)
                        o += sc[j] / l * V[s][j][kh * HD + i];
                    double e = fabs(o - out[(t * HEADS + h) * HD + i]);
                    worst = e > worst ? e : worst;
                }
            }
    CHECK_INT_EQ(t, 9);
    CHECK(worst <= 1e-5);
    step_batch_free(&sb);
    free(kc);
    free(vc);
    b->destroy(b);
}

static void test_rope_rotation(void)
{
    vb_backend *b = cpu_backend_create(1, MPI_COMM_NULL, 1);
    step_batch sb;
    step_batch_init(&sb, 1, 1, 1);
    int32_t tok = 0, blk = 0;
    step_batch_add_seq(&sb, &tok, 1, 0, &blk, 1);
    sb.positions[0] = 3; /* rope alone: any position, slot is unused here */
    sb.ctx_len[0] = 4;
    float q[4] = {1, 2, 3, 4}, k[4] = {0.5f, -1, 2, 0}, v[4] = {0}, inv[2] = {1.0f, 0.25f};
    float kc[16] = {0}, vc[16] = {0};
    b->step_begin(b, &sb, sb.n_tokens);
    b->rope_kv_write(b, q, k, v, kc, vc, inv, 1.5f, 1, 1, 4, 4);
    double want[4];
    double x[4] = {1, 2, 3, 4};
    for (int i = 0; i < 2; i++) {
        double a = 3.0 * inv[i], c = cos(a) * 1.5, s = sin(a) * 1.5;
        want[i] = x[i] * c - x[i + 2] * s;
        want[i + 2] = x[i + 2] * c + x[i] * s;
    }
    for (int i = 0; i < 4; i++)
        CHECK_NEAR(q[i], want[i], 1e-6);
    CHECK_NEAR(kc[3 * 4 + 0], (0.5 * cos(3.0) - 2 * sin(3.0)) * 1.5, 1e-6); /* slot 3 of block 0 */
    step_batch_free(&sb);
    b->destroy(b);
}

static void test_embed_slice(void)
{
    vb_backend *b = cpu_backend_create(1, MPI_COMM_NULL, 1);
    step_batch sb;
    step_batch_init(&sb, 1, 3, 1);
    int32_t toks[3] = {9, 10, 12}, blk = 0;
    step_batch_add_seq(&sb, toks, 3, 0, &blk, 1);
    float table[3 * 2] = {1, 2, 3, 4, 5, 6}, out[6];
    b->step_begin(b, &sb, sb.n_tokens);
    b->embed(b, out, table, 2, 10, 3); /* this rank holds ids 10..12 */
    CHECK(out[0] == 0 && out[1] == 0);
    CHECK(out[2] == 1 && out[3] == 2);
    CHECK(out[4] == 5 && out[5] == 6);
    step_batch_free(&sb);
    b->destroy(b);
}

static atomic_int counts[1000];

static void count_task(void *arg, int task, int worker)
{
    (void)arg;
    (void)worker;
    atomic_fetch_add(&counts[task], 1);
}

static void test_pool_runs_each_task_once(void)
{
    cpu_pool *p = cpu_pool_create(4);
    for (int rep = 0; rep < 50; rep++)
        cpu_pool_run(p, 1000, count_task, NULL);
    int bad = 0;
    for (int i = 0; i < 1000; i++)
        bad += atomic_load(&counts[i]) != 50;
    CHECK_INT_EQ(bad, 0);
    cpu_pool_destroy(p);
}

/* One vb_qweight of n_out x n_in, values from the seed; mode 0: groups of
 * g in order, 1: plus a permutation, 2: plus a nondecreasing g_idx with
 * groups of uneven length (act order on a rank holding part of the input). */
static void check_quant(int bits, int n_out, int n_in, int g, int mode, int T)
{
    unsigned s = 7u + (unsigned)(bits * 100 + mode * 10 + T);
    vb_qweight w = {.bits = bits, .n_out = n_out, .n_in = n_in, .group_size = g};
    w.n_groups = mode == 2 ? 5 : n_in / g;
    int rb = n_in * bits / 8, maxq = (1 << bits) - 1;
    w.q = calloc((size_t)n_out * rb, 1);
    w.scales = malloc(sizeof(uint16_t) * (size_t)(n_out * w.n_groups));
    w.zeros = malloc(sizeof(uint16_t) * (size_t)(n_out * w.n_groups));
    int *qv = malloc(sizeof(int) * (size_t)(n_out * n_in));
    for (int o = 0; o < n_out; o++)
        for (int j = 0; j < n_in; j++) {
            int v = (int)((frand(&s) + 1.0f) * 0.5f * (float)maxq + 0.5f);
            v = v < 0 ? 0 : v > maxq ? maxq : v;
            qv[o * n_in + j] = v;
            if (bits == 8)
                w.q[o * rb + j] = (uint8_t)v;
            else
                w.q[o * rb + j / 2] |= (uint8_t)(j & 1 ? v << 4 : v);
        }
    for (int i = 0; i < n_out * w.n_groups; i++) {
        w.scales[i] = vb_float_to_half(0.01f + 0.02f * (frand(&s) + 1.0f));
        w.zeros[i] = vb_float_to_half((float)(int)((frand(&s) + 1.0f) * 0.5f * (float)maxq));
    }
    if (mode >= 1) {
        w.perm = malloc(sizeof(int32_t) * (size_t)n_in);
        for (int j = 0; j < n_in; j++)
            w.perm[j] = (int32_t)((j * 7 + 3) % n_in); /* 7 is prime to n_in: a bijection */
    }
    if (mode == 2) {
        w.g_idx = malloc(sizeof(int32_t) * (size_t)n_in);
        for (int j = 0; j < n_in; j++)
            w.g_idx[j] = (int32_t)(j * j * 5 / (n_in * n_in)); /* 0..4, uneven runs */
        w.group_size = 0;
    }
    float *x = malloc(sizeof(float) * (size_t)(T * n_in));
    float *bias = malloc(sizeof(float) * (size_t)n_out);
    float *out = malloc(sizeof(float) * (size_t)(T * n_out));
    fill(x, (size_t)(T * n_in), 11);
    fill(bias, (size_t)n_out, 12);
    vb_backend *b = cpu_backend_create(3, MPI_COMM_NULL, 1);
    b->matmul_quant(b, out, x, &w, bias, T, n_in, n_out);
    double worst = 0;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < n_out; o++) {
            double ref = bias[o], mag = 0;
            for (int j = 0; j < n_in; j++) {
                int grp = w.g_idx ? w.g_idx[j] : j / g;
                double wv = ((double)qv[o * n_in + j] -
                             vb_half_to_float(w.zeros[o * w.n_groups + grp])) *
                            vb_half_to_float(w.scales[o * w.n_groups + grp]);
                double xv = x[t * n_in + (w.perm ? w.perm[j] : j)];
                ref += wv * xv;
                mag += fabs(wv * xv);
            }
            double e = fabs(out[t * n_out + o] - ref) / (mag > 0 ? mag : 1);
            worst = e > worst ? e : worst;
        }
    if (worst > 1e-5)
        fprintf(stderr, "  %d-bit mode %d T %d: rel err %g\n", bits, mode, T, worst);
    CHECK(worst <= 1e-5);
    b->destroy(b);
    free(w.q), free(w.scales), free(w.zeros), free(w.perm), free(w.g_idx);
    free(qv), free(x), free(bias), free(out);
}

static void test_matmul_quant(void)
{
    for (int bits = 4; bits <= 8; bits += 4)
        for (int mode = 0; mode < 3; mode++) {
            check_quant(bits, 37, 96, 32, mode, 1);
            check_quant(bits, 37, 96, 32, mode, 5);
        }
}

int main(void)
{
    RUN_TEST(test_matmul_matches_naive);
    RUN_TEST(test_attention_paged_ragged_gqa);
    RUN_TEST(test_rope_rotation);
    RUN_TEST(test_embed_slice);
    RUN_TEST(test_pool_runs_each_task_once);
    RUN_TEST(test_matmul_quant);
    return test_summary();
}
