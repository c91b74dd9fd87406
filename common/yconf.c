#include "common/yconf.h"

#include <stdarg.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "common/log.h"

int
sl_yerr_at(const char *file, int line, char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return -1;
    int n = snprintf(err, errlen, "%s:%d: ", file ? file : "<config>", line);
    if (n < 0 || (size_t) n >= errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t) n, fmt, ap);
    va_end(ap);
    return -1;
}

int
sl_yerr(const sl_ynode_t *node, char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return -1;
    const char *file = node && node->doc ? node->doc->file : "<config>";
    int n = snprintf(err, errlen, "%s:%d: ", file, node ? node->line : 1);
    if (n < 0 || (size_t) n >= errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t) n, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- string index: open addressing over an array of keys -------------- */

/* Maps and anchors are looked up by name while loading; a linear scan
 * would make a file of many keys quadratic. */
typedef struct {
    size_t *slot;               /* 0 = empty, else index + 1 into the caller's array */
    size_t  mask;
} s_index_t;

static uint64_t
s_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 1099511628211ULL;
    return h;
}

static void
s_index_init(s_index_t *ix, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    ix->slot = sl_xcalloc(cap, sizeof *ix->slot);
    ix->mask = cap - 1;
}

/* The slot of key in ix, whose entries name strings of names[]: either the
 * one holding key or the empty one where it would go. */
static size_t *
s_index_find(const s_index_t *ix, const char *const *names, const char *key)
{
    size_t h = (size_t) s_hash(key) & ix->mask;
    while (ix->slot[h] && strcmp(names[ix->slot[h] - 1], key) != 0)
        h = (h + 1) & ix->mask;
    return &ix->slot[h];
}

/* ---- building the tree from libyaml's events --------------------------- */

/* A node that can be referred to by an alias, with what referring to it
 * costs: its height (levels below it) and size (nodes, aliases expanded). */
typedef struct {
    const char *name;
    sl_ynode_t *node;
    int         height;
    size_t      size;
    int         line;
} s_anchor_t;

/* A collection being built. */
typedef struct {
    sl_ynode_t  *node;
    const char  *anchor;        /* registered when the collection ends */
    size_t       start;         /* b->produced when it started */
    sl_ynode_t **vals;          /* SEQ: items; MAP: values */
    sl_ynode_t **keys;          /* MAP: key scalars */
    size_t       n, cap;
    sl_ynode_t  *key;           /* MAP: a key waiting for its value */
    int          height;
} s_frame_t;

typedef struct {
    sl_ydoc_t   *doc;
    char        *err;
    size_t       errlen;
    size_t       produced;      /* nodes so far, aliases expanded */
    s_frame_t    frames[SL_YCONF_MAX_DEPTH + 1];
    int          depth;         /* open frames */
    s_anchor_t  *anchors;
    const char **anchor_names;  /* parallel to anchors, for the index */
    size_t       n_anchors, cap_anchors;
    s_index_t    anchor_ix;
} s_builder_t;

static int
s_line(const yaml_mark_t *m)
{
    return (int) m->line + 1;
}

static int
s_count(s_builder_t *b, size_t n, int line)
{
    b->produced += n;
    if (b->produced > SL_YCONF_MAX_NODES)
        return sl_yerr_at(b->doc->file, line, b->err, b->errlen,
                          "document expands to more than %d nodes (alias bomb?): use fewer "
                          "aliases or split the file", SL_YCONF_MAX_NODES);
    return 0;
}

static const s_anchor_t *
s_anchor_get(const s_builder_t *b, const char *name)
{
    if (!b->n_anchors)
        return NULL;
    size_t *slot = s_index_find(&b->anchor_ix, b->anchor_names, name);
    return *slot ? &b->anchors[*slot - 1] : NULL;
}

