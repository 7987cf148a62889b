/* sim/predicates.c: LIBERO's goal predicates (see predicates.h). */
#include "sim/predicates.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

/* Name of a predicate kind. */
const char *pred_name(pred_kind k) {
  static const char *names[] = {"On", "In", "Open", "Close", "TurnOn", "TurnOff", "Up"};
  return names[k];
}

/* Resolve a name as LIBERO's object_states_dict would (objects, fixtures, regions). */
static int pred_ref_find(const sim_scene *s, const char *name, pred_ref *r) {
  r->obj = sim_scene_object(s, name);
  r->region = r->obj < 0 ? sim_scene_region(s, name) : -1;
  if (r->region >= 0 && s->region[r->region].site < 0) r->region = -1;
  return r->obj >= 0 || r->region >= 0 ? 0 : -1;
}

/* Check one atom can be evaluated the way LIBERO evaluates it. */
static int pred_check(const sim_scene *s, const bddl_atom *t, pred_atom *a) {
  const char *file = s->bddl->path;
  static const char *words[] = {"on", "in", "open", "close", "turnon", "turnoff", "up"};
  int k = 0;
  while (k < 7 && strcmp(t->pred, words[k])) k++;
  if (k == 7) return rdt_fail("%s:%d: expected a goal predicate On, In, Open, Close, TurnOn, TurnOff or Up, got %s", file, t->line, t->pred);
  a->kind = (pred_kind)k;
  int binary = k <= PRED_IN;
  if (t->nargs != (binary ? 2 : 1))
    return rdt_fail("%s:%d: expected %d argument(s) for %s", file, t->line, binary ? 2 : 1, t->pred);
  a->b.obj = a->b.region = -1;
  for (int i = 0; i < t->nargs; i++) {
    pred_ref *r = i ? &a->b : &a->a;
    if (pred_ref_find(s, t->args[i], r))
      return rdt_fail("%s:%d: expected an object, fixture or region of the scene, got '%s'", file, t->line, t->args[i]);
  }
  if (binary && a->a.obj < 0)
    return rdt_fail("%s:%d: the first argument of %s must be an object, got region %s", file, t->line, t->pred, t->args[0]);
  if (k == PRED_IN && a->b.obj >= 0)
    return rdt_fail("%s:%d: In needs a region as its target (LIBERO objects have no in_box), got %s", file, t->line, t->args[1]);
  if (k >= PRED_OPEN && k <= PRED_TURNOFF) {
    const sim_object *o = a->a.obj >= 0 ? &s->obj[a->a.obj] : s->region[a->a.region].parent >= 0
                                                              ? &s->obj[s->region[a->a.region].parent] : NULL;
    const sim_object_class *c = o ? o->cls : NULL;
    sim_cmp cmp = !c ? SIM_CMP_NONE : k == PRED_OPEN ? c->open_cmp : k == PRED_CLOSE ? c->close_cmp
                                      : k == PRED_TURNON ? c->on_cmp : c->off_cmp;
    if (cmp == SIM_CMP_NONE || (a->a.region >= 0 && k >= PRED_TURNON))
      return rdt_fail("%s:%d: %s is not defined for %s", file, t->line, t->pred, t->args[0]);
    if (a->a.obj >= 0 && !o->fixture)
      return rdt_fail("%s:%d: %s of a movable object (free joint) is not supported", file, t->line, t->pred);
  }
  return 0;
}

/* Resolve the goal. */
int pred_compile(const sim_scene *s, pred_atom **atoms, int *n) {
  const bddl_problem *b = s->bddl;
  *atoms = rdt_calloc((size_t)(b->ngoal ? b->ngoal : 1), sizeof **atoms);
  *n = b->ngoal;
  for (int i = 0; i < b->ngoal; i++)
    if (pred_check(s, &b->goal[i], &(*atoms)[i])) return -1;
  return 0;
}

/* ------------------------------------------------------------------ geometry */

/* Is geom g one of object o's contact geoms? */
static int pred_geom_of(const sim_object *o, int g) {
  for (int i = 0; i < o->ngeom; i++)
    if (o->geoms[i] == g) return 1;
  return 0;
}

/* robosuite check_contact(model1, model2): any active contact between their contact geoms. */
static int pred_contact(const mjData *d, const sim_object *a, const sim_object *b) {
  for (int i = 0; i < d->ncon; i++) {
    int g1 = d->contact[i].geom1, g2 = d->contact[i].geom2;
    if ((pred_geom_of(a, g1) && pred_geom_of(b, g2)) || (pred_geom_of(a, g2) && pred_geom_of(b, g1))) return 1;
  }
  return 0;
}

/* mat (row-major 3x3) times v. */
static void pred_matvec(const mjtNum *mat, const double *v, double *out) {
  for (int i = 0; i < 3; i++) out[i] = mat[3 * i] * v[0] + mat[3 * i + 1] * v[1] + mat[3 * i + 2] * v[2];
}

/* SiteObject.under: d = mat @ (p - site); size_z - 0.005 < d_z < size_z + 0.10
 * and |d_xy| < size_xy. */
