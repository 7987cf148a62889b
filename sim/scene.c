/* sim/scene.c: compose a LIBERO task's MJCF as robosuite/LIBERO do (scene.h).
 *
 * Each step names the upstream code it mirrors.  Python floats are doubles
 * and every number written here is printed with round-trip precision, so the
 * compiled model sees the same values as robosuite's XML string.
 */
#include "sim/scene.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "sim/xml.h"

/* ------------------------------------------------------------------ problem classes */

typedef struct {
  const char *name;
  const char *pos, *quat;
} sim_camera_spec;

/* LIBERO envs/problems/libero_*_manipulation.py: one row per problem class. */
typedef struct {
  const char *problem;        /* lower-case class name in the BDDL */
  const char *workspace;      /* table category / region prefix */
  const char *scene_xml;      /* under assets/ */
  const char *table_body;     /* arena body that receives the table zones */
  const char *floor_tex, *wall_tex;
  double table_full[3], offset[3];
  int mounted;                /* MountedPanda (RethinkMount) vs OnTheGroundPanda */
  double base_dx, base_z;     /* base_xpos_offset: (-dx - L/2, 0, z) */
  int kitchen_arena;          /* KitchenTableArena.configure_location runs */
  double zone_dz;             /* added to table-zone site z */
  sim_camera_spec cams[4];
} sim_problem_class;

#define SIM_GALLERY {"galleryview", "2.844547668904445 2.1279684793440667 3.128616846013882", \
                     "0.42261379957199097 0.23374411463737488 0.41646939516067505 0.7702690958976746"}
#define SIM_AGENT_QUAT "0.6380177736282349 0.3048497438430786 0.30484986305236816 0.6380177736282349"

static const sim_problem_class sim_problems[] = {
    {"libero_kitchen_tabletop_manipulation", "kitchen_table",
     "scenes/libero_kitchen_tabletop_base_style.xml", "table", "gray_ceramic_tile.png",
     "yellow_linen_wall_texture.png", {1.0, 1.2, 0.05}, {0.0, 0, 0.90}, 1, 0.16, 0, 1, -0.90,
     {{"agentview", "0.6586131746834771 0.0 1.6103500240372423", SIM_AGENT_QUAT},
      {"frontview", "1.0 0.0 1.48", "0.56 0.43 0.43 0.56"},
      SIM_GALLERY,
      {"paperview", "2.1 0.535 2.075", "0.513 0.353 0.443 0.645"}}},
    {"libero_living_room_tabletop_manipulation", "living_room_table",
     "scenes/libero_living_room_tabletop_base_style.xml", "living_room_table",
     "seamless_wood_planks_floor.png", "light-gray-plaster.png", {0.70, 1.6, 0.024}, {0, 0, 0.41},
     0, 0.16, 0.42, 0, 0.0,
     {{"agentview", "0.6065773716836134 0.0 0.96",
       "0.6182166934013367 0.3432307541370392 0.3432314395904541 0.6182177066802979"},
      {"frontview", "1.5 0.0 0.9", "0.56 0.43 0.43 0.56"},
      SIM_GALLERY,
      {"paperview", "2.1 0.735 1.875", "0.513 0.353 0.443 0.645"}}},
    {"libero_study_tabletop_manipulation", "study_table", "scenes/libero_study_base_style.xml",
     "study_table", "light-gray-floor-tile.png", "light-gray-plaster.png", {1.0, 1.2, 0.05},
     {-0.2, 0, 0.867}, 1, 0.25, 0, 0, 0.0,
     {{"agentview", "0.4586131746834771 0.0 1.6103500240372423", SIM_AGENT_QUAT},
      {"frontview", "1.0 0.0 1.48", "0.56 0.43 0.43 0.56"},
      SIM_GALLERY,
      {"paperview", "2.1 0.535 2.075", "0.513 0.353 0.443 0.645"}}},
};

/* robosuite MountedPanda / OnTheGroundPanda init_qpos and PandaGripper init_qpos. */
static const double sim_panda_init_qpos[7] = {0, -1.61037389e-01, 0.00, -2.44459747e00, 0.00,
                                              2.22675220e00, M_PI / 4};
static const double sim_gripper_init_qpos[2] = {0.020833, -0.020833};

/* ------------------------------------------------------------------ paths */

/* Absolute, lexically normalised path (os.path.abspath). */
static char *sim_abspath(const char *path) {
  char cwd[4096];
  char *joined;
  if (path[0] == '/') {
    joined = rdt_strdup(path);
  } else {
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "/");
    joined = rdt_path_join(cwd, path);
  }
  size_t n = strlen(joined);
  char **parts = rdt_malloc((n + 1) * sizeof *parts);
  int np = 0;
  char *save = NULL;
  for (char *tok = strtok_r(joined, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
    if (!strcmp(tok, ".")) continue;
    if (!strcmp(tok, "..")) {
      if (np) np--;
      continue;
    }
    parts[np++] = tok;
  }
  char *out = rdt_malloc(n + 2);
  size_t o = 0;
  for (int i = 0; i < np; i++) o += (size_t)sprintf(out + o, "/%s", parts[i]);
  if (!np) strcpy(out, "/");
  free(parts);
  free(joined);
  return out;
}

/* ------------------------------------------------------------------ MujocoXML */

/* Children robosuite's MujocoXML guarantees under <mujoco>. */
static const char *sim_sections[] = {"worldbody", "actuator", "sensor", "asset", "tendon", "equality", "contact"};

/* Section element of a document (created by mjcf_load, always present). */
static xml_node *mjcf_section(xml_node *root, const char *name) { return xml_child(root, name, NULL, NULL); }

/* Apply default classes inline (MujocoXML._replace_defaults_inline): every
 * element loses its class attribute and gains the class's attributes for its
 * tag that it does not set itself. */
