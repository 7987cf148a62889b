/* sim/bddl.h: LIBERO's BDDL task files.
 *
 * Reads the problem files the way LIBERO does (bddl.parsing.scan_tokens +
 * libero/envs/bddl_utils.robosuite_parse_problem): ';' comments dropped, all
 * text lower-cased, s-expressions; sections :language, :regions, :fixtures,
 * :objects, :obj_of_interest, :init, :goal.  Region keys are
 * "<target>_<region>" as upstream.  Errors: "FILE:LINE: expected ...".
 */
#ifndef RDT_SIM_BDDL_H
#define RDT_SIM_BDDL_H

typedef struct {
  char *key;          /* "<target>_<name>", e.g. kitchen_table_plate_init_region */
  char *name;         /* as written, e.g. plate_init_region */
  char *target;       /* kitchen_table, wooden_cabinet_1, ... */
  int nranges;
  double (*ranges)[4];/* (x0 y0 x1 y1) rectangles */
  double yaw[2];      /* :yaw_rotation (default 0 0) */
  double rgba[4];     /* :rgba (default 0 0 1 0) */
  int line;
} bddl_region;

/* Instances grouped by category, in LIBERO's dict order. */
typedef struct {
  char *name;         /* akita_black_bowl_1 */
  char *category;     /* akita_black_bowl */
} bddl_instance;

/* A predicate with one or two arguments: (on a b), (open x). */
typedef struct {
  char *pred;         /* lower case: on, in, open, close, turnon, turnoff, up */
  int nargs;
  char *args[2];
  int line;
} bddl_atom;

typedef struct {
  char *path;
  char *problem;      /* problem class, lower case */
  char *language;     /* :language words joined by spaces */
  int nregions, nfixtures, nobjects, ninterest, ninit, ngoal;
  bddl_region *regions;
  bddl_instance *fixtures;
  bddl_instance *objects;
  char **interest;
  bddl_atom *init;
  bddl_atom *goal;
  char *goal_text;    /* the goal re-printed, e.g. "(and (open x))" */
} bddl_problem;

/* Parse a file; NULL + rdt_error() "FILE:LINE: expected ..." on bad input. */
bddl_problem *bddl_load(const char *path);
/* Parse text (name is used in messages). */
bddl_problem *bddl_parse(const char *text, const char *name);
void bddl_free(bddl_problem *p);

/* Lookups (NULL when absent). */
const bddl_region *bddl_region_find(const bddl_problem *p, const char *key);
const bddl_instance *bddl_fixture_find(const bddl_problem *p, const char *name);
const bddl_instance *bddl_object_find(const bddl_problem *p, const char *name);

#endif
