/* The io data path across ranks, without a model: rank 0 shards the rows
 * by cost, each dp group leader reads only its rows and "finishes" them
 * (completion = "done: " + prompt), rows travel to rank 0 which journals
 * them and writes the output. Run once stopped part-way (as on SIGTERM) and
 * then with --resume: the final output has every row exactly once, with the
 * right id and text. Run as: mpirun -np N test_io_dist TP DIR. */
#include <hdf5.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mpi/dist.h"
#include "mpi/mpi_check.h"
#include "harness.h"
#include "io/input_reader.h"
#include "io/resume.h"
#include "io/row_transport.h"
#include "io/run_settings.h"
#include "io/shard.h"
#include "util/exit_codes.h"
#include "util/signals.h"

enum { ROWS_PER_SHARD = 97, SHARDS = 3 };

static vb_dist d;
static vb_row_channel ch;
static char dir[512];

static void make_inputs(void)
{
    mkdir(dir, 0755);
    for (int s = 0; s < SHARDS; s++) {
        char path[600];
        snprintf(path, sizeof path, "%s/in-%d.h5", dir, s);
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        hsize_t n = ROWS_PER_SHARD;
        hid_t sp = H5Screate_simple(1, &n, NULL);
        char *buf[ROWS_PER_SHARD], *ids[ROWS_PER_SHARD];
        for (int i = 0; i < ROWS_PER_SHARD; i++) {
            int len = 1 + (i * 37 + s * 11) % 300; /* uneven lengths */
            buf[i] = malloc((size_t)len + 32);
            int k = snprintf(buf[i], 32, "s%d r%d ", s, i);
            memset(buf[i] + k, 'x', (size_t)len);
            buf[i][k + len] = '\0';
            ids[i] = malloc(32);
            snprintf(ids[i], 32, "id-%d-%d", s, i);
        }
        hid_t dp = H5Dcreate2(f, "prompts", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hid_t di = H5Dcreate2(f, "id", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        CHECK(H5Dwrite(dp, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
        CHECK(H5Dwrite(di, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids) >= 0);
        H5Dclose(dp);
        H5Dclose(di);
        H5Sclose(sp);
        H5Tclose(t);
        H5Fclose(f);
        for (int i = 0; i < ROWS_PER_SHARD; i++) {
            free(buf[i]);
            free(ids[i]);
        }
    }
}

static vb_output_row finish(const vb_input_row *in, char *text, size_t cap)
{
    snprintf(text, cap, "done: %s", in->text);
    vb_output_row w = {.index = in->index, .completion = text, .id = in->id,
                       .prompt_tokens = (int32_t)strlen(in->text), .finish_reason = VB_FINISH_STOP,
                       .error = ""};
    return w;
}

/* One run. stop_after > 0: each leader finishes at most that many rows. */
static void run(bool resume, int stop_after)
{
    char spec[600], out[600];
    snprintf(spec, sizeof spec, "%s/in-*.h5", dir);
    snprintf(out, sizeof out, "%s/out.h5", dir);
    const char *specs[] = {spec};
    bool leader = d.tp_rank == 0;
    vb_input in = {0};
    vb_err err = {{0}};
    if (leader)
        CHECK_INT_EQ(vb_input_open(&in, specs, 1, &err), 0);
    int64_t n = in.n_rows;
    MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD));
    int32_t *group = malloc((size_t)n * sizeof *group);
    uint8_t *skip = calloc((size_t)n, 1);
    vb_results done = {0};
    vb_journal *j = NULL;
    if (d.world_rank == 0) {
        int64_t *cost = malloc((size_t)n * sizeof *cost);
        CHECK_INT_EQ(vb_input_row_costs(&in, cost, &err), 0);
        CHECK_INT_EQ(vb_shard_assign(cost, n, d.dp, group), 0);
        int64_t lo = INT64_MAX, hi = 0;
        for (int g = 0; g < d.dp; g++) {
            int64_t c = vb_shard_group_cost(cost, group, n, g);
            lo = c < lo ? c : lo;
            hi = c > hi ? c : hi;
        }
        CHECK((double)hi / (double)lo < 1.05);
        free(cost);
        vb_run_settings s = {.model = "none", .tp = d.tp, .seed = 1, .max_new_tokens = -1,
                             .temperature = 0, .top_p = NAN, .top_k = -1, .min_p = NAN,
                             .repetition_penalty = NAN, .frequency_penalty = NAN,
                             .presence_penalty = NAN, .n = 1, .logprobs = -1,
                             .max_model_len = -1, .input_checksum = in.checksum,
                             .input_rows = n};
        json_t *sj = vb_run_settings_json(&s);
        CHECK_INT_EQ(vb_output_prepare(out, sj, resume, !resume, -1, in.id_kind, &done, &j,
                                       &err), 0);
        for (int64_t i = 0; i < n; i++)
            skip[i] = vb_results_row_done(&done, i);
        json_decref(sj);
    }
    MPI_CHECK(MPI_Bcast(group, (int)n, MPI_INT32_T, 0, MPI_COMM_WORLD));
    MPI_CHECK(MPI_Bcast(skip, (int)n, MPI_UINT8_T, 0, MPI_COMM_WORLD));
    if (leader) {
        int64_t *rows = malloc((size_t)n * sizeof *rows);
        int64_t m = vb_shard_rows_of(group, n, d.dp_rank, rows), k = 0;
        for (int64_t i = 0; i < m; i++)
            if (!skip[rows[i]])
                rows[k++] = rows[i];
        if (stop_after > 0 && k > stop_after)
            k = stop_after;
        vb_input_row *r = malloc((size_t)(k ? k : 1) * sizeof *r);
        CHECK_INT_EQ(vb_input_read_rows(&in, rows, k, r, &err), 0);
        char text[512];
        for (int64_t i = 0; i < k; i++) {
            vb_output_row w = finish(&r[i], text, sizeof text);
            if (d.world_rank == 0) {
                CHECK_INT_EQ(vb_journal_append(j, &w, -1, &err), 0);
                CHECK_INT_EQ(vb_results_put(&done, &w, &err), 0);
            } else {
                CHECK_INT_EQ(vb_row_send(&ch, &w, -1, 0, &err), 0);
            }
        }
        vb_input_rows_free(r, k);
        free(r);
        free(rows);
        if (d.world_rank != 0)
            vb_rows_done_send(&ch, 0, &err);
    }
    if (d.world_rank == 0) {
        int waiting = d.dp - 1;
        while (waiting > 0) {
            vb_output_row w;
            int src = -1;
            int got = vb_row_poll(&ch, true, -1, &w, &src, &err);
            CHECK(got > 0);
            if (got == 2)
                waiting--;
            if (got == 1) {
                CHECK_INT_EQ(vb_journal_append(j, &w, -1, &err), 0);
                CHECK_INT_EQ(vb_results_put(&done, &w, &err), 0);
                vb_output_row_free(&w);
            }
        }
        vb_output_meta meta = {.settings = NULL, .dp = d.dp, .version = "test",
                               .complete = done.n_done == done.n_rows};
        /* Settings attributes come from the journal's copy on resume; keep
         * them in the output too so the output alone can be resumed. */
        json_t *saved = NULL;
        char jp[700];
        snprintf(jp, sizeof jp, "%s.journal", out);
        CHECK_INT_EQ(vb_journal_flush(j, &err), 0);
        CHECK_INT_EQ(vb_journal_read(jp, &saved, NULL, NULL, NULL, &err), 0);
        meta.settings = saved;
        CHECK_INT_EQ(vb_output_finish(out, &meta, &done, &j, &err), 0);
        if (err.msg[0])
            fprintf(stderr, "  %s\n", err.msg);
        json_decref(saved);
        vb_journal_close(j, NULL);
        vb_results_free(&done);
    }
    vb_input_close(&in);
    free(group);
    free(skip);
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
}

static void test_stop_then_resume(void)
{
    char out[600];
    snprintf(out, sizeof out, "%s/out.h5", dir);
    run(false, 40); /* stopped: 40 rows per group */
    if (d.world_rank == 0) {
        vb_results r = {0};
        vb_err err = {{0}};
        CHECK_INT_EQ(vb_output_read(out, &r, NULL, &err), 0);
        CHECK_INT_EQ(r.n_done, 40 * d.dp);
        vb_results_free(&r);
    }
    run(true, 0);
    if (d.world_rank == 0) {
        vb_results r = {0};
        vb_err err = {{0}};
        CHECK_INT_EQ(vb_output_read(out, &r, NULL, &err), 0);
        CHECK_INT_EQ(r.n_done, SHARDS * ROWS_PER_SHARD);
        int bad = 0;
        for (int64_t i = 0; i < r.n_rows; i++) {
            char want_id[32], want_prefix[48];
            int s = (int)(i / ROWS_PER_SHARD), k = (int)(i % ROWS_PER_SHARD);
            snprintf(want_id, sizeof want_id, "id-%d-%d", s, k);
            snprintf(want_prefix, sizeof want_prefix, "done: s%d r%d ", s, k);
            const vb_output_row *w = r.slot[i];
            if (!w || strcmp(w->id, want_id) || strncmp(w->completion, want_prefix, strlen(want_prefix)))
                bad++;
        }
        CHECK_INT_EQ(bad, 0);
        char jp[700];
        snprintf(jp, sizeof jp, "%s.journal", out);
        struct stat st;
        CHECK(stat(jp, &st) != 0); /* complete: journal removed */
        vb_results_free(&r);
    }
}

/* A signal that reaches one rank stops every rank at the same step. */
static void test_stop_agreed(void)
{
    vb_signals_install();
    vb_signals_reset();
    CHECK(!vb_stop_agreed(MPI_COMM_WORLD, false));
    if (d.world_rank == d.world_size - 1)
        raise(SIGUSR1);
    CHECK(vb_stop_agreed(MPI_COMM_WORLD, false));
    CHECK(vb_stop_requested());
    CHECK_INT_EQ(vb_stop_exit_status(), VB_EXIT_STOPPED);
    vb_signals_reset();
    CHECK_INT_EQ(vb_stop_exit_status(), VB_EXIT_OK);
}

int main(int argc, char **argv)
{
    vb_dist_init(&argc, &argv);
    if (argc < 3) {
        fprintf(stderr, "usage: test_io_dist TP DIR\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[2]);
    vb_err err = {{0}};
    if (vb_dist_setup(&d, atoi(argv[1]), &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    vb_row_channel_open(&ch, MPI_COMM_WORLD);
    if (d.world_rank == 0)
        make_inputs();
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    RUN_TEST(test_stop_then_resume);
    RUN_TEST(test_stop_agreed);
    int failed = test_failed;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    int rc = d.world_rank == 0 ? test_summary() : (failed ? 1 : 0);
    if (d.world_rank == 0 && failed && rc == 0)
        rc = 1;
    vb_row_channel_close(&ch);
    vb_dist_free(&d);
    vb_dist_finalize();
    return rc;
}