static int mjcf_inline_defaults(xml_node *n, const xml_node *def, const char *file) {
  const char *cls = xml_get(n, "class");
  if (cls) {
    const xml_node *c = def ? xml_child(def, "default", "class", cls) : NULL;
    if (!c) return rdt_fail("%s:%d: unknown default class '%s'", file, n->line, cls);
    const xml_node *attrs = NULL;
    for (int i = 0; i < c->nchild; i++)  /* the last child with this tag wins (dict) */
      if (!strcmp(c->child[i]->tag, n->tag)) attrs = c->child[i];
    char *keep = rdt_strdup(cls);
    xml_unset(n, "class");
    if (attrs)
      for (int i = 0; i < attrs->nattr; i++)
        if (!xml_get(n, attrs->keys[i])) xml_set(n, attrs->keys[i], attrs->values[i]);
    free(keep);
  }
  for (int i = 0; i < n->nchild; i++)
    if (mjcf_inline_defaults(n->child[i], def, file)) return -1;
  return 0;
}

/* Load an MJCF file as robosuite's MujocoXML: sections created, default
 * classes inlined and removed, asset files made absolute. */
static xml_node *mjcf_load(const char *path) {
  xml_node *root = xml_load(path);
  if (!root) return NULL;
  for (size_t i = 0; i < sizeof sim_sections / sizeof *sim_sections; i++)
    if (!mjcf_section(root, sim_sections[i])) xml_append(root, xml_new(sim_sections[i]));
  xml_node *def = mjcf_section(root, "default");
  int di = def ? xml_index(root, def) : -1;
  if (def) xml_detach(root, di);
  int rc = mjcf_inline_defaults(root, def, path);
  xml_free(def);
  if (rc) {
    xml_free(root);
    return NULL;
  }
  char *abs = sim_abspath(path);
  char *folder = rdt_dirname(abs);
  xml_node *asset = mjcf_section(root, "asset");
  for (int i = 0; i < asset->nchild; i++) {
    const char *file = xml_get(asset->child[i], "file");
    if (!file) continue;
    char *joined = file[0] == '/' ? rdt_strdup(file) : rdt_path_join(folder, file);
    char *norm = sim_abspath(joined);
    xml_set(asset->child[i], "file", norm);
    free(joined);
    free(norm);
  }
  free(folder);
  free(abs);
  return root;
}

/* robosuite add_prefix: prefix every name-referencing attribute that does
 * not already start with the prefix (MUJOCO_NAMED_ATTRIBUTES). */
static void mjcf_prefix(xml_node *n, const char *prefix) {
  static const char *named[] = {"class", "childclass", "name", "objname", "material", "texture", "joint",
                                "joint1", "joint2", "jointinparent", "geom", "geom1", "geom2", "mesh",
                                "fixed", "actuator", "tendon", "tendon1", "tendon2", "slidesite",
                                "cranksite", "body", "body1", "body2", "hfield", "target", "prefix", "site"};
  size_t pl = strlen(prefix);
  for (size_t k = 0; k < sizeof named / sizeof *named; k++) {
    const char *v = xml_get(n, named[k]);
    if (!v || !strncmp(v, prefix, pl)) continue;
    char *nv = rdt_malloc(pl + strlen(v) + 1);
    sprintf(nv, "%s%s", prefix, v);
    xml_set(n, named[k], nv);
    free(nv);
  }
  for (int i = 0; i < n->nchild; i++) mjcf_prefix(n->child[i], prefix);
}

/* robosuite recolor_collision_geoms: group 0/absent geoms get rgba, lose material. */
static void mjcf_recolor(xml_node *n, const char *rgba, int skip_floor) {
  if (!strcmp(n->tag, "geom")) {
    const char *g = xml_get(n, "group"), *name = xml_get(n, "name");
    if ((!g || !strcmp(g, "0")) && !(skip_floor && name && !strcmp(name, "floor"))) {
      xml_set(n, "rgba", rgba);
      xml_unset(n, "material");
    }
  }
  for (int i = 0; i < n->nchild; i++) mjcf_recolor(n->child[i], rgba, skip_floor);
}

/* MujocoXMLModel: unnamed geoms become g<k>_col / g<k>_vis (counters per kind). */
static int mjcf_name_geoms(xml_node *n, int *col, int *vis, const char *file) {
  if (!strcmp(n->tag, "geom") && !xml_get(n, "name")) {
    const char *g = xml_get(n, "group");
    int is_vis = g && !strcmp(g, "1");
    if (g && strcmp(g, "0") && !is_vis) return rdt_fail("%s:%d: geom group %s has no robosuite name mapping", file, n->line, g);
    char name[32];
    snprintf(name, sizeof name, "g%d_%s", is_vis ? (*vis)++ : (*col)++, is_vis ? "vis" : "col");
    xml_set(n, "name", name);
  }
  for (int i = 0; i < n->nchild; i++)
    if (mjcf_name_geoms(n->child[i], col, vis, file)) return -1;
  return 0;
}

/* Joint elements of a subtree in document order (robosuite _element_filter "joints"). */
static void mjcf_collect_joints(xml_node *n, xml_node ***out, int *count) {
  if (!strcmp(n->tag, "joint") && !xml_get(n, "joint") && !xml_get(n, "joint1")) {
    *out = rdt_realloc(*out, (size_t)(*count + 1) * sizeof **out);
    (*out)[(*count)++] = n;
  }
  for (int i = 0; i < n->nchild; i++)
    if (strcmp(n->child[i]->tag, "actuator")) mjcf_collect_joints(n->child[i], out, count);
}

/* A robosuite MujocoXMLModel (robot, mount or gripper) from a loaded tree:
 * geoms named, names prefixed, collision geoms recoloured.  Frees root on error. */
static xml_node *mjcf_model_of(xml_node *root, const char *name, const char *prefix, const char *rgba) {
  if (!root) return NULL;
  int col = 0, vis = 0;
  if (mjcf_name_geoms(root, &col, &vis, name)) {
    xml_free(root);
    return NULL;
  }
  mjcf_prefix(root, prefix);
  mjcf_recolor(mjcf_section(root, "worldbody"), rgba, 0);
  return root;
}

/* A robosuite MujocoXMLModel from a file. */
static xml_node *mjcf_model(const char *path, const char *prefix, const char *rgba) {
  return mjcf_model_of(mjcf_load(path), path, prefix, rgba);
}

/* The single top-level body of a model's worldbody. */
static xml_node *mjcf_root_body(xml_node *root) { return xml_child(mjcf_section(root, "worldbody"), "body", NULL, NULL); }

