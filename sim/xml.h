/* sim/xml.h: a small XML tree for composing MJCF.
 *
 * Elements and attributes only (text, comments and processing instructions
 * are dropped), attribute order kept, entities decoded on read and escaped on
 * write.  Enough to read the robosuite/LIBERO asset files, edit them the way
 * robosuite's MujocoXML does, and write the composed model for mj_loadXML.
 */
#ifndef RDT_SIM_XML_H
#define RDT_SIM_XML_H

#include <stddef.h>
#include "core/error.h"

typedef struct xml_node xml_node;
struct xml_node {
  char *tag;
  int nattr, cattr;
  char **keys, **values;
  int nchild, cchild;
  xml_node **child;
  xml_node *parent;
  int line;              /* line of the start tag in its file (0 when built in code) */
};

/* Parse text; NULL + rdt_error() "NAME:LINE: ..." on malformed input. */
xml_node *xml_parse(const char *text, size_t len, const char *name);
/* Read and parse a file; errors name it. */
xml_node *xml_load(const char *path);
void xml_free(xml_node *n);

/* A new element with no attributes or children. */
xml_node *xml_new(const char *tag);
/* Deep copy (parent NULL). */
xml_node *xml_clone(const xml_node *n);

/* Attribute value or NULL. */
const char *xml_get(const xml_node *n, const char *key);
/* Set (replace or append) an attribute. */
void xml_set(xml_node *n, const char *key, const char *value);
void xml_setf(xml_node *n, const char *key, const char *fmt, ...) RDT_PRINTF(3, 4);
/* Remove an attribute; returns 1 if it was present. */
int xml_unset(xml_node *n, const char *key);

/* Append a child (takes ownership; detaches it from a previous parent). */
void xml_append(xml_node *parent, xml_node *child);
/* Detach child i from its parent and return it (caller owns it). */
xml_node *xml_detach(xml_node *parent, int i);
/* Index of child c in parent, or -1. */
int xml_index(const xml_node *parent, const xml_node *c);

/* First direct child with this tag (and attribute key == value when key is
 * not NULL), or NULL. */
xml_node *xml_child(const xml_node *n, const char *tag, const char *key, const char *value);
/* First element in the subtree (n included, document order) with this tag
 * (NULL: any) and, when key is not NULL, attribute key == value. */
xml_node *xml_find(xml_node *n, const char *tag, const char *key, const char *value);

/* Serialise the subtree; malloc'd NUL-terminated text. */
char *xml_write(const xml_node *n);

/* Parse up to max numbers separated by spaces; returns the count (-1 on junk). */
int xml_numbers(const char *s, double *out, int max);
/* Format n numbers as MJCF text ("%.17g" each, space separated). */
void xml_set_numbers(xml_node *node, const char *key, const double *v, int n);

#endif
