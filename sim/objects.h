/* sim/objects.h: the LIBERO object classes that libero_90 uses.
 *
 * One row per registered category of the libero/envs/objects modules: where its XML
 * lives under the LIBERO assets folder and, for articulated objects, the
 * joint thresholds of is_open / is_close / turn_on / turn_off.
 */
#ifndef RDT_SIM_OBJECTS_H
#define RDT_SIM_OBJECTS_H

/* How a joint value is compared with a threshold. */
typedef enum { SIM_CMP_NONE, SIM_CMP_LT, SIM_CMP_GT, SIM_CMP_GE } sim_cmp;

typedef struct {
  const char *category;   /* BDDL type, e.g. wooden_cabinet */
  const char *xml;        /* path under assets/ */
  sim_cmp open_cmp;  double open_thr;     /* is_open(q):  q CMP thr */
  sim_cmp close_cmp; double close_thr;    /* is_close(q) */
  sim_cmp on_cmp;    double on_thr;       /* turn_on(q) */
  sim_cmp off_cmp;   double off_thr;      /* turn_off(q) */
  int burner_site;        /* FlatStove: a "burner" site follows turn_on (visual) */
} sim_object_class;

/* The class of a category, or NULL. */
const sim_object_class *sim_object_class_find(const char *category);

/* q CMP thr. */
int sim_cmp_eval(sim_cmp c, double q, double thr);

#endif
