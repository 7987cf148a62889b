/* tests/sim/sim_units_test.c: BDDL parser, XML tree, PNG writer, task list,
 * controller transforms.  References: hand-written inputs with known parses,
 * LIBERO's libero_90_tasks.txt (goal column, from the BDDL files), zlib's
 * uncompress/crc32 for the PNG, closed forms for the rotations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "sim/bddl.h"
#include "sim/env.h"
#include "sim/osc.h"
#include "sim/png.h"
#include "sim/xml.h"
#include "test.h"

static const char *good_bddl =
    "(define (problem LIBERO_Kitchen_Tabletop_Manipulation)\n"
    "  (:domain robosuite)  ; a comment (with parens\n"
    "  (:language Put the Bowl on the plate)\n"
    "  (:regions\n"
    "    (bowl_region (:target kitchen_table) (:ranges ((-0.1 -0.2 0.1 0.2) (0 0 1 1)))\n"
    "      (:yaw_rotation ((0 0) (3.5 4.5))) (:rgba (0 1 0 0.5)))\n"
    "    (top_side (:target wooden_cabinet_1)))\n"
    "  (:fixtures kitchen_table - kitchen_table wooden_cabinet_1 - wooden_cabinet)\n"
    "  (:objects bowl_1 bowl_2 - akita_black_bowl plate_1 - plate bowl_3 - akita_black_bowl)\n"
    "  (:obj_of_interest bowl_1 plate_1)\n"
    "  (:init (On bowl_1 kitchen_table_bowl_region) (Open wooden_cabinet_1_top_side))\n"
    "  (:goal (And (On bowl_3 plate_1) (Close wooden_cabinet_1_top_side)))\n"
    ")\n";

/* A well-formed file parses as LIBERO's robosuite_parse_problem would. */
static void t_bddl_good(void) {
  bddl_problem *p = bddl_parse(good_bddl, "good.bddl");
  CHECK_MSG(p, "%s", rdt_error());
  if (!p) return;
  CHECK(!strcmp(p->problem, "libero_kitchen_tabletop_manipulation"));
  CHECK(!strcmp(p->language, "put the bowl on the plate"));
  CHECK(p->nregions == 2);
  const bddl_region *r = bddl_region_find(p, "kitchen_table_bowl_region");
  CHECK(r && r->nranges == 2 && r->ranges[0][0] == -0.1 && r->ranges[1][3] == 1);
  CHECK(r && r->yaw[0] == 3.5 && r->yaw[1] == 4.5);  /* the last pair wins */
  CHECK(r && r->rgba[1] == 1 && r->rgba[3] == 0.5);
  r = bddl_region_find(p, "wooden_cabinet_1_top_side");
  CHECK(r && r->rgba[2] == 1 && r->rgba[3] == 0 && r->nranges == 0);  /* defaults */
  /* dict order: akita_black_bowl keeps its first position, its list replaced */
  CHECK(p->nobjects == 2);
  CHECK(p->nobjects == 2 && !strcmp(p->objects[0].name, "bowl_3") && !strcmp(p->objects[1].name, "plate_1"));
  CHECK(p->nfixtures == 2 && !strcmp(p->fixtures[1].category, "wooden_cabinet"));
  CHECK(p->ninterest == 2 && p->ninit == 2 && p->ngoal == 2);
  CHECK(!strcmp(p->goal[1].pred, "close") && p->goal[1].nargs == 1);
  CHECK(!strcmp(p->goal_text, "(and (on bowl_3 plate_1) (close wooden_cabinet_1_top_side))"));
  bddl_free(p);
}