static int pred_under(const sim_region *r, const mjData *d, const double *p) {
  const mjtNum *pos = d->site_xpos + 3 * r->site, *mat = d->site_xmat + 9 * r->site;
  double diff[3] = {p[0] - pos[0], p[1] - pos[1], p[2] - pos[2]}, dp[3];
  pred_matvec(mat, diff, dp);
  return r->size[2] - 0.005 < dp[2] && dp[2] < r->size[2] + 0.10 && fabs(dp[0]) < r->size[0] && fabs(dp[1]) < r->size[1];
}

/* SiteObject.in_box: s = |mat @ size|; site - s < p < site + s with the lower z 0.01 lower. */
static int pred_in_box(const sim_region *r, const mjData *d, const double *p) {
  const mjtNum *pos = d->site_xpos + 3 * r->site, *mat = d->site_xmat + 9 * r->site;
  double total[3];
  pred_matvec(mat, r->size, total);
  for (int i = 0; i < 3; i++) {
    double t = fabs(total[i]), lb = pos[i] - t, ub = pos[i] + t;
    if (i == 2) lb -= 0.01;
    if (!(p[i] > lb && p[i] < ub)) return 0;
  }
  return 1;
}

/* Joint rule over a list of qpos addresses: any (Open/TurnOn) or all (Close/TurnOff). */
static int pred_joints(const mjData *d, const int *adr, int n, sim_cmp cmp, double thr, int all) {
  for (int i = 0; i < n; i++) {
    int v = sim_cmp_eval(cmp, d->qpos[adr[i]], thr);
    if (all && !v) return 0;
    if (!all && v) return 1;
  }
  return all;
}

/* Value of one atom. */
int pred_eval(const sim_scene *s, const mjData *d, const pred_atom *a) {
  const sim_object *ao = a->a.obj >= 0 ? &s->obj[a->a.obj] : NULL;
  const sim_region *ar = a->a.region >= 0 ? &s->region[a->a.region] : NULL;
  switch (a->kind) {
    case PRED_ON: {  /* b.check_ontop(a) */
      const mjtNum *pa = d->xpos + 3 * ao->body;
      if (a->b.obj >= 0) {
        const sim_object *bo = &s->obj[a->b.obj];
        const mjtNum *pb = d->xpos + 3 * bo->body;
        double dx = pb[0] - pa[0], dy = pb[1] - pa[1];
        return pb[2] <= pa[2] && pred_contact(d, bo, ao) && sqrt(dx * dx + dy * dy) < 0.03;
      }
      const sim_region *br = &s->region[a->b.region];
      int ok = pred_under(br, d, pa);
      if (ok && br->parent >= 0) ok = pred_contact(d, &s->obj[br->parent], ao);
      return ok;
    }
    case PRED_IN:  /* region.check_contact is always true; check_contain */
      return pred_in_box(&s->region[a->b.region], d, d->xpos + 3 * ao->body);
    case PRED_OPEN:
    case PRED_CLOSE: {
      const sim_object *owner = ao ? ao : &s->obj[ar->parent];
      const int *adr = ao ? ao->jnt_qpos : ar->jnt_qpos;
      int n = ao ? ao->njoint : ar->njoint;
      if (a->kind == PRED_OPEN) return pred_joints(d, adr, n, owner->cls->open_cmp, owner->cls->open_thr, 0);
      return pred_joints(d, adr, n, owner->cls->close_cmp, owner->cls->close_thr, 1);
    }
    case PRED_TURNON: return pred_joints(d, ao->jnt_qpos, ao->njoint, ao->cls->on_cmp, ao->cls->on_thr, 0);
    case PRED_TURNOFF: return pred_joints(d, ao->jnt_qpos, ao->njoint, ao->cls->off_cmp, ao->cls->off_thr, 1);
    case PRED_UP:
      return (ao ? d->xpos[3 * ao->body + 2] : d->site_xpos[3 * ar->site + 2]) >= 1.0;
  }
  return 0;
}

/* All atoms true (every atom is evaluated, as upstream's loop does). */
int pred_goal(const sim_scene *s, const mjData *d, const pred_atom *atoms, int n) {
  int ok = 1;
  for (int i = 0; i < n; i++) ok = pred_eval(s, d, &atoms[i]) && ok;
  return ok;
}

/* Burner site alpha after each step: visible iff turn_on; LIBERO toggles
 * alpha to 1 - alpha when the visibility flag and the alpha sign disagree. */
void pred_update_visuals(const sim_scene *s, const mjData *d) {
  for (int i = 0; i < s->nobj; i++) {
    const sim_object *o = &s->obj[i];
    if (o->burner_site < 0) continue;
    int visible = pred_joints(d, o->jnt_qpos, o->njoint, o->cls->on_cmp, o->cls->on_thr, 0);
    float *alpha = s->m->site_rgba + 4 * o->burner_site + 3;
    if ((*alpha <= 0 && visible) || (*alpha > 0 && !visible)) *alpha = (float)(1.0 - (double)*alpha);
  }
}
