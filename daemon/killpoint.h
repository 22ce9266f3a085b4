/* killpoint.h - TEST ONLY: SIGKILL shoald at the Nth passage of a named
 * step, so that tests can check what a restart finds (issue 16, "Faults";
 * tests/e2e/daemon_killpoints.sh, docs/shoald.md "Faults"), or make every
 * passage of a step slow, so that tests can order a race
 * (tests/e2e/daemon_moves.sh).
 *
 * Compiled in always, inert unless an environment variable is set when
 * shoald starts:
 *
 *   SHOAL_TEST_KILL_AT=STEP:N   kill at the Nth passage of STEP (N >= 1)
 *   SHOAL_TEST_DELAY_AT=STEP:MS sleep MS (1..60000) at every passage of
 *                               STEP, in the thread passing it
 *   SHOAL_TEST_FAIL_AT=STEP     kp_fail(STEP) is 1 at every passage: the
 *                               step fails as its comment says
 *
 * Just before the signal one line goes to stderr (shoald's log):
 * "killpoint: STEP:N reached, SIGKILL". Never set it in production: it ends
 * the daemon on purpose, with no cleanup at all.
 *
 * Steps (each named where it is passed, in daemon/core or daemon/node.c):
 *   create.row        instance.c: one row of a create written (of a batch
 *                     of more than one: marked uncommitted, so a restart
 *                     removes the whole batch)
 *   start.row         run.c: the row says starting, run begun, no domain yet
 *   start.paused      node.c: the domain created paused, not yet resumed
 *                     (reconcile resumes it: node_resume_started)
 *   start.created     run.c: the domain exists (virDomainCreateXML
 *                     returned), nothing recorded about it yet
 *   start.done        run.c: the start recorded, probes watched
 *   delete.marked     instance.c: the row is marked deleting
 *   delete.destroyed  instance.c: its domain destroyed, the row still there
 *   delete.row        instance.c: the row removed, files and image
 *                     reference not yet
 *   policy.backoff    run.c: a run ended and its restart policy put the
 *                     row in backoff
 *   policy.restart    supervisor.c: the backoff ran out, the start queued
 *   move.marked       plan.c: a running instance's row marked with the
 *                     destination of its cold move, its domain still up
 *   move.stopped      plan.c: its domain stopped on the source host
 *   move.rehomed      plan.c: the row re-homed, wanted and pending, its
 *                     start not yet queued
 *   move.switched     move.c: a live move's published ports switched to
 *                     its stand-in, the instance not yet moved (a restart
 *                     publishes the instance's ports again and deletes the
 *                     stand-in: fleet_move_leftovers)
 *   upload.partial    images.c: a write after which an uncommitted
 *                     upload holds at least 2 MiB (stored chunks, pending)
 *   upload.row        images.c: an upload committed (the image visible),
 *                     the answer not yet sent
 *   pool.goahead      pool.c: a claim's go-ahead sent, the hang-up not
 *                     yet (with SHOAL_TEST_DELAY_AT: a claim's thread that
 *                     lost its CPU between the two)
 *   move.standin      move.c (kp_fail only): a live move's stand-in is
 *                     refused as if its target had no room (507), so the
 *                     move falls back to cold
 *
 * Thread-safe: the passage count is atomic; one process, one kill point.
 */
#ifndef SHOAL_KILLPOINT_H
#define SHOAL_KILLPOINT_H

/* Read SHOAL_TEST_KILL_AT (once; kp_hit calls it, so calling it is
 * optional). A malformed value is reported on stderr and ignored. */
void kp_init(void);

/* One passage of step: sleep when step is SHOAL_TEST_DELAY_AT's, then
 * SIGKILL this process when it is the passage asked for. Costs a string
 * compare or two when a variable is set, nothing otherwise. */
void kp_hit(const char *step);

/* 1 when step is SHOAL_TEST_FAIL_AT's (the caller fails it), else 0. */
int kp_fail(const char *step);

#endif