/* Malformed input: one message naming file, line and what was expected. */
static void t_bddl_errors(void) {
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"(define (problem x)\n (:goal (And (On a b))\n", "bad.bddl:2: expected ')'"},
      {"(define (problem x))\n)", "bad.bddl:2: expected '('"},
      {"(define (problem x)\n(:regions (r (:target t) (:ranges ((1 2 3))))))", "bad.bddl:2: expected a range of 4"},
      {"(define (problem x)\n(:objects a - b)\n(:goal (And (On a zz))))", "bad.bddl:3: expected an object, fixture or region"},
      {"(define (problem x)\n\n(:bogus 1))", "bad.bddl:3: expected a known section"},
      {"(define (problem x)\n(:objects a b)\n(:goal (On a a)))", "bad.bddl:2: expected '- CATEGORY'"},
      {"(define (problem x)\n(:objects a - b)\n(:goal (And (On a a a))))", "bad.bddl:3: expected a predicate with one or two"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    bddl_problem *p = bddl_parse(cases[i].text, "bad.bddl");
    CHECK_MSG(!p, "case %zu parsed", i);
    CHECK_MSG(strstr(rdt_error(), cases[i].want) && !strchr(rdt_error(), '\n'), "case %zu: got '%s', want '%s'", i,
              rdt_error(), cases[i].want);
    bddl_free(p);
  }
}

/* All 90 task files parse; their goals match the goal column of the
 * suite's task list (taken from the BDDL files upstream). */
static void t_bddl_all_tasks(void) {
  const char *root = test_libero_root();
  char *list_path = rdt_path_join(root, "../libero_90_tasks.txt");
  size_t len;
  char *list = rdt_read_file(list_path, &len);
  free(list_path);
  for (int i = 0; i < SIM_NUM_TASKS; i++) {
    char rel[300];
    snprintf(rel, sizeof rel, "bddl_files/libero_90/%s.bddl", sim_task_name(i));
    char *path = rdt_path_join(root, rel);
    bddl_problem *p = bddl_load(path);
    CHECK_MSG(p, "%s", rdt_error());
    if (p && list) {
      /* the list line: NAME | class | instruction | (:goal (And (Pred a b) ...)) */
      char *line = strstr(list, sim_task_name(i));
      char *goal = line ? strstr(line, "(:goal") : NULL;
      char want[1024] = "";
      if (goal) {
        size_t k = 0;
        for (const char *q = goal + 7; *q && *q != '\n' && k < sizeof want - 1; q++) want[k++] = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
        while (k && (want[k - 1] == ' ' || want[k - 1] == ')')) k--;
        want[k] = 0;
      }
      char got[1024];
      snprintf(got, sizeof got, "%s", p->goal_text);
      size_t g = strlen(got);
      while (g && got[g - 1] == ')') got[--g] = 0;
      CHECK_MSG(goal && !strcmp(got, want), "%s: goal %s vs list %s", sim_task_name(i), got, want);
    }
    bddl_free(p);
    free(path);
  }
  free(list);
}

/* Suite: index <-> name, instruction from the file name (LIBERO's rule). */
static void t_suite(void) {
  CHECK(!strcmp(sim_task_name(0), "KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet"));
  CHECK(sim_task_find("KITCHEN_SCENE1_put_the_black_bowl_on_the_plate.bddl") == 9);
  CHECK(sim_task_find("nope") == -1 && sim_task_name(90) == NULL);
  CHECK(!strcmp(sim_task_instruction(0), "close the top drawer of the cabinet"));
  CHECK(!strcmp(sim_task_instruction(14), "put the middle black bowl on the plate"));
  int ls = sim_task_find("LIVING_ROOM_SCENE1_pick_up_the_ketchup_and_put_it_in_the_basket");
  CHECK(ls >= 0 && !strcmp(sim_task_instruction(ls), "pick up the ketchup and put it in the basket"));
}

/* XML: attributes, entities, nesting, comments, round trip, errors. */
static void t_xml(void) {
  const char *text = "<?xml version='1.0'?>\n<!-- c -->\n<a x=\"1 &amp; 2\" y='q&quot;'>\n <b/>\n <!-- <c/> -->\n"
                     " <c z=\"3\">text<d/></c>\n</a>\n";
  xml_node *n = xml_parse(text, strlen(text), "t.xml");
  CHECK(n && n->nchild == 2);
  if (!n) return;
  CHECK(!strcmp(xml_get(n, "x"), "1 & 2") && !strcmp(xml_get(n, "y"), "q\""));
  CHECK(xml_find(n, "d", NULL, NULL) && xml_find(n, "c", "z", "3")->line == 6);
  char *out = xml_write(n);
  xml_node *m = xml_parse(out, strlen(out), "out.xml");
  CHECK(m && !strcmp(xml_get(m, "x"), "1 & 2") && m->child[1]->nchild == 1);
  free(out);
  xml_free(m);
  xml_free(n);
  const char *bad = "<a>\n<b>\n</a>";
  n = xml_parse(bad, strlen(bad), "bad.xml");
  CHECK(!n && strstr(rdt_error(), "bad.xml:3: expected </b>"));
  double v[4];
  CHECK(xml_numbers(" 1 -2.5e-1 3 ", v, 4) == 3 && v[1] == -0.25);
}

