/* train/launch.h: `rdt train --nproc N`, several local workers from one command
 * (like `accelerate launch --num_processes N`).
 *
 * The command re-executes itself under OpenMPI's mpirun (`mpirun -np N
 * --oversubscribe --bind-to none /proc/self/exe train ARGS`, without
 * --nproc), which starts the workers, wires MPI between them and, when one
 * worker dies or fails, stops the others; the launcher then exits non-zero
 * with a message naming the failure.  SIGINT/SIGTERM given to the launcher
 * are passed on to mpirun.  With --device cuda each worker takes the GPU of
 * its local rank, so N must not exceed the visible GPUs.  As root, mpirun
 * needs OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM)=1; the launcher sets them.
 * RDT_MPIRUN names another mpirun.
 */
#ifndef RDT_TRAIN_LAUNCH_H
#define RDT_TRAIN_LAUNCH_H

/* argv[0] is the subcommand ("train").  Returns the exit code for the
 * command: 0 when every worker finished, else non-zero (message printed).
 * -1 + rdt_error() when the workers could not be started at all. */
int rdt_launch_workers(int nproc, int argc, char **argv);

#endif
