/* The process layout under mpirun: TP groups are contiguous world ranks,
 * DP joins equal tp_ranks, and an all-reduce over the TP communicator sums
 * exactly the group's ranks. Run as: mpirun -np N test_dist TP. */
#include <stdlib.h>

#include "mpi/dist.h"
#include "mpi/mpi_check.h"
#include "harness.h"

static int tp_arg;
static vb_dist d;

static void test_layout(void)
{
    CHECK_INT_EQ(d.tp, tp_arg);
    CHECK_INT_EQ(d.dp * d.tp, d.world_size);
    CHECK_INT_EQ(d.dp_rank, d.world_rank / tp_arg);
    CHECK_INT_EQ(d.tp_rank, d.world_rank % tp_arg);
    int r = -1, n = -1;
    MPI_CHECK(MPI_Comm_rank(d.tp_comm, &r));
    MPI_CHECK(MPI_Comm_size(d.tp_comm, &n));
    CHECK_INT_EQ(r, d.tp_rank);
    CHECK_INT_EQ(n, d.tp);
    MPI_CHECK(MPI_Comm_rank(d.dp_comm, &r));
    MPI_CHECK(MPI_Comm_size(d.dp_comm, &n));
    CHECK_INT_EQ(r, d.dp_rank);
    CHECK_INT_EQ(n, d.dp);
    CHECK(d.local_rank >= 0 && d.local_rank < d.local_size);
}

static void test_tp_allreduce_sums_the_group(void)
{
    int mine = d.world_rank, sum = 0, want = 0;
    MPI_CHECK(MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, d.tp_comm));
    for (int r = d.dp_rank * d.tp; r < (d.dp_rank + 1) * d.tp; r++)
        want += r;
    CHECK_INT_EQ(sum, want);
}

static void test_bad_tp_refused(void)
{
    vb_dist bad = {0};
    vb_err err;
    CHECK_INT_EQ(vb_dist_setup(&bad, d.world_size + 1, &err), -1);
    CHECK(strstr(err.msg, "not a multiple") != NULL);
}

int main(int argc, char **argv)
{
    vb_dist_init(&argc, &argv);
    tp_arg = argc > 1 ? atoi(argv[1]) : 1;
    vb_err err;
    if (vb_dist_setup(&d, tp_arg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        vb_dist_finalize();
        return 1;
    }
    RUN_TEST(test_layout);
    RUN_TEST(test_tp_allreduce_sums_the_group);
    RUN_TEST(test_bad_tp_refused);
    /* Every rank must agree the test passed. */
    int local = test_failed, total = 0;
    MPI_CHECK(MPI_Allreduce(&local, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    int rc = d.world_rank == 0 ? test_summary() : (test_failed ? 1 : 0);
    vb_dist_free(&d);
    vb_dist_finalize();
    return total ? 1 : rc;
}