/* MujocoXML.merge_assets: append assets whose (tag, name) is not present. */
static void mjcf_merge_assets(xml_node *dst_root, xml_node *src_root) {
  xml_node *dst = mjcf_section(dst_root, "asset"), *src = mjcf_section(src_root, "asset");
  while (src->nchild) {
    xml_node *a = xml_detach(src, 0);
    const char *name = xml_get(a, "name");
    int dup = 0;
    for (int i = 0; i < dst->nchild && !dup; i++) {
      const char *dn = xml_get(dst->child[i], "name");
      dup = !strcmp(dst->child[i]->tag, a->tag) && ((!name && !dn) || (name && dn && !strcmp(name, dn)));
    }
    if (dup) xml_free(a);
    else xml_append(dst, a);
  }
}

/* MujocoXML.merge: bodies of src's worldbody into dst body (or worldbody),
 * assets, actuators, sensors, tendons, equalities and contacts. */
static void mjcf_merge(xml_node *dst_root, xml_node *into, xml_node *src_root) {
  xml_node *src_wb = mjcf_section(src_root, "worldbody");
  while (src_wb->nchild) xml_append(into, src_wb->child[0]);
  mjcf_merge_assets(dst_root, src_root);
  static const char *rest[] = {"actuator", "sensor", "tendon", "equality", "contact"};
  for (int k = 0; k < 5; k++) {
    xml_node *s = mjcf_section(src_root, rest[k]), *d = mjcf_section(dst_root, rest[k]);
    while (s->nchild) xml_append(d, s->child[0]);
  }
}

/* ------------------------------------------------------------------ robot */

/* Robot model with mount and gripper, base placed (robosuite Robot.load_model,
 * SingleArm.load_model, RobotModel.add_mount/add_gripper/set_base_xpos,
 * LIBERO MountedPanda/OnTheGroundPanda). */
static xml_node *sim_build_robot(const char *rs_assets, const sim_problem_class *pc) {
  char *path = rdt_path_join(rs_assets, "robots/panda/robot.xml");
  xml_node *robot = mjcf_model(path, "robot0_", "0 0.5 0 1");
  free(path);
  if (!robot) return NULL;
  xml_node *base = mjcf_root_body(robot);
  double base_offset[3] = {0, 0, 0};
  if (xml_get(base, "pos")) xml_numbers(xml_get(base, "pos"), base_offset, 3);
  /* RobotModel.__init__: frictionloss 0.1, damping 0.1, armature 5/(i+1) where
   * absent; then the Panda classes force damping. */
  xml_node **joints = NULL;
  int nj = 0;
  mjcf_collect_joints(robot, &joints, &nj);
  static const double damping[7] = {0.1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01};
  for (int i = 0; i < nj; i++) {
    double fl = 0.1, arm = 5.0 / (i + 1);
    if (!xml_get(joints[i], "frictionloss")) xml_set_numbers(joints[i], "frictionloss", &fl, 1);
    if (!xml_get(joints[i], "armature")) xml_set_numbers(joints[i], "armature", &arm, 1);
    if (i < 7) xml_set_numbers(joints[i], "damping", &damping[i], 1);
  }
  free(joints);
  if (nj != 7) {
    xml_free(robot);
    return rdt_fail("robots/panda/robot.xml: expected 7 arm joints, found %d", nj), NULL;
  }
  /* RethinkMount (top_offset z -0.01), or robosuite's NullMount (mounts/null_mount.xml:
   * one empty body, top_offset 0) for OnTheGroundPanda, whose default_mount is None */
  static const char null_mount[] = "<mujoco model=\"null_mount\"><worldbody><body name=\"base\" pos=\"0 0 0\">"
                                   "</body></worldbody></mujoco>";
  xml_node *mount;
  if (pc->mounted) {
    path = rdt_path_join(rs_assets, "mounts/rethink_mount.xml");
    mount = mjcf_model(path, "mount0_", "0.5 0.5 0 1");
    free(path);
  } else {
    xml_node *t = xml_parse(null_mount, sizeof null_mount - 1, "null_mount.xml");
    for (size_t i = 0; t && i < sizeof sim_sections / sizeof *sim_sections; i++)
      if (!mjcf_section(t, sim_sections[i])) xml_append(t, xml_new(sim_sections[i]));
    mount = mjcf_model_of(t, "null_mount.xml", "mount0_", "0.5 0.5 0 1");
  }
  if (!mount) {
    xml_free(robot);
    return NULL;
  }
  xml_node *mroot = mjcf_root_body(mount);
  double mbase[3] = {0, 0, 0}, off[3], bottom[3];
  if (xml_get(mroot, "pos")) xml_numbers(xml_get(mroot, "pos"), mbase, 3);
  const double mtop[3] = {0, 0, pc->mounted ? -0.01 : 0.0};
  for (int k = 0; k < 3; k++) off[k] = base_offset[k] - mtop[k];
  xml_set_numbers(mroot, "pos", off, 3);
  mjcf_merge(robot, base, mount);
  xml_free(mount);
  for (int k = 0; k < 3; k++) bottom[k] = (mbase[k] - mtop[k]) + base_offset[k];
  path = rdt_path_join(rs_assets, "grippers/panda_gripper.xml");
  xml_node *gripper = mjcf_model(path, "gripper0_", "0 0 0.5 1");
  free(path);
  if (!gripper) {
    xml_free(robot);
    return NULL;
  }
  xml_node *hand = xml_find(robot, "body", "name", "robot0_right_hand");
  if (!hand) {
    xml_free(robot);
    xml_free(gripper);
    return rdt_fail("robots/panda/robot.xml: expected a body named right_hand"), NULL;
  }
  mjcf_merge(robot, hand, gripper);
  xml_free(gripper);
  double xpos[3] = {-pc->base_dx - pc->table_full[0] / 2, 0, pc->base_z}, pos[3];
  for (int k = 0; k < 3; k++) pos[k] = xpos[k] - bottom[k];
  xml_set_numbers(base, "pos", pos, 3);
  return robot;
}

/* ------------------------------------------------------------------ arena */

/* Replace the file name of a texture, keeping its folder (LIBERO arenas' styles). */
static void sim_arena_texture(xml_node *arena, const char *tex, const char *file) {
  xml_node *t = xml_child(mjcf_section(arena, "asset"), "texture", "name", tex);
  if (!t || !xml_get(t, "file")) return;
  char *folder = rdt_dirname(xml_get(t, "file"));
  char *path = rdt_path_join(folder, file);
  xml_set(t, "file", path);
  free(path);
  free(folder);
}