/* PNG: decodes with zlib to the same pixels; chunk CRCs check. */
static void t_png(void) {
  int w = 300, h = 250;  /* > 65535 bytes of scanlines: several stored blocks */
  uint8_t *rgb = malloc((size_t)w * h * 3);
  for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(i * 7 + i / 13);
  const char *dir = test_tmpdir("png");
  char *path = rdt_path_join(dir, "x.png");
  CHECK(sim_write_png(path, rgb, w, h) == 0);
  size_t len;
  uint8_t *f = (uint8_t *)rdt_read_file(path, &len);
  CHECK(f && !memcmp(f, "\x89PNG\r\n\x1a\n", 8));
  size_t at = 8;
  uint8_t *idat = NULL;
  size_t idat_n = 0;
  while (f && at + 12 <= len) {
    uint32_t n = (uint32_t)f[at] << 24 | f[at + 1] << 16 | f[at + 2] << 8 | f[at + 3];
    uint32_t crc = (uint32_t)f[at + 8 + n] << 24 | f[at + 9 + n] << 16 | f[at + 10 + n] << 8 | f[at + 11 + n];
    CHECK(crc == crc32(0, f + at + 4, n + 4));
    if (!memcmp(f + at + 4, "IHDR", 4)) CHECK(f[at + 8 + 3] == (w & 255) && f[at + 8 + 8] == 8 && f[at + 8 + 9] == 2);
    if (!memcmp(f + at + 4, "IDAT", 4)) idat = f + at + 8, idat_n = n;
    at += 12 + n;
  }
  CHECK(at == len && idat);
  uLongf raw_n = (uLongf)(w * 3 + 1) * h;
  uint8_t *raw = malloc(raw_n);
  CHECK(idat && uncompress(raw, &raw_n, idat, idat_n) == Z_OK && raw_n == (uLongf)(w * 3 + 1) * h);
  int same = 1;
  for (int y = 0; y < h && idat; y++) same &= raw[y * (w * 3 + 1)] == 0 && !memcmp(raw + y * (w * 3 + 1) + 1, rgb + y * w * 3, (size_t)w * 3);
  CHECK(same);
  free(raw), free(f), free(path), free(rgb);
}

/* robosuite's quat2axisangle / mat2euler on rotations with known answers. */
static void t_transforms(void) {
  double a = 0.7, q[4] = {0, 0, sin(a / 2), cos(a / 2)}, aa[3], eu[3];  /* yaw 0.7 */
  osc_quat2axisangle(q, aa);
  CHECK_NEAR(aa[0], 0, 1e-12); CHECK_NEAR(aa[2], 0.7, 1e-12);
  osc_quat2euler(q, eu);
  CHECK_NEAR(eu[0], 0, 1e-6); CHECK_NEAR(eu[1], 0, 1e-6); CHECK_NEAR(eu[2], 0.7, 1e-6);
  double r[4] = {sin(0.3 / 2), 0, 0, cos(0.3 / 2)};  /* roll 0.3 */
  osc_quat2euler(r, eu);
  CHECK_NEAR(eu[0], 0.3, 1e-6); CHECK_NEAR(eu[2], 0, 1e-6);
  double id[4] = {0, 0, 0, 1};
  osc_quat2axisangle(id, aa);
  CHECK(aa[0] == 0 && aa[1] == 0 && aa[2] == 0);
}

int main(void) {
  RUN(t_bddl_good);
  RUN(t_bddl_errors);
  RUN(t_suite);
  RUN(t_xml);
  RUN(t_png);
  RUN(t_transforms);
  RUN(t_bddl_all_tasks);
  return test_done();
}