/* PyYAML (and libyaml's own loader) refuse an anchor defined twice. */
static int
s_anchor_check_new(s_builder_t *b, const char *name, int line)
{
    const s_anchor_t *a = s_anchor_get(b, name);
    int first = a ? a->line : 0;
    for (int i = 0; i < b->depth && !first; i++)
        if (b->frames[i].anchor && strcmp(b->frames[i].anchor, name) == 0)
            first = b->frames[i].node->line;
    if (first)
        return sl_yerr_at(b->doc->file, line, b->err, b->errlen,
                          "duplicate anchor &%s (first at line %d): give each anchor its own name",
                          name, first);
    return 0;
}

static void
s_anchor_add(s_builder_t *b, const char *name, sl_ynode_t *node, int height, size_t size)
{
    if (b->n_anchors == b->cap_anchors) {
        b->cap_anchors = b->cap_anchors ? 2 * b->cap_anchors : 16;
        b->anchors = sl_xrealloc(b->anchors, b->cap_anchors * sizeof *b->anchors);
        b->anchor_names = sl_xrealloc(b->anchor_names, b->cap_anchors * sizeof *b->anchor_names);
    }
    if (b->n_anchors + 1 > (b->anchor_ix.mask + 1) / 2) {
        free(b->anchor_ix.slot);
        s_index_init(&b->anchor_ix, b->n_anchors + 1);
        for (size_t i = 0; i < b->n_anchors; i++)
            *s_index_find(&b->anchor_ix, b->anchor_names, b->anchor_names[i]) = i + 1;
    }
    b->anchors[b->n_anchors] = (s_anchor_t) { name, node, height, size, node->line };
    b->anchor_names[b->n_anchors] = name;
    *s_index_find(&b->anchor_ix, b->anchor_names, name) = ++b->n_anchors;
}

static sl_ynode_t *
s_node_new(s_builder_t *b, sl_ykind_t kind, int line)
{
    sl_ynode_t *node = sl_arena_alloc(&b->doc->arena, sizeof *node);
    memset(node, 0, sizeof *node);
    node->kind = kind;
    node->line = line;
    node->doc = b->doc;
    return node;
}

/* A map's key position takes only scalars: report a collection there
 * before it is read. */
static int
s_check_key(s_builder_t *b, const sl_ynode_t *node, int line)
{
    if (!b->depth)
        return 0;
    const s_frame_t *f = &b->frames[b->depth - 1];
    if (f->node->kind != SL_Y_MAP || f->key || (node && node->kind == SL_Y_SCALAR))
        return 0;
    return sl_yerr_at(b->doc->file, line, b->err, b->errlen,
                      "mapping keys must be plain strings");
}

/* Hands a finished node (height: levels below it) to the open collection,
 * or makes it the root. */
static void
s_attach(s_builder_t *b, sl_ynode_t *node, int height)
{
    if (!b->depth) {
        b->doc->root = node;
        return;
    }
    s_frame_t *f = &b->frames[b->depth - 1];
    if (height + 1 > f->height)
        f->height = height + 1;
    if (f->node->kind == SL_Y_MAP && !f->key) {
        f->key = node;
        return;
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 8;
        f->vals = sl_xrealloc(f->vals, f->cap * sizeof *f->vals);
        if (f->node->kind == SL_Y_MAP)
            f->keys = sl_xrealloc(f->keys, f->cap * sizeof *f->keys);
    }
    if (f->node->kind == SL_Y_MAP) {
        f->keys[f->n] = f->key;
        f->key = NULL;
    }
    f->vals[f->n++] = node;
}

/* Sets key to value in dst as a Python dict would: an existing key keeps
 * its position and takes the new value. */
static void
s_dict_set(sl_ynode_t *dst, s_index_t *ix, const char *key, int line, sl_ynode_t *val)
{
    size_t *slot = s_index_find(ix, dst->keys, key);
    if (*slot) {
        dst->items[*slot - 1] = val;
        dst->key_lines[*slot - 1] = line;
        return;
    }
    dst->keys[dst->n] = key;
    dst->key_lines[dst->n] = line;
    dst->items[dst->n] = val;
    *slot = ++dst->n;
}