/* KitchenTableArena.configure_location. */
static void sim_arena_kitchen(xml_node *arena, const sim_problem_class *pc) {
  xml_node *wb = mjcf_section(arena, "worldbody");
  xml_node *floor = xml_child(wb, "geom", "name", "floor");
  xml_node *table = xml_child(wb, "body", "name", "table");
  if (!table) return;
  double half[3], center[3], zero[3] = {0, 0, 0};
  for (int k = 0; k < 3; k++) half[k] = pc->table_full[k] / 2;
  for (int k = 0; k < 3; k++) center[k] = (zero[k] + (k == 2 ? -half[2] : 0.0)) + pc->offset[k];
  if (floor) xml_set_numbers(floor, "pos", zero, 3);
  xml_set_numbers(table, "pos", center, 3);
  const double friction[3] = {1, 0.005, 0.0001};
  xml_node *col = xml_child(table, "geom", "name", "table_collision");
  xml_node *vis = xml_child(table, "geom", "name", "table_visual");
  xml_node *top = xml_child(table, "site", "name", "table_top");
  if (col) xml_set_numbers(col, "size", half, 3), xml_set_numbers(col, "friction", friction, 3);
  if (vis) xml_set_numbers(vis, "size", half, 3);
  double tp[3] = {0, 0, half[2]};
  if (top) xml_set_numbers(top, "pos", tp, 3);
  const double dx[4] = {0.1, -0.1, -0.1, 0.1}, dy[4] = {0.1, 0.1, -0.1, -0.1};
  for (int i = 0; i < 4; i++) {
    char name[32];
    snprintf(name, sizeof name, "table_leg%d_visual", i + 1);
    xml_node *leg = xml_child(table, "geom", "name", name);
    if (!leg) continue;
    double x = 0, y = 0;
    if (half[0] > fabs(dx[i] * 2.0)) x += copysign(1.0, dx[i]) * half[0] - dx[i];
    if (half[1] > fabs(dy[i] * 2.0)) y += copysign(1.0, dy[i]) * half[1] - dy[i];
    double z = (pc->offset[2] - half[2]) / 2.0;
    double p[3] = {x, y, -z}, s[2] = {0.025, z};
    xml_set_numbers(leg, "pos", p, 3);
    xml_set_numbers(leg, "size", s, 2);
  }
}

/* robosuite Arena.set_camera: edit the first camera of that name or append one. */
static void sim_arena_camera(xml_node *arena, const sim_camera_spec *c) {
  xml_node *wb = mjcf_section(arena, "worldbody");
  xml_node *cam = xml_find(wb, "camera", "name", c->name);
  if (!cam) {
    cam = xml_new("camera");
    xml_set(cam, "pos", c->pos);
    xml_set(cam, "quat", c->quat);
    xml_set(cam, "name", c->name);
    xml_append(wb, cam);
    return;
  }
  xml_set(cam, "pos", c->pos);
  xml_set(cam, "quat", c->quat);
}

/* The arena of a problem class with its style, cameras and table zones. */
static xml_node *sim_build_arena(const char *libero_assets, const sim_problem_class *pc, const bddl_problem *b) {
  char *path = rdt_path_join(libero_assets, pc->scene_xml);
  xml_node *arena = mjcf_load(path);
  free(path);
  if (!arena) return NULL;
  mjcf_recolor(mjcf_section(arena, "worldbody"), "0.5 0.5 0 1", 1);
  if (pc->kitchen_arena) sim_arena_kitchen(arena, pc);
  sim_arena_texture(arena, "texplane", pc->floor_tex);
  sim_arena_texture(arena, "tex-wall", pc->wall_tex);
  for (int i = 0; i < 4; i++) sim_arena_camera(arena, &pc->cams[i]);
  /* _load_sites_in_arena: regions of the workspace become TargetZone box sites */
  xml_node *table = xml_find(mjcf_section(arena, "worldbody"), "body", "name", pc->table_body);
  for (int i = 0; i < b->nregions; i++) {
    const bddl_region *r = &b->regions[i];
    if (!strstr(r->key, pc->workspace)) continue;
    if (!table) {
      xml_free(arena);
      return rdt_fail("%s: expected a body named %s", pc->scene_xml, pc->table_body), NULL;
    }
    if (r->nranges < 1 || r->ranges[0][2] < r->ranges[0][0] || r->ranges[0][3] < r->ranges[0][1]) {
      xml_free(arena);
      return rdt_fail("%s:%d: expected a range (x0 y0 x1 y1) with x1 >= x0 and y1 >= y0 for region %s",
                      b->path, r->line, r->name), NULL;
    }
    const double *q = r->ranges[0];
    double size[3] = {(q[2] - q[0]) / 2, (q[3] - q[1]) / 2, 0.007};
    double pos[3] = {(q[2] + q[0]) / 2 + pc->offset[0], (q[3] + q[1]) / 2 + pc->offset[1],
                     pc->offset[2] + pc->zone_dz};
    const double quat[4] = {1, 0, 0, 0};
    xml_node *s = xml_new("site");
    xml_set_numbers(s, "quat", quat, 4);
    xml_set(s, "type", "box");
    xml_set_numbers(s, "pos", pos, 3);
    xml_set_numbers(s, "size", size, 3);
    xml_set_numbers(s, "rgba", r->rgba, 4);
    xml_set(s, "name", r->key);
    xml_append(table, s);
  }
  return arena;
}

/* ------------------------------------------------------------------ objects */

/* A LIBERO object prepared as robosuite's MujocoXMLObject. */
typedef struct {
  xml_node *root;      /* the prefixed file tree (assets, worldbody for region lookup) */
  xml_node *main;      /* the "main" body to merge */
  double bottom_z;     /* bottom_site z (placement) */
} sim_object_xml;

/* Geoms of a subtree in document order with their parents. */
static void sim_collect_geoms(xml_node *n, xml_node ***g, int *count) {
  for (int i = 0; i < n->nchild; i++) {
    xml_node *c = n->child[i];
    if (!strcmp(c->tag, "geom")) {
      *g = rdt_realloc(*g, (size_t)(*count + 1) * sizeof **g);
      (*g)[(*count)++] = c;
    }
    sim_collect_geoms(c, g, count);
  }
}

