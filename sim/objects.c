/* sim/objects.c: the LIBERO object classes that libero_90 uses.
 *
 * Facts from LIBERO envs/objects/{google_scanned,hope,turbosquid,articulated}_objects.py:
 * the XML path pattern of each family and the articulation ranges, turned
 * into the comparisons the is_open/is_close/turn_on/turn_off methods make
 * (e.g. WoodenCabinet.is_open: q < max(default_open_ranges) = -0.14).
 */
#include "sim/objects.h"

#include <string.h>

#define SCANNED(n) {n, "stable_scanned_objects/" n "/" n ".xml", 0, 0, 0, 0, 0, 0, 0, 0, 0}
#define HOPE(n) {n, "stable_hope_objects/" n "/" n ".xml", 0, 0, 0, 0, 0, 0, 0, 0, 0}
#define TURBO(n) {n, "turbosquid_objects/" n "/" n ".xml", 0, 0, 0, 0, 0, 0, 0, 0, 0}

static const sim_object_class sim_classes[] = {
    SCANNED("akita_black_bowl"), SCANNED("basket"), SCANNED("chefmate_8_frypan"),
    SCANNED("plate"), SCANNED("white_bowl"), SCANNED("glazed_rim_porcelain_ramekin"),
    HOPE("alphabet_soup"), HOPE("bbq_sauce"), HOPE("butter"), HOPE("chocolate_pudding"),
    HOPE("cream_cheese"), HOPE("ketchup"), HOPE("milk"), HOPE("new_salad_dressing"),
    HOPE("orange_juice"), HOPE("tomato_sauce"),
    TURBO("black_book"), TURBO("moka_pot"), TURBO("porcelain_mug"), TURBO("red_coffee_mug"),
    TURBO("white_yellow_mug"), TURBO("wine_bottle"), TURBO("wooden_tray"), TURBO("yellow_book"),
    TURBO("desk_caddy"), TURBO("wine_rack"), TURBO("wooden_two_layer_shelf"),
    /* articulated: open ranges / close ranges as in articulated_objects.py */
    {"wooden_cabinet", "articulated_objects/wooden_cabinet.xml", SIM_CMP_LT, -0.14, SIM_CMP_GT, 0.0,
     0, 0, 0, 0, 0},
    {"white_cabinet", "articulated_objects/white_cabinet.xml", SIM_CMP_LT, -0.14, SIM_CMP_GT, 0.0,
     0, 0, 0, 0, 0},
    {"microwave", "articulated_objects/microwave.xml", SIM_CMP_LT, -1.3, SIM_CMP_GT, -0.005,
     0, 0, 0, 0, 0},
    {"short_cabinet", "articulated_objects/short_cabinet.xml", SIM_CMP_GT, 0.10, SIM_CMP_LT, 0.0,
     0, 0, 0, 0, 0},
    {"short_fridge", "articulated_objects/short_fridge.xml", SIM_CMP_GT, 2.0, SIM_CMP_LT, 0.0,
     0, 0, 0, 0, 0},
    {"flat_stove", "articulated_objects/flat_stove.xml", 0, 0, 0, 0, SIM_CMP_GE, 0.5, SIM_CMP_LT,
     0.0, 1},
};

/* The class of a category, or NULL. */
const sim_object_class *sim_object_class_find(const char *category) {
  for (size_t i = 0; i < sizeof sim_classes / sizeof *sim_classes; i++)
    if (!strcmp(sim_classes[i].category, category)) return &sim_classes[i];
  return NULL;
}

/* q CMP thr. */
int sim_cmp_eval(sim_cmp c, double q, double thr) {
  switch (c) {
    case SIM_CMP_LT: return q < thr;
    case SIM_CMP_GT: return q > thr;
    case SIM_CMP_GE: return q >= thr;
    default: return 0;
  }
}