/* node.value = merge + node.value, then built as a dict (PyYAML's
 * flatten_mapping and construct_mapping): merged keys come first, an
 * explicit key takes the place of a merged one of the same name and wins
 * over it. */
static int
s_finish_map(s_builder_t *b, s_frame_t *f)
{
    sl_ynode_t *node = f->node;
    const sl_ynode_t **merges = NULL;
    size_t n_merges = 0, n_merged_pairs = 0;
    const char **ekeys = sl_xcalloc(f->n + 1, sizeof *ekeys);
    size_t n_explicit = 0;
    size_t *epos = sl_xcalloc(f->n + 1, sizeof *epos);
    s_index_t eix, ix = { 0 };
    s_index_init(&eix, f->n);
    int rc = -1;
    for (size_t p = 0; p < f->n; p++) {
        const sl_ynode_t *k = f->keys[p];
        sl_ynode_t *v = f->vals[p];
        if (strcmp(k->value, "<<") == 0 && k->plain) {
            /* A list merges its mappings last first, so earlier ones win. */
            size_t ns = v->kind == SL_Y_SEQ ? v->n : 1;
            merges = sl_xrealloc(merges, (n_merges + ns) * sizeof *merges);
            for (size_t i = ns; i-- > 0;) {
                const sl_ynode_t *src = v->kind == SL_Y_SEQ ? v->items[i] : v;
                if (src->kind != SL_Y_MAP) {
                    sl_yerr(src, b->err, b->errlen,
                            "`<<` merge value must be a mapping or a list of mappings");
                    goto out;
                }
                merges[n_merges++] = src;
                n_merged_pairs += src->n;
            }
            continue;
        }
        size_t *slot = s_index_find(&eix, ekeys, k->value);
        if (*slot) {
            sl_yerr_at(b->doc->file, k->line, b->err, b->errlen,
                       "duplicate key '%s' (first at line %d)", k->value,
                       f->keys[epos[*slot - 1]]->line);
            goto out;
        }
        ekeys[n_explicit] = k->value;
        epos[n_explicit] = p;
        *slot = ++n_explicit;
    }
    size_t cap = n_merged_pairs + n_explicit + 1;
    node->items = sl_arena_alloc(&b->doc->arena, cap * sizeof *node->items);
    node->keys = sl_arena_alloc(&b->doc->arena, cap * sizeof *node->keys);
    node->key_lines = sl_arena_alloc(&b->doc->arena, cap * sizeof *node->key_lines);
    node->n = 0;
    s_index_init(&ix, cap);
    for (size_t m = 0; m < n_merges; m++)
        for (size_t i = 0; i < merges[m]->n; i++)
            s_dict_set(node, &ix, merges[m]->keys[i], merges[m]->key_lines[i],
                       merges[m]->items[i]);
    for (size_t i = 0; i < n_explicit; i++) {
        const sl_ynode_t *k = f->keys[epos[i]];
        s_dict_set(node, &ix, k->value, k->line, f->vals[epos[i]]);
    }
    rc = 0;
out:
    free(ix.slot);
    free(eix.slot);
    free(epos);
    free(ekeys);
    free(merges);
    return rc;
}

static int
s_start(s_builder_t *b, sl_ykind_t kind, const char *anchor, int line)
{
    if (s_check_key(b, NULL, line) < 0)
        return -1;
    if (b->depth > SL_YCONF_MAX_DEPTH)
        return sl_yerr_at(b->doc->file, line, b->err, b->errlen,
                          "nesting deeper than %d levels (the limit for configuration files): "
                          "flatten the structure, or look for unbalanced brackets",
                          SL_YCONF_MAX_DEPTH);
    if (s_count(b, 1, line) < 0 || (anchor && s_anchor_check_new(b, anchor, line) < 0))
        return -1;
    s_frame_t *f = &b->frames[b->depth++];
    memset(f, 0, sizeof *f);
    f->node = s_node_new(b, kind, line);
    f->anchor = anchor ? sl_arena_strdup(&b->doc->arena, anchor) : NULL;
    f->start = b->produced - 1;
    return 0;
}