/* MujocoXMLObject(fname, name, joints, obj_type="all", duplicate_collision_geoms=False). */
static int sim_build_object(const char *libero_assets, const bddl_instance *inst, const sim_object_class *cls,
                            int fixture, sim_object_xml *out) {
  memset(out, 0, sizeof *out);
  char *path = rdt_path_join(libero_assets, cls->xml);
  out->root = mjcf_load(path);
  if (!out->root) {
    free(path);
    return -1;
  }
  xml_node *wb = mjcf_section(out->root, "worldbody");
  xml_node *obj = NULL;
  for (int i = 0; i < wb->nchild && !obj; i++)
    if (!strcmp(wb->child[i]->tag, "body")) obj = xml_child(wb->child[i], "body", "name", "object");
  if (!obj) {
    rdt_fail("%s: expected <worldbody><body><body name=\"object\">", path);
    free(path);
    return -1;
  }
  out->main = xml_clone(obj);
  xml_set(out->main, "name", "main");
  xml_node **geoms = NULL;
  int ng = 0;
  sim_collect_geoms(out->main, &geoms, &ng);
  for (int i = 0; i < ng; i++) {
    const char *g = xml_get(geoms[i], "group");
    if (!g) {
      rdt_fail("%s:%d: expected a group on every object geom", path, geoms[i]->line);
      free(geoms), free(path);
      return -1;
    }
    if (atoi(g) != 0 && atoi(g) != 1) {
      xml_free(xml_detach(geoms[i]->parent, xml_index(geoms[i]->parent, geoms[i])));
      continue;
    }
    if (!xml_get(geoms[i], "name")) xml_setf(geoms[i], "name", "g%d", i);
  }
  free(geoms);
  if (!fixture) {
    xml_node *j = xml_new("joint");
    xml_set(j, "type", "free");
    xml_set(j, "damping", "0.0005");
    xml_set(j, "name", "joint0");
    xml_append(out->main, j);
  }
  xml_node *site = xml_new("site");
  xml_set(site, "pos", "0 0 0");
  xml_set(site, "size", "0.002 0.002 0.002");
  xml_set(site, "rgba", "1 0 0 0");
  xml_set(site, "type", "sphere");
  xml_set(site, "group", "0");
  xml_set(site, "name", "default_site");
  xml_append(out->main, site);
  char prefix[256];
  snprintf(prefix, sizeof prefix, "%s_", inst->name);
  mjcf_prefix(out->main, prefix);
  mjcf_prefix(out->root, prefix);
  /* bottom_offset: ./body/site[@name='<prefix>bottom_site'] */
  char bname[300];
  snprintf(bname, sizeof bname, "%sbottom_site", prefix);
  for (int i = 0; i < wb->nchild; i++) {
    xml_node *bs = strcmp(wb->child[i]->tag, "body") ? NULL : xml_child(wb->child[i], "site", "name", bname);
    double p[3] = {0, 0, 0};
    if (bs && xml_get(bs, "pos") && xml_numbers(xml_get(bs, "pos"), p, 3) == 3) {
      out->bottom_z = p[2];
      break;
    }
  }
  free(path);
  return 0;
}

/* ------------------------------------------------------------------ missing files */

typedef struct {
  int meshes, textures;
} sim_missing;

/* Does any geom in the subtree use this mesh in a physical way?  Sets *uses. */
static int sim_mesh_physical(xml_node *n, const char *mesh, int *uses) {
  int phys = 0;
  if (!strcmp(n->tag, "geom")) {
    const char *m = xml_get(n, "mesh");
    if (m && !strcmp(m, mesh)) {
      *uses = 1;
      const char *ct = xml_get(n, "contype"), *ca = xml_get(n, "conaffinity"), *g = xml_get(n, "group");
      int visual = ct && ca && atoi(ct) == 0 && atoi(ca) == 0 && g && atoi(g) != 0;
      phys = !visual;
    }
  }
  for (int i = 0; i < n->nchild && !phys; i++) phys = sim_mesh_physical(n->child[i], mesh, uses);
  return phys;
}

/* Remove geoms that use this mesh. */
static void sim_drop_mesh_geoms(xml_node *n, const char *mesh) {
  for (int i = n->nchild - 1; i >= 0; i--) {
    xml_node *c = n->child[i];
    const char *m = !strcmp(c->tag, "geom") ? xml_get(c, "mesh") : NULL;
    if (m && !strcmp(m, mesh)) xml_free(xml_detach(n, i));
    else sim_drop_mesh_geoms(c, mesh);
  }
}

/* Missing visual meshes are dropped with the geoms that show them, missing
 * textures are dropped and their materials keep their colour; a missing file
 * that physics needs is an error. */
static int sim_drop_missing(xml_node *world, sim_missing *miss, int no_textures) {
  xml_node *asset = mjcf_section(world, "asset"), *wb = mjcf_section(world, "worldbody");
  for (int i = asset->nchild - 1; i >= 0; i--) {
    xml_node *a = asset->child[i];
    const char *file = xml_get(a, "file");
    int drop_texture = no_textures && file && !strcmp(a->tag, "texture");
    if (!file || (!drop_texture && rdt_is_file(file))) continue;
    const char *name = xml_get(a, "name");
    if (!strcmp(a->tag, "mesh")) {
      int uses = 0;
      if (name && sim_mesh_physical(wb, name, &uses))
        return rdt_fail("%s: collision mesh file missing (mesh %s collides or has mass)", file, name);
      if (name) sim_drop_mesh_geoms(wb, name);
      miss->meshes++;
    } else if (!strcmp(a->tag, "texture")) {
      for (int k = 0; k < asset->nchild; k++) {
        xml_node *mat = asset->child[k];
        const char *t = xml_get(mat, "texture");
        if (!strcmp(mat->tag, "material") && t && name && !strcmp(t, name)) xml_unset(mat, "texture");
      }
      miss->textures += !drop_texture;
    } else {
      return rdt_fail("%s: %s file missing", file, a->tag);
    }
    if (!drop_texture) rdt_debug("sim: dropped missing %s %s", a->tag, file);
    xml_free(xml_detach(asset, i));
  }
  return 0;
}

