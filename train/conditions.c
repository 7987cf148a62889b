/* train/conditions.c: frozen encoders and the instruction table (see conditions.h). */
#include "train/conditions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "core/safetensors.h"
#include "model/siglip.h"
#include "model/t5.h"
#include "model/tiny_encoders.h"

typedef struct {
  char *text;
  int len;
  float *emb;    /* len x lang_token_dim */
} lang_entry;

struct rdt_conditions {
  rdt_conditions_opts o;
  k_backend *b;
  rdt_tiny_vision *tiny_vision;
  rdt_tiny_text *tiny_text;
  siglip *vision;
  t5 *text;
  int image_size;
  char describe[128];
  lang_entry *lang;
  int nlang;
};

/* ---------------------------------------------------------------- setup */
static int open_real(rdt_conditions *c) {
  RDT_CHECK(c->o.vision_path, "this config has no model.tiny_encoders section, so it needs the SigLIP vision "
            "encoder: pass --pretrained_vision_encoder_name_or_path DIR (google/siglip-so400m-patch14-384)");
  RDT_CHECK(c->o.text_path || c->o.lang_embed_dir, "this config needs T5 for the instructions: pass "
            "--pretrained_text_encoder_name_or_path DIR (google/t5-v1_1-xxl) or --precomp_lang_embed "
            "with --lang_embed_dir DIR");
  c->vision = siglip_load(c->b, c->o.vision_path, ENC_AUTO);
  if (!c->vision) return -1;
  const siglip_config *sc = siglip_cfg(c->vision);
  RDT_CHECK(sc->hidden_size == c->o.img_token_dim && siglip_tokens(c->vision) == c->o.img_tokens_per_image,
            "%s: SigLIP gives %d tokens x %d per image, the config expects %d x %d", c->o.vision_path,
            siglip_tokens(c->vision), sc->hidden_size, c->o.img_tokens_per_image, c->o.img_token_dim);
  c->image_size = sc->image_size;
  if (!c->o.lang_embed_dir) {
    c->text = t5_load(c->b, c->o.text_path, ENC_AUTO);
    if (!c->text) return -1;
    RDT_CHECK(t5_cfg(c->text)->d_model == c->o.lang_token_dim, "%s: T5 width %d, the config expects %d",
              c->o.text_path, t5_cfg(c->text)->d_model, c->o.lang_token_dim);
  }
  snprintf(c->describe, sizeof c->describe, "SigLIP (%s) + %s", c->o.vision_path,
           c->o.lang_embed_dir ? "precomputed language embeddings" : "T5");
  return 0;
}

rdt_conditions *rdt_conditions_open(const rdt_config *cfg, const rdt_conditions_opts *o, k_backend *b) {
  rdt_conditions *c = rdt_calloc(1, sizeof *c);
  c->o = *o;
  c->b = b;
  rdt_tiny_cfg tc;
  int tiny = rdt_tiny_cfg_from_config(cfg, &tc);
  int rc = tiny < 0 ? -1 : 0;
  if (tiny == 1) {
    c->tiny_vision = rdt_tiny_vision_new(&tc);
    c->tiny_text = o->lang_embed_dir ? NULL : rdt_tiny_text_new(&tc);
    c->image_size = tc.image_size;
    snprintf(c->describe, sizeof c->describe, "tiny test-only encoders (model.tiny_encoders)%s",
             o->lang_embed_dir ? " + precomputed language embeddings" : "");
  } else if (tiny == 0) {
    rc = open_real(c);
  }
  if (rc != 0) {
    rdt_conditions_free(c);
    return NULL;
  }
  return c;
}

void rdt_conditions_free(rdt_conditions *c) {
  if (!c) return;
  if (c->tiny_vision) rdt_tiny_vision_free(c->tiny_vision);
  if (c->tiny_text) rdt_tiny_text_free(c->tiny_text);
  if (c->vision) siglip_free(c->vision);
  if (c->text) t5_free(c->text);
  for (int i = 0; i < c->nlang; i++) free(c->lang[i].text), free(c->lang[i].emb);
  free(c->lang);
  free(c);
}

int rdt_conditions_image_size(const rdt_conditions *c) { return c->image_size; }
const char *rdt_conditions_describe(const rdt_conditions *c) { return c->describe; }

/* ---------------------------------------------------------------- language */
static int lang_cmp(const void *a, const void *b) {
  return strcmp(((const lang_entry *)a)->text, ((const lang_entry *)b)->text);
}

static const lang_entry *lang_find(const rdt_conditions *c, const char *text) {
  lang_entry key = {(char *)text, 0, NULL};
  return c->nlang ? bsearch(&key, c->lang, (size_t)c->nlang, sizeof key, lang_cmp) : NULL;
}

/* Encode one instruction with whichever text encoder is open. */
static int lang_encode(rdt_conditions *c, const char *text, lang_entry *e) {
  if (c->o.lang_embed_dir)
    return t5_embed_load(c->o.lang_embed_dir, text, c->o.lang_token_dim, c->o.max_lang_len, &e->emb, &e->len);
  if (c->text) return t5_encode_text(c->text, text, c->o.max_lang_len, &e->emb, &e->len);
  size_t D = (size_t)c->o.lang_token_dim;
  float *emb = rdt_malloc((size_t)c->o.max_lang_len * D * sizeof(float));
  uint8_t *mask = rdt_malloc((size_t)c->o.max_lang_len);
  int L = rdt_tiny_text_encode(c->tiny_text, text, emb, mask);
  free(mask);
  if (L < 0) {
    free(emb);
    return -1;
  }
  e->len = L;
  e->emb = emb;
  return 0;
}

int rdt_conditions_add_instructions(rdt_conditions *c, const char *const *text, int n) {
  for (int i = -1; i < n; i++) {
    const char *s = i < 0 ? "" : text[i];
    if (lang_find(c, s)) continue;
    lang_entry e = {rdt_strdup(s), 0, NULL};
    if (lang_encode(c, s, &e) != 0) {
      free(e.text);
      return rdt_fail_ctx("encoding instruction \"%s\"", s);
    }
    c->lang = rdt_realloc(c->lang, (size_t)(c->nlang + 1) * sizeof *c->lang);
    c->lang[c->nlang++] = e;
    qsort(c->lang, (size_t)c->nlang, sizeof *c->lang, lang_cmp);
  }
  return 0;
}

int rdt_conditions_lang(const rdt_conditions *c, const char *text, float *emb) {
  const lang_entry *e = lang_find(c, text);
  if (!e) return rdt_fail("instruction \"%s\" was not encoded at start-up", text);
  memcpy(emb, e->emb, (size_t)e->len * (size_t)c->o.lang_token_dim * sizeof(float));
  return e->len;
}

/* ---------------------------------------------------------------- vision */
int rdt_conditions_images_threadsafe(const rdt_conditions *c) { return c->tiny_vision != NULL; }

void rdt_conditions_images(rdt_conditions *c, const float *images, int n, float *tokens) {
  if (c->tiny_vision)
    rdt_tiny_vision_encode(c->tiny_vision, images, n, tokens);
  else
    siglip_encode(c->vision, images, n, tokens);
}

const void *rdt_conditions_images_device(rdt_conditions *c, const float *images, int n) {
  if (!c->vision || k_kind_of(c->b) == K_CPU) return NULL;
  return siglip_encode_device(c->vision, images, n);
}