static void
s_frame_free(s_frame_t *f)
{
    free(f->vals);
    free(f->keys);
    f->vals = f->keys = NULL;
}

static int
s_end(s_builder_t *b)
{
    s_frame_t *f = &b->frames[b->depth - 1];
    sl_ynode_t *node = f->node;
    int rc = 0;
    if (node->kind == SL_Y_SEQ) {
        node->items = sl_arena_alloc(&b->doc->arena, (f->n + 1) * sizeof *node->items);
        if (f->n)
            memcpy(node->items, f->vals, f->n * sizeof *node->items);
        node->n = f->n;
    } else {
        rc = s_finish_map(b, f);
    }
    int height = f->height;
    const char *anchor = f->anchor;
    size_t size = b->produced - f->start;
    s_frame_free(f);
    b->depth--;
    if (rc < 0)
        return -1;
    if (anchor)
        s_anchor_add(b, anchor, node, height, size);
    s_attach(b, node, height);
    return 0;
}

static int
s_scalar(s_builder_t *b, const yaml_event_t *ev)
{
    int line = s_line(&ev->start_mark);
    const char *anchor = (const char *) ev->data.scalar.anchor;
    if (b->depth > SL_YCONF_MAX_DEPTH)
        return sl_yerr_at(b->doc->file, line, b->err, b->errlen,
                          "nesting deeper than %d levels (the limit for configuration files): "
                          "flatten the structure", SL_YCONF_MAX_DEPTH);
    if (s_count(b, 1, line) < 0 || (anchor && s_anchor_check_new(b, anchor, line) < 0))
        return -1;
    sl_ynode_t *node = s_node_new(b, SL_Y_SCALAR, line);
    node->value = sl_arena_strndup(&b->doc->arena, (const char *) ev->data.scalar.value,
                                   ev->data.scalar.length);
    node->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (anchor)
        s_anchor_add(b, sl_arena_strdup(&b->doc->arena, anchor), node, 0, 1);
    s_attach(b, node, 0);
    return 0;
}

/* An alias shares the node it names; it is as deep, and counts as many
 * nodes, as that node expanded in place. */
static int
s_alias(s_builder_t *b, const yaml_event_t *ev)
{
    int line = s_line(&ev->start_mark);
    const char *name = (const char *) ev->data.alias.anchor;
    const s_anchor_t *a = s_anchor_get(b, name);
    if (!a) {
        for (int i = 0; i < b->depth; i++)
            if (b->frames[i].anchor && strcmp(b->frames[i].anchor, name) == 0)
                return sl_yerr_at(b->doc->file, line, b->err, b->errlen,
                                  "alias *%s refers to a node that contains it (recursive "
                                  "alias): refer to a node outside it", name);
        return sl_yerr_at(b->doc->file, line, b->err, b->errlen,
                          "undefined alias *%s: define &%s before using it", name, name);
    }
    if (s_check_key(b, a->node, line) < 0)
        return -1;
    if (b->depth + a->height > SL_YCONF_MAX_DEPTH)
        return sl_yerr_at(b->doc->file, line, b->err, b->errlen,
                          "nesting deeper than %d levels through alias *%s (the limit for "
                          "configuration files): flatten the structure", SL_YCONF_MAX_DEPTH, name);
    if (s_count(b, a->size, line) < 0)
        return -1;
    s_attach(b, a->node, a->height);
    return 0;
}

/* Builds the tree event by event, so that every limit stops the parse
 * where it is crossed (libyaml's own loader builds the whole document
 * first, which took minutes for 100,000 nested `[`). */
