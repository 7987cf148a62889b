/* fuzz/fuzz_config.c: the YAML config loader on arbitrary text, then every
 * reader over the tree it built (lookups, getters, overrides, JSON). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/config.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rdt_config *c = rdt_config_parse((const char *)data, size, "fuzz.yaml");
  if (!c) return 0;
  for (int i = 0; i < rdt_config_len(c, ""); i++) {
    const char *key = rdt_config_key_at(c, "", i);
    rdt_config_int(c, key, 0);
    rdt_config_float(c, key, 0);
    rdt_config_bool(c, key, 0);
    rdt_config_str(c, key, "");
    rdt_config_len(c, key);
    rdt_config_key_at(c, key, 0);
  }
  rdt_config_check(c);
  rdt_config_set(c, "model.rdt.depth", "2");
  rdt_config_set(c, "a.0.b", "[1, {x: y}]");
  char *json = rdt_config_to_json(c);
  rdt_json *j = rdt_json_parse(json, strlen(json));   /* the JSON written must read back */
  if (!j) abort();
  rdt_json_free(j);
  free(json);
  rdt_config_free(c);
  return 0;
}