/* ------------------------------------------------------------------ compile */

/* Compile MJCF text through MuJoCo's virtual file system (no temporary file).
 * MuJoCo 2.2 serialises mj_loadXML internally (one global parser model). */
static mjModel *sim_compile(const char *xml, const char *what) {
  mjVFS *vfs = rdt_malloc(sizeof *vfs);
  mj_defaultVFS(vfs);
  const char *fname = "rdt_scene.xml";
  size_t len = strlen(xml);
  if (mj_makeEmptyFileVFS(vfs, fname, (int)len)) {
    free(vfs);
    return rdt_fail("%s: cannot create the MuJoCo virtual file", what), NULL;
  }
  int id = mj_findFileVFS(vfs, fname);
  memcpy(vfs->filedata[id], xml, len);
  char err[1000] = "";
  mjModel *m = mj_loadXML(fname, vfs, err, sizeof err);
  mj_deleteVFS(vfs);
  free(vfs);
  if (!m) return rdt_fail("%s: MuJoCo could not compile the composed scene: %s", what, err), NULL;
  if (err[0]) rdt_debug("%s: MuJoCo: %s", what, err);
  return m;
}

/* ------------------------------------------------------------------ world */

/* robosuite base.xml (models/assets/base.xml) with timestep 0.002 set by MujocoWorldBase. */
static xml_node *sim_world_base(void) {
  static const char base[] =
      "<mujoco model=\"base\">"
      "<compiler angle=\"radian\" meshdir=\"meshes/\" inertiagrouprange=\"0 0\"/>"
      "<option impratio=\"20\" cone=\"elliptic\" density=\"1.2\" viscosity=\"0.00002\" timestep=\"0.002\"/>"
      "<size nconmax=\"5000\" njmax=\"5000\"/>"
      "<asset/><visual><map znear=\"0.001\"/></visual><actuator/><worldbody/><equality/>"
      "</mujoco>";
  xml_node *w = xml_parse(base, sizeof base - 1, "base.xml");
  for (size_t i = 0; i < sizeof sim_sections / sizeof *sim_sections; i++)
    if (!mjcf_section(w, sim_sections[i])) xml_append(w, xml_new(sim_sections[i]));
  return w;
}

/* The problem class of a BDDL problem, or NULL + error. */
static const sim_problem_class *sim_problem_find(const bddl_problem *b) {
  for (size_t i = 0; i < sizeof sim_problems / sizeof *sim_problems; i++)
    if (!strcmp(sim_problems[i].problem, b->problem)) return &sim_problems[i];
  rdt_fail("%s: expected problem class libero_kitchen_tabletop_manipulation, "
           "libero_living_room_tabletop_manipulation or libero_study_tabletop_manipulation, got %s",
           b->path, b->problem);
  return NULL;
}

/* Instances in LIBERO's merge order: objects_dict then fixtures_dict (tables skipped). */
typedef struct {
  const bddl_instance *inst;
  const sim_object_class *cls;
  int fixture;
  sim_object_xml xml;
} sim_pending;

/* Prepare every object and fixture of the problem. */
static int sim_prepare_objects(const char *libero_assets, const bddl_problem *b, const sim_problem_class *pc,
                               sim_pending **out, int *count) {
  int n = b->nobjects + b->nfixtures;
  sim_pending *p = rdt_calloc((size_t)(n ? n : 1), sizeof *p);
  int k = 0;
  for (int pass = 0; pass < 2; pass++) {
    int m = pass ? b->nfixtures : b->nobjects;
    const bddl_instance *v = pass ? b->fixtures : b->objects;
    for (int i = 0; i < m; i++) {
      if (pass && !strcmp(v[i].category, pc->workspace)) continue;
      const sim_object_class *cls = sim_object_class_find(v[i].category);
      if (!cls) {
        *out = p, *count = k;
        return rdt_fail("%s: no LIBERO object class for category '%s'", b->path, v[i].category);
      }
      p[k].inst = &v[i];
      p[k].cls = cls;
      p[k].fixture = pass;
      if (sim_build_object(libero_assets, &v[i], cls, pass, &p[k].xml)) {
        *out = p, *count = k;
        return -1;
      }
      k++;
    }
  }
  *out = p;
  *count = k;
  return 0;
}

/* Free prepared objects. */
static void sim_pending_free(sim_pending *p, int n) {
  for (int i = 0; i < n; i++) xml_free(p[i].xml.root), xml_free(p[i].xml.main);
  free(p);
}

/* ------------------------------------------------------------------ after compiling */

/* Is body b inside the subtree rooted at root? */
static int sim_in_subtree(const mjModel *m, int b, int root) {
  while (b > 0 && b != root) b = m->body_parentid[b];
  return b == root;
}

/* Joint qpos addresses and contact geoms of an object's subtree. */
static void sim_object_resolve(const mjModel *m, sim_object *o) {
  o->nsub = 0;
  for (int b = 0; b < m->nbody; b++)
    if (sim_in_subtree(m, b, o->body)) o->nsub++;
  o->jnt_qpos = rdt_malloc((size_t)(m->njnt + 1) * sizeof *o->jnt_qpos);
  for (int j = 0; j < m->njnt; j++)
    if (sim_in_subtree(m, m->jnt_bodyid[j], o->body)) o->jnt_qpos[o->njoint++] = m->jnt_qposadr[j];
  o->geoms = rdt_malloc((size_t)(m->ngeom + 1) * sizeof *o->geoms);
  for (int g = 0; g < m->ngeom; g++)
    if (m->geom_group[g] == 0 && sim_in_subtree(m, m->geom_bodyid[g], o->body)) o->geoms[o->ngeom++] = g;
}

/* Bodies below n in document order (ElementTree findall(".//body")). */
static void sim_bodies_below(xml_node *n, xml_node ***v, int *count) {
  for (int i = 0; i < n->nchild; i++) {
    if (strcmp(n->child[i]->tag, "body")) continue;
    *v = rdt_realloc(*v, (size_t)(*count + 1) * sizeof **v);
    (*v)[(*count)++] = n->child[i];
    sim_bodies_below(n->child[i], v, count);
  }
}

/* Does any element strictly below n match tag (and name)? */
static int sim_has_below(xml_node *n, const char *tag, const char *name) {
  for (int i = 0; i < n->nchild; i++)
    if (xml_find(n->child[i], tag, name ? "name" : NULL, name)) return 1;
  return 0;
}