static int
s_load_events(s_builder_t *b, yaml_parser_t *parser)
{
    int docs = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(parser, &ev))
            return sl_yerr_at(b->doc->file, (int) parser->problem_mark.line + 1, b->err,
                              b->errlen, "invalid YAML: %s%s%s",
                              parser->problem ? parser->problem : "syntax error",
                              parser->context ? " " : "", parser->context ? parser->context : "");
        int rc = 0, done = 0;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (docs++)
                rc = sl_yerr_at(b->doc->file, s_line(&ev.start_mark), b->err, b->errlen,
                                "only one YAML document per file: a second one starts here "
                                "(remove the extra `---`, or move that document to a file of "
                                "its own)");
            break;
        case YAML_SCALAR_EVENT:
            rc = s_scalar(b, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = s_start(b, SL_Y_SEQ, (const char *) ev.data.sequence_start.anchor,
                         s_line(&ev.start_mark));
            break;
        case YAML_MAPPING_START_EVENT:
            rc = s_start(b, SL_Y_MAP, (const char *) ev.data.mapping_start.anchor,
                         s_line(&ev.start_mark));
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            rc = s_end(b);
            break;
        case YAML_ALIAS_EVENT:
            rc = s_alias(b, &ev);
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (rc < 0)
            return -1;
        if (done)
            return 0;
    }
}

sl_ydoc_t *
sl_ydoc_parse(const char *buf, size_t len, const char *name, char *err, size_t errlen)
{
    yaml_parser_t parser;
    sl_ydoc_t *doc = sl_xcalloc(1, sizeof *doc);
    doc->file = sl_xstrdup(name ? name : "<config>");
    sl_arena_init(&doc->arena, 16 * 1024);

    if (!yaml_parser_initialize(&parser)) {
        sl_yerr_at(doc->file, 1, err, errlen, "cannot initialise the YAML parser");
        sl_ydoc_destroy(&doc);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *) buf, len);
    s_builder_t *b = sl_xcalloc(1, sizeof *b);
    b->doc = doc;
    b->err = err;
    b->errlen = errlen;
    int rc = s_load_events(b, &parser);
    for (int i = 0; i < b->depth; i++)
        s_frame_free(&b->frames[i]);
    free(b->anchor_ix.slot);
    free(b->anchors);
    free(b->anchor_names);
    free(b);
    yaml_parser_delete(&parser);
    if (rc < 0) {
        sl_ydoc_destroy(&doc);
        return NULL;
    }
    if (doc->root && doc->root->kind == SL_Y_SCALAR && sl_ynode_is_null(doc->root))
        doc->root = NULL;
    return doc;
}

static const char *
s_file_kind(mode_t mode)
{
    return S_ISDIR(mode) ? "a directory" : S_ISCHR(mode) ? "a character device"
         : S_ISBLK(mode) ? "a block device" : S_ISFIFO(mode) ? "a FIFO"
         : S_ISSOCK(mode) ? "a socket" : "a special file";
}

char *
sl_ydoc_read_file(const char *path, const char *shown, size_t *len_out, char *err,
                  size_t errlen)
{
    const char *who = shown ? shown : "", *sp = shown ? " " : "";
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        sl_errf(err, errlen, "cannot open%s%s: %s", sp, who, strerror(e));
        errno = e;
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        sl_errf(err, errlen, "cannot stat%s%s: %s", sp, who, strerror(e));
        close(fd);
        errno = EIO;
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        sl_errf(err, errlen, "%s%sis %s, not a regular file", who, sp, s_file_kind(st.st_mode));
        close(fd);
        errno = EINVAL;
        return NULL;
    }
    /* st_size may be 0 (/proc) or grow while we read: the limit is
     * enforced on what is read. */
    size_t cap = (uint64_t) st.st_size <= SL_YCONF_MAX_FILE ? (size_t) st.st_size + 2 : 0;
    size_t len = 0;
    char *buf = NULL;
    if ((uint64_t) st.st_size <= SL_YCONF_MAX_FILE) {
        cap = cap < 4096 ? 4096 : cap;
        buf = sl_xmalloc(cap);
        for (;;) {
            if (len + 1 == cap) {
                if (len > SL_YCONF_MAX_FILE)
                    break;
                cap = cap * 2 > SL_YCONF_MAX_FILE + 2 ? SL_YCONF_MAX_FILE + 2 : cap * 2;
                buf = sl_xrealloc(buf, cap);
            }
            ssize_t n = read(fd, buf + len, cap - len - 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                int e = errno;
                sl_errf(err, errlen, "cannot read%s%s: %s", sp, who, strerror(e));
                free(buf);
                close(fd);
                errno = EIO;
                return NULL;
            }
            if (n == 0)
                break;
            len += (size_t) n;
        }
    }
    close(fd);
    if (!buf || len > SL_YCONF_MAX_FILE) {
        free(buf);
        sl_errf(err, errlen, "%s%sis larger than %u MiB, the limit for a configuration file",
                who, sp, SL_YCONF_MAX_FILE >> 20);
        errno = EFBIG;
        return NULL;
    }
    buf[len] = '\0';
    *len_out = len;
    return buf;
}

