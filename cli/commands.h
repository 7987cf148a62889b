/* cli/commands.h: the entry point of every subcommand, each defined in the
 * module that owns it.  Each takes (argc, argv) with argv[0] = the subcommand
 * name and returns the process exit code. */
#ifndef RDT_COMMANDS_H
#define RDT_COMMANDS_H

int rdt_cmd_train(int argc, char **argv);        /* train/cmd_train.c  */
int rdt_cmd_stats(int argc, char **argv);        /* train/cmd_stats.c  */
int rdt_cmd_eval(int argc, char **argv);         /* eval/cmd_eval.c    */
int rdt_cmd_sim(int argc, char **argv);          /* sim/cmd_sim.c      */
int rdt_cmd_convert(int argc, char **argv);      /* model/cmd_model.c  */
int rdt_cmd_init(int argc, char **argv);         /* model/cmd_model.c  */
int rdt_cmd_predict(int argc, char **argv);      /* model/cmd_predict.c */
int rdt_cmd_encode_lang(int argc, char **argv);  /* model/cmd_encode.c */
int rdt_cmd_inspect(int argc, char **argv);      /* core/inspect.c     */

/* rdt bench TARGET: each prints one JSON object on stdout. */
int rdt_bench_kernels(int argc, char **argv);    /* kernels/bench_kernels.c */
int rdt_bench_policy(int argc, char **argv);     /* model/bench_model.c */
int rdt_bench_encoders(int argc, char **argv);   /* model/bench_encoders.c */
int rdt_bench_train(int argc, char **argv);      /* train/bench_train.c */
int rdt_bench_sim(int argc, char **argv);        /* sim/bench_sim.c */
int rdt_bench_eval_policy(int argc, char **argv); /* eval/bench_eval.c */

#endif