/* The body part holding a region site, as LIBERO's _load_sites_in_arena
 * finds it: walk the object's bodies in document order, stop at the first
 * body without sites below it, and keep the last body with the site below
 * it; that body's direct joints are the region's joints.  NULL if none. */
static xml_node *sim_region_part(xml_node *outer, const char *site) {
  xml_node **v = NULL, *part = NULL;
  int n = 0;
  sim_bodies_below(outer, &v, &n);
  for (int i = 0; i < n; i++) {
    if (!sim_has_below(v[i], "site", NULL)) break;
    if (sim_has_below(v[i], "site", site)) part = v[i];
  }
  free(v);
  return part;
}

/* Fill a region's site, size, parent and joints. */
static int sim_region_resolve(sim_scene *s, const sim_pending *p, int np, const sim_problem_class *pc,
                              const bddl_region *r, sim_region *out) {
  out->name = rdt_strdup(r->key);
  out->parent = -1;
  out->site = mj_name2id(s->m, mjOBJ_SITE, r->key);
  if (strstr(r->key, pc->workspace)) {
    const double *q = r->ranges[0];
    out->size[0] = (q[2] - q[0]) / 2, out->size[1] = (q[3] - q[1]) / 2, out->size[2] = 0.007;
    return 0;
  }
  for (int i = 0; i < np; i++) {
    xml_node *wb = mjcf_section(p[i].xml.root, "worldbody");
    xml_node *outer = xml_child(wb, "body", NULL, NULL);
    if (!outer) continue;
    xml_node *part = sim_region_part(outer, r->key);
    if (!part) continue;
    xml_node *site = xml_find(part, "site", "name", r->key);
    double size[3] = {0, 0, 0};
    if (!site || !xml_get(site, "size") || xml_numbers(xml_get(site, "size"), size, 3) < 1)
      return rdt_fail("%s: region site %s has no size", p[i].inst->name, r->key);
    memcpy(out->size, size, sizeof size);
    out->parent = sim_scene_object(s, p[i].inst->name);
    free(out->jnt_qpos);
    out->jnt_qpos = rdt_malloc((size_t)(part->nchild + 1) * sizeof *out->jnt_qpos);
    out->njoint = 0;
    for (int k = 0; k < part->nchild; k++) {
      if (strcmp(part->child[k]->tag, "joint") || !xml_get(part->child[k], "name")) continue;
      int j = mj_name2id(s->m, mjOBJ_JOINT, xml_get(part->child[k], "name"));
      if (j >= 0) out->jnt_qpos[out->njoint++] = s->m->jnt_qposadr[j];
    }
  }
  return 0;
}

/* Fixture placement of LIBERO's MultiRegionRandomSampler with a
 * deterministic draw: the centre of the region and the middle of the yaw
 * range (docs/SIM.md).  Written into model->body_pos/body_quat as upstream. */
static void sim_place_fixtures(sim_scene *s, const sim_pending *p, int np, const sim_problem_class *pc) {
  const bddl_problem *b = s->bddl;
  double z_offset = 0.01 - pc->table_full[2];
  for (int a = 0; a < b->ninit; a++) {
    const bddl_atom *t = &b->init[a];
    if (strcmp(t->pred, "on") || t->nargs != 2) continue;
    const bddl_region *r = bddl_region_find(b, t->args[1]);
    if (!r || sim_scene_object(s, r->target) >= 0) continue;  /* on an object: a site sampler */
    for (int i = 0; i < np; i++) {
      if (!p[i].fixture || strcmp(p[i].inst->name, t->args[0]) || r->nranges < 1) continue;
      int o = sim_scene_object(s, p[i].inst->name);
      double x = (r->ranges[0][0] + r->ranges[0][2]) / 2, y = (r->ranges[0][1] + r->ranges[0][3]) / 2;
      double yaw = (fmin(r->yaw[0], r->yaw[1]) + fmax(r->yaw[0], r->yaw[1])) / 2;
      double *pos = s->m->body_pos + 3 * s->obj[o].body, *quat = s->m->body_quat + 4 * s->obj[o].body;
      pos[0] = x + pc->offset[0];
      pos[1] = y + pc->offset[1];
      pos[2] = (z_offset + pc->offset[2]) - p[i].xml.bottom_z;
      quat[0] = cos(yaw / 2), quat[1] = 0, quat[2] = 0, quat[3] = sin(yaw / 2);
    }
  }
}

/* robosuite visualize(False): sites of objects and of the gripper with alpha > 0 get -alpha. */
static void sim_hide_sites(sim_scene *s) {
  mjModel *m = s->m;
  int gripper = mj_name2id(m, mjOBJ_BODY, "gripper0_right_gripper");
  for (int i = 0; i < m->nsite; i++) {
    int b = m->site_bodyid[i], hide = gripper >= 0 && sim_in_subtree(m, b, gripper);
    for (int o = 0; o < s->nobj && !hide; o++) hide = sim_in_subtree(m, b, s->obj[o].body);
    if (hide && m->site_rgba[4 * i + 3] > 0) m->site_rgba[4 * i + 3] = -m->site_rgba[4 * i + 3];
  }
}