char *
sl_ydoc_read(const char *path, size_t *len_out, char *err, size_t errlen)
{
    char why[512];
    char *buf = sl_ydoc_read_file(path, NULL, len_out, why, sizeof why);
    if (buf)
        return buf;
    const char *hint = errno == EINVAL ? "name a YAML file"
                     : errno == EFBIG ? "check that this is the right file"
                     : "check the path and its permissions";
    sl_yerr_at(path, 0, err, errlen, "%s (%s)", why, hint);
    return NULL;
}

sl_ydoc_t *
sl_ydoc_load(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *buf = sl_ydoc_read(path, &len, err, errlen);
    if (!buf)
        return NULL;
    sl_ydoc_t *doc = sl_ydoc_parse(buf, len, path, err, errlen);
    free(buf);
    return doc;
}

void
sl_ydoc_destroy(sl_ydoc_t **doc_p)
{
    if (!doc_p || !*doc_p)
        return;
    sl_ydoc_t *doc = *doc_p;
    sl_arena_destroy(&doc->arena);
    free(doc->file);
    free(doc);
    *doc_p = NULL;
}

const sl_ynode_t *
sl_ynode_get(const sl_ynode_t *map, const char *key)
{
    if (!map || map->kind != SL_Y_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->items[i];
    return NULL;
}

int
sl_ynode_is_null(const sl_ynode_t *node)
{
    if (!node)
        return 1;
    if (node->kind != SL_Y_SCALAR || !node->plain)
        return 0;
    const char *v = node->value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

int
sl_ynode_bool(const sl_ynode_t *node)
{
    if (!node || node->kind != SL_Y_SCALAR || !node->plain)
        return -1;
    static const char *yes[] = { "true", "yes", "on", "y" };
    static const char *no[] = { "false", "no", "off", "n" };
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(node->value, yes[i]) == 0)
            return 1;
        if (strcasecmp(node->value, no[i]) == 0)
            return 0;
    }
    return -1;
}

static int
s_ywarn_v(sl_ywarn_t *w, const char *file, int line, char *err, size_t errlen,
          const char *fmt, va_list ap)
{
    char text[1024];
    int n = snprintf(text, sizeof text, "%s:%d: ", file ? file : "<config>", line);
    if (n < 0 || (size_t) n >= sizeof text)
        n = 0;
    vsnprintf(text + n, sizeof text - (size_t) n, fmt, ap);
    if (w && w->strict) {
        if (err && errlen)
            snprintf(err, errlen, "%s (an error because of --strict or strict: true)", text);
        return -1;
    }
    if (w) {
        w->count++;
        if (w->emit) {
            w->emit(w->arg, text);
            return 0;
        }
    }
    sl_warn("%s", text);
    return 0;
}

int
sl_ywarn_at(sl_ywarn_t *w, const char *file, int line, char *err, size_t errlen,
            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = s_ywarn_v(w, file, line, err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

int
sl_ywarn(sl_ywarn_t *w, const sl_ynode_t *node, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = s_ywarn_v(w, node && node->doc ? node->doc->file : NULL, node ? node->line : 1,
                       err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}
