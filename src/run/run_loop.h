/* The step loop of one dp group: each step schedules sequences, builds the
 * batch, runs the forward pass, samples one token per sequence that
 * samples (the same on every rank of the group), and hands each token to
 * its sequence (run_seq.h), which may finish it; then the leader sends or
 * files the finished rows. Before each step the group agrees whether to
 * stop (util/signals.h vb_stop_agreed). A failure inside the loop ends the
 * job (run_die). */
#ifndef VB_RUN_LOOP_H
#define VB_RUN_LOOP_H

#include <stdbool.h>

#include "run/run_state.h"

/* Runs this group's sequences to the end or to a stop request. Returns
 * true when stopped early. */
bool run_loop(run_state *r);

#endif