/* Look up the robot's joints, actuators, site, body and cameras. */
static int sim_robot_resolve(sim_scene *s) {
  mjModel *m = s->m;
  char name[64];
  for (int i = 0; i < 7; i++) {
    snprintf(name, sizeof name, "robot0_joint%d", i + 1);
    int j = mj_name2id(m, mjOBJ_JOINT, name);
    snprintf(name, sizeof name, "robot0_torq_j%d", i + 1);
    int a = mj_name2id(m, mjOBJ_ACTUATOR, name);
    if (j < 0 || a < 0) return rdt_fail("composed scene: robot joint or actuator %d missing", i + 1);
    s->arm_qpos[i] = m->jnt_qposadr[j], s->arm_dof[i] = m->jnt_dofadr[j], s->arm_act[i] = a;
  }
  for (int i = 0; i < 2; i++) {
    snprintf(name, sizeof name, "gripper0_finger_joint%d", i + 1);
    int j = mj_name2id(m, mjOBJ_JOINT, name);
    snprintf(name, sizeof name, "gripper0_gripper_finger_joint%d", i + 1);
    int a = mj_name2id(m, mjOBJ_ACTUATOR, name);
    if (j < 0 || a < 0) return rdt_fail("composed scene: gripper joint or actuator %d missing", i + 1);
    s->grip_qpos[i] = m->jnt_qposadr[j], s->grip_dof[i] = m->jnt_dofadr[j], s->grip_act[i] = a;
  }
  s->grip_site = mj_name2id(m, mjOBJ_SITE, "gripper0_grip_site");
  s->hand_body = mj_name2id(m, mjOBJ_BODY, "robot0_right_hand");
  s->cam_agentview = mj_name2id(m, mjOBJ_CAMERA, "agentview");
  s->cam_eye = mj_name2id(m, mjOBJ_CAMERA, "robot0_eye_in_hand");
  if (s->grip_site < 0 || s->hand_body < 0 || s->cam_agentview < 0 || s->cam_eye < 0)
    return rdt_fail("composed scene: grip site, hand body or cameras missing");
  memcpy(s->init_qpos, sim_panda_init_qpos, sizeof s->init_qpos);
  memcpy(s->gripper_init, sim_gripper_init_qpos, sizeof s->gripper_init);
  return 0;
}

/* Objects and regions after compiling. */
static int sim_scene_resolve(sim_scene *s, const sim_pending *p, int np, const sim_problem_class *pc) {
  s->obj = rdt_calloc((size_t)(np ? np : 1), sizeof *s->obj);
  for (int i = 0; i < np; i++) {
    sim_object *o = &s->obj[s->nobj++];
    o->name = rdt_strdup(p[i].inst->name);
    o->cls = p[i].cls;
    o->fixture = p[i].fixture;
    char name[300];
    snprintf(name, sizeof name, "%s_main", o->name);
    o->body = mj_name2id(s->m, mjOBJ_BODY, name);
    if (o->body < 0) return rdt_fail("composed scene: body %s missing", name);
    sim_object_resolve(s->m, o);
    snprintf(name, sizeof name, "%s_burner", o->name);
    o->burner_site = o->cls->burner_site ? mj_name2id(s->m, mjOBJ_SITE, name) : -1;
  }
  const bddl_problem *b = s->bddl;
  s->region = rdt_calloc((size_t)(b->nregions ? b->nregions : 1), sizeof *s->region);
  for (int i = 0; i < b->nregions; i++) {
    sim_region *r = &s->region[s->nregion++];
    if (sim_region_resolve(s, p, np, pc, &b->regions[i], r)) return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------ entry */

/* Compose, compile and resolve one task. */
sim_scene *sim_scene_build(const char *libero_assets, const char *robosuite_assets, const char *bddl_path,
                           int flags, char **xml_out) {
  bddl_problem *b = bddl_load(bddl_path);
  if (!b) return NULL;
  const sim_problem_class *pc = sim_problem_find(b);
  if (!pc) {
    bddl_free(b);
    return NULL;
  }
  sim_scene *s = rdt_calloc(1, sizeof *s);
  s->bddl = b;
  sim_pending *p = NULL;
  int np = 0;
  xml_node *world = NULL, *arena = NULL, *robot = NULL;
  char *xml = NULL;
  arena = sim_build_arena(libero_assets, pc, b);
  if (!arena) goto fail;
  robot = sim_build_robot(robosuite_assets, pc);
  if (!robot) goto fail;
  if (sim_prepare_objects(libero_assets, b, pc, &p, &np)) goto fail;
  /* ManipulationTask: arena, robot, then objects + fixtures as main bodies */
  world = sim_world_base();
  xml_node *wb = mjcf_section(world, "worldbody");
  mjcf_merge(world, wb, arena);
  mjcf_merge(world, wb, robot);
  for (int i = 0; i < np; i++) {
    mjcf_merge_assets(world, p[i].xml.root);
    xml_append(wb, p[i].xml.main);
    p[i].xml.main = NULL;
  }
  sim_missing miss = {0, 0};
  if (sim_drop_missing(world, &miss, flags & SIM_SCENE_NO_TEXTURES)) goto fail;
  if (miss.meshes)
    rdt_warn_once("sim-missing-mesh", "sim: visual mesh files missing (e.g. from a partial LIBERO copy); "
                  "their geoms are not drawn (%d in %s)", miss.meshes, rdt_basename(bddl_path));
  if (miss.textures)
    rdt_warn_once("sim-missing-texture", "sim: texture files missing; their materials keep their colour "
                  "(%d in %s)", miss.textures, rdt_basename(bddl_path));
  xml = xml_write(world);
  s->m = sim_compile(xml, rdt_basename(bddl_path));
  if (!s->m) goto fail;
  if (sim_robot_resolve(s) || sim_scene_resolve(s, p, np, pc)) goto fail;
  sim_place_fixtures(s, p, np, pc);
  sim_hide_sites(s);
  if (xml_out) *xml_out = xml, xml = NULL;
  free(xml);
  xml_free(world);
  xml_free(arena);
  xml_free(robot);
  sim_pending_free(p, np);
  return s;
fail:
  free(xml);
  xml_free(world);
  xml_free(arena);
  xml_free(robot);
  sim_pending_free(p, np);
  sim_scene_free(s);
  return NULL;
}

/* Free a scene. */
void sim_scene_free(sim_scene *s) {
  if (!s) return;
  for (int i = 0; i < s->nobj; i++) free(s->obj[i].name), free(s->obj[i].jnt_qpos), free(s->obj[i].geoms);
  for (int i = 0; i < s->nregion; i++) free(s->region[i].name), free(s->region[i].jnt_qpos);
  free(s->obj);
  free(s->region);
  if (s->m) mj_deleteModel(s->m);
  bddl_free(s->bddl);
  free(s);
}

/* Object index by name. */
int sim_scene_object(const sim_scene *s, const char *name) {
  for (int i = 0; i < s->nobj; i++)
    if (!strcmp(s->obj[i].name, name)) return i;
  return -1;
}

/* Region index by name. */
int sim_scene_region(const sim_scene *s, const char *name) {
  for (int i = 0; i < s->nregion; i++)
    if (!strcmp(s->region[i].name, name)) return i;
  return -1;
}
