/* sim/scene.h: compose a LIBERO task's MJCF the way robosuite/LIBERO do, and
 * compile it once.
 *
 * The composition follows robosuite 1.4.0 (MujocoXML default-class inlining,
 * absolute asset paths, name prefixes, geom naming, collision recolouring,
 * mount/gripper merging, MujocoXMLObject "main" bodies with free joints) and
 * LIBERO's problem classes (arena, cameras, table regions as sites, robot
 * base offsets).  After compiling, fixtures are placed as LIBERO's samplers
 * would, with a deterministic rule (region centre, mid yaw; docs/SIM.md), and
 * sites are hidden as robosuite's visualize(False).
 */
#ifndef RDT_SIM_SCENE_H
#define RDT_SIM_SCENE_H

#include <mujoco/mujoco.h>

#include "sim/bddl.h"
#include "sim/objects.h"

/* An object or fixture instance after compiling. */
typedef struct {
  char *name;                 /* BDDL instance name (= naming prefix without '_') */
  const sim_object_class *cls;
  int fixture;                /* 1: fixture (no free joint) */
  int body;                   /* root body "<name>_main" */
  int nsub;                   /* bodies in its subtree: ids body .. body+nsub-1 */
  int njoint;
  int *jnt_qpos;              /* qpos address of each joint of the object */
  int ngeom;
  int *geoms;                 /* its contact geoms (group 0) */
  int burner_site;            /* FlatStove's burner site, or -1 */
} sim_object;

/* A BDDL region: a table zone site or a site inside an object. */
typedef struct {
  char *name;                 /* region key == site name */
  int site;
  double size[3];             /* half sizes as the SiteObject holds them */
  int parent;                 /* index into objects, -1 for table zones */
  int njoint;
  int *jnt_qpos;              /* joints of the body part holding the site */
} sim_region;

typedef struct {
  mjModel *m;
  bddl_problem *bddl;
  int nobj;
  sim_object *obj;            /* objects first, then fixtures, as merged */
  int nregion;
  sim_region *region;
  int arm_qpos[7], arm_dof[7], arm_act[7];
  int grip_qpos[2], grip_dof[2], grip_act[2];
  int grip_site;              /* gripper0_grip_site */
  int hand_body;              /* robot0_right_hand */
  int cam_agentview, cam_eye;
  double init_qpos[7];        /* robot init_qpos (MountedPanda / OnTheGroundPanda) */
  double gripper_init[2];     /* PandaGripper init_qpos */
} sim_scene;

enum { SIM_SCENE_NO_TEXTURES = 1 };   /* physics only: textures are not loaded */

/* Build and compile the scene of a BDDL file.  libero_assets is LIBERO's
 * assets/ folder, robosuite_assets robosuite's models/assets/.  If xml_out is
 * not NULL it receives the composed MJCF text (caller frees).  NULL +
 * rdt_error() on failure. */
sim_scene *sim_scene_build(const char *libero_assets, const char *robosuite_assets,
                           const char *bddl_path, int flags, char **xml_out);
void sim_scene_free(sim_scene *s);

/* Index of an object/fixture or region by name, or -1. */
int sim_scene_object(const sim_scene *s, const char *name);
int sim_scene_region(const sim_scene *s, const char *name);

#endif
