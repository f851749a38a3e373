/* _spanscan: pick the attributes the normaliser reads straight out of OTLP protobuf bytes.
 *
 * Why this exists: the processor's throughput is bounded by per-span Python work. Walking a
 * parsed request through the upb Python API creates a wrapper object per KeyValue and per
 * AnyValue and a str per key, for every attribute of every span, although the normaliser needs
 * ~10 values of GenAI spans only. This scanner walks the wire format once in C, looks every
 * attribute key up in a small hash table of the keys the normaliser reads, and builds Python
 * objects only for those values, and only for spans that carry a GenAI marker key.
 *
 * It is an accelerator, not a parser of record: the request has already been validated by
 * protobuf's own parser, and anything the scanner does not handle exactly as protobuf's merge
 * rules would (groups, a KeyValue or AnyValue with a repeated field, deep nesting, invalid
 * UTF-8, truncated data) makes ``scan`` return None, and the caller uses the upb path. Every read
 * is bounds-checked, so hostile bytes can only ever produce None.
 *
 * Python API:
 *   table = make_table(keys: dict[str, tuple[int, int]], nslots: int, markers: Iterable[str],
 *                      doc_prefix: str, doc_suffix: str, unusable: object)
 *   scan(table, data: bytes) -> list[tuple[list[tuple[int, object]], list[tuple], int]] | None
 *     one entry per ResourceSpans: (resource (slot, value) pairs in attribute order,
 *     rows of GenAI spans, number of spans without any marker key);
 *     a row is (start_ns, end_ns, status_code, trace_id, span_id, slot_0 .. slot_{n-1}, doc_scores)
 *     where a slot holds the value of the attribute with the lowest rank among the keys mapped to
 *     it, the LAST one when a key repeats (None when absent), and
 *     doc_scores is None or a list of (key, value) for keys doc_prefix*doc_suffix.
 *   Values: str, int, float, bool, list (arrays; kvlist/bytes/unset elements are None), or
 *   ``unusable`` for a kvlist, bytes or unset value.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define OK 0
#define BAIL 1  /* not handled here: caller falls back to the upb path */
#define ERR 2   /* Python exception set */
#define MAX_ARRAY_DEPTH 4
#define ROW_HEAD 5  /* start_ns, end_ns, status_code, trace_id, span_id */
#define STRING_CACHE_SIZE 1024 /* power of two */
#define STRING_CACHE_MAX_LEN 64

typedef struct {
    char *key;
    Py_ssize_t len;
    int slot;
    int rank;  /* several keys may share a slot: the lowest rank present wins */
    int marker;
} Entry;

typedef struct {
    Entry *entries;
    size_t mask;
    int nslots;
    char *doc_prefix;
    Py_ssize_t doc_prefix_len;
    char *doc_suffix;
    Py_ssize_t doc_suffix_len;
    PyObject *unusable;
    PyObject *strings[STRING_CACHE_SIZE];  /* recent short str values, so repeats cost an incref */
} Table;

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Reader;

typedef struct {
    int slot;  /* -1: an OpenInference document score key */
    int rank;
    const uint8_t *key;
    Py_ssize_t key_len;
    const uint8_t *val;  /* AnyValue bytes; NULL when the KeyValue has no value */
    Py_ssize_t val_len;
} Hit;

static uint32_t fnv1a(const uint8_t *s, Py_ssize_t n) {
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 16777619u;
    }
    return h;
}

/* Key hash for the table: length + the first and last 8 bytes. Attribute keys share long
 * prefixes ("gen_ai.usage.") but rarely length, head and tail together, and a collision only
 * costs a memcmp; hashing every byte of every key of every span cost more than the lookup. */
static uint32_t key_hash(const uint8_t *s, Py_ssize_t n) {
    if (n < 16) return fnv1a(s, n);
    uint64_t a, b;
    memcpy(&a, s, 8);
    memcpy(&b, s + n - 8, 8);
    uint64_t h = (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^ ((uint64_t)n * 0x165667B19E3779F9ull);
    return (uint32_t)(h ^ (h >> 29) ^ (h >> 41));
}

static const Entry *lookup(const Table *t, const uint8_t *key, Py_ssize_t len) {
    size_t i = key_hash(key, len) & t->mask;
    for (;;) {
        const Entry *e = &t->entries[i];
        if (e->key == NULL) return NULL;
        if (e->len == len && memcmp(e->key, key, (size_t)len) == 0) return e;
        i = (i + 1) & t->mask;
    }
}

/* -- wire format ------------------------------------------------------------------------------ */

static int read_varint(Reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return BAIL;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return OK;
        }
    }
    return BAIL;
}

static int read_tag(Reader *r, uint32_t *field, int *wt) {
    uint64_t v;
    if (read_varint(r, &v) != OK) return BAIL;
    *wt = (int)(v & 7);
    if ((v >> 3) == 0 || (v >> 3) > 0x1fffffff) return BAIL;
    *field = (uint32_t)(v >> 3);
    return OK;
}

static int read_len(Reader *r, Reader *sub) {
    uint64_t n;
    if (read_varint(r, &n) != OK) return BAIL;
    if (n > (uint64_t)(r->end - r->p)) return BAIL;
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return OK;
}

static int read_fixed64(Reader *r, uint64_t *out) {
    if (r->end - r->p < 8) return BAIL;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | r->p[i];
    r->p += 8;
    *out = v;
    return OK;
}

static int skip_field(Reader *r, int wt) {
    uint64_t v;
    Reader sub;
    switch (wt) {
    case 0: return read_varint(r, &v);
    case 1: if (r->end - r->p < 8) return BAIL; r->p += 8; return OK;
    case 2: return read_len(r, &sub);
    case 5: if (r->end - r->p < 4) return BAIL; r->p += 4; return OK;
    default: return BAIL;  /* groups (3, 4) and invalid wire types */
    }
}

/* A str for UTF-8 bytes; short values come from a direct-mapped cache (model, provider and
 * operation names repeat in nearly every span, and a cached str also keeps its cached hash). */
static PyObject *cached_str(Table *t, const uint8_t *p, Py_ssize_t n) {
    if (n > STRING_CACHE_MAX_LEN) return PyUnicode_DecodeUTF8((const char *)p, n, NULL);
    size_t i = fnv1a(p, n) & (STRING_CACHE_SIZE - 1);
    PyObject *s = t->strings[i];
    if (s != NULL) {
        Py_ssize_t len;
        const char *u = PyUnicode_AsUTF8AndSize(s, &len);
        if (u == NULL) PyErr_Clear();  /* only MemoryError is possible: treat as a miss */
        else if (len == n && memcmp(u, p, (size_t)n) == 0) {
            Py_INCREF(s);
            return s;
        }
    }
    s = PyUnicode_DecodeUTF8((const char *)p, n, NULL);
    if (s == NULL) return NULL;
    Py_INCREF(s);
    Py_XSETREF(t->strings[i], s);
    return s;
}

/* -- values ----------------------------------------------------------------------------------- */

static int any_value(const Table *t, const uint8_t *p, Py_ssize_t n, int depth, PyObject *nonscalar,
                     PyObject **out);

static int array_value(const Table *t, Reader r, int depth, PyObject **out) {
    PyObject *list = PyList_New(0);
    if (list == NULL) return ERR;
    while (r.p < r.end) {
        uint32_t field;
        int wt, rc;
        if (read_tag(&r, &field, &wt) != OK) goto bail;
        if (field != 1) {
            if (skip_field(&r, wt) != OK) goto bail;
            continue;
        }
        if (wt != 2) goto bail;
        Reader sub;
        if (read_len(&r, &sub) != OK) goto bail;
        PyObject *item;
        rc = any_value(t, sub.p, sub.end - sub.p, depth + 1, Py_None, &item);
        if (rc != OK) {
            Py_DECREF(list);
            return rc;
        }
        rc = PyList_Append(list, item);
        Py_DECREF(item);
        if (rc < 0) {
            Py_DECREF(list);
            return ERR;
        }
    }
    *out = list;
    return OK;
bail:
    Py_DECREF(list);
    return BAIL;
}

/* The Python value of an AnyValue; ``nonscalar`` stands for kvlist, bytes and unset values. */
static int any_value(const Table *t, const uint8_t *p, Py_ssize_t n, int depth, PyObject *nonscalar,
                     PyObject **out) {
    if (depth > MAX_ARRAY_DEPTH) return BAIL;
    Reader r = {p, p + n};
    int seen = 0;
    PyObject *v = NULL;
    while (r.p < r.end) {
        uint32_t field;
        int wt;
        uint64_t u;
        Reader sub;
        if (read_tag(&r, &field, &wt) != OK) goto bail;
        if (field < 1 || field > 7) {
            if (skip_field(&r, wt) != OK) goto bail;
            continue;
        }
        if (seen++) goto bail;  /* two oneof members or a merged member: leave it to upb */
        switch (field) {
        case 1:  /* string_value */
            if (wt != 2 || read_len(&r, &sub) != OK) goto bail;
            v = cached_str((Table *)t, sub.p, sub.end - sub.p);
            if (v == NULL) {
                PyErr_Clear();
                goto bail;
            }
            break;
        case 2:  /* bool_value */
            if (wt != 0 || read_varint(&r, &u) != OK) goto bail;
            v = PyBool_FromLong(u != 0);
            break;
        case 3:  /* int_value (int64, two's complement) */
            if (wt != 0 || read_varint(&r, &u) != OK) goto bail;
            v = PyLong_FromLongLong((long long)(int64_t)u);
            if (v == NULL) return ERR;
            break;
        case 4: {  /* double_value */
            double d;
            if (wt != 1 || read_fixed64(&r, &u) != OK) goto bail;
            memcpy(&d, &u, sizeof d);
            v = PyFloat_FromDouble(d);
            if (v == NULL) return ERR;
            break;
        }
        case 5: {  /* array_value */
            int rc;
            if (wt != 2 || read_len(&r, &sub) != OK) goto bail;
            rc = array_value(t, sub, depth, &v);
            if (rc != OK) return rc;
            break;
        }
        default:  /* 6 kvlist_value, 7 bytes_value */
            if (wt != 2 || read_len(&r, &sub) != OK) goto bail;
            Py_INCREF(nonscalar);
            v = nonscalar;
            break;
        }
    }
    if (v == NULL) {  /* unset */
        Py_INCREF(nonscalar);
        v = nonscalar;
    }
    *out = v;
    return OK;
bail:
    Py_XDECREF(v);
    return BAIL;
}

/* -- KeyValue ----------------------------------------------------------------------------------- */

/* Finds the key and value of one KeyValue; ``hit->slot`` = -2 when the key is not wanted. */
static int key_value(const Table *t, Reader r, Hit *hit, int *marker) {
    const uint8_t *key = (const uint8_t *)"";
    Py_ssize_t key_len = 0;
    int seen_key = 0, seen_val = 0;
    hit->val = NULL;
    hit->val_len = 0;
    while (r.p < r.end) {
        uint32_t field;
        int wt;
        Reader sub;
        if (read_tag(&r, &field, &wt) != OK) return BAIL;
        if (field == 1 || field == 2) {
            if (wt != 2 || read_len(&r, &sub) != OK) return BAIL;
            if (field == 1) {
                if (seen_key++) return BAIL;
                key = sub.p;
                key_len = sub.end - sub.p;
            } else {
                if (seen_val++) return BAIL;
                hit->val = sub.p;
                hit->val_len = sub.end - sub.p;
            }
        } else if (skip_field(&r, wt) != OK) {
            return BAIL;
        }
    }
    hit->key = key;
    hit->key_len = key_len;
    const Entry *e = lookup(t, key, key_len);
    if (e != NULL) {
        hit->slot = e->slot;
        hit->rank = e->rank;
        if (e->marker) *marker = 1;
    } else if (key_len >= t->doc_prefix_len + t->doc_suffix_len && t->doc_prefix_len > 0 &&
               memcmp(key, t->doc_prefix, (size_t)t->doc_prefix_len) == 0 &&
               memcmp(key + key_len - t->doc_suffix_len, t->doc_suffix, (size_t)t->doc_suffix_len) == 0) {
        hit->slot = -1;
    } else {
        hit->slot = -2;
    }
    return OK;
}

static int hit_value(const Table *t, const Hit *h, PyObject **out) {
    if (h->val == NULL) {
        Py_INCREF(t->unusable);
        *out = t->unusable;
        return OK;
    }
    return any_value(t, h->val, h->val_len, 0, t->unusable, out);
}

/* -- Span ----------------------------------------------------------------------------------------- */

typedef struct {
    Hit *items;
    Py_ssize_t n;
    Py_ssize_t cap;
} Hits;

static int hits_push(Hits *hs, const Hit *h) {
    if (hs->n == hs->cap) {
        Py_ssize_t cap = hs->cap ? hs->cap * 2 : 32;
        Hit *items = PyMem_Realloc(hs->items, (size_t)cap * sizeof(Hit));
        if (items == NULL) {
            PyErr_NoMemory();
            return ERR;
        }
        hs->items = items;
        hs->cap = cap;
    }
    hs->items[hs->n++] = *h;
    return OK;
}

static int status_code(Reader r, long *code) {
    while (r.p < r.end) {
        uint32_t field;
        int wt;
        uint64_t u;
        if (read_tag(&r, &field, &wt) != OK) return BAIL;
        if (field == 3) {
            if (wt != 0 || read_varint(&r, &u) != OK) return BAIL;
            *code = (long)(int32_t)u;
        } else if (skip_field(&r, wt) != OK) {
            return BAIL;
        }
    }
    return OK;
}

/* One Span: appends a row to ``rows`` when it carries a marker key, else counts it skipped. */
static int span(const Table *t, Reader r, Hits *hs, int *ranks, PyObject *rows, Py_ssize_t *skipped) {
    uint64_t start = 0, end = 0;
    long code = 0;
    const uint8_t *tid = NULL, *sid = NULL;
    Py_ssize_t tid_len = 0, sid_len = 0;
    int marker = 0;
    hs->n = 0;
    while (r.p < r.end) {
        uint32_t field;
        int wt;
        Reader sub;
        if (read_tag(&r, &field, &wt) != OK) return BAIL;
        switch (field) {
        case 1:
            if (wt != 2 || read_len(&r, &sub) != OK) return BAIL;
            tid = sub.p;
            tid_len = sub.end - sub.p;
            break;
        case 2:  /* span_id: like trace_id, the last occurrence wins (protobuf's merge rule) */
            if (wt != 2 || read_len(&r, &sub) != OK) return BAIL;
            sid = sub.p;
            sid_len = sub.end - sub.p;
            break;
        case 7:
            if (wt != 1 || read_fixed64(&r, &start) != OK) return BAIL;
            break;
        case 8:
            if (wt != 1 || read_fixed64(&r, &end) != OK) return BAIL;
            break;
        case 9: {
            Hit h;
            if (wt != 2 || read_len(&r, &sub) != OK) return BAIL;
            if (key_value(t, sub, &h, &marker) != OK) return BAIL;
            if (h.slot != -2 && hits_push(hs, &h) != OK) return ERR;
            break;
        }
        case 15:
            if (wt != 2 || read_len(&r, &sub) != OK) return BAIL;
            if (status_code(sub, &code) != OK) return BAIL;
            break;
        default:
            if (skip_field(&r, wt) != OK) return BAIL;
        }
    }
    if (!marker) {
        (*skipped)++;
        return OK;
    }
    Py_ssize_t n = ROW_HEAD + t->nslots + 1;
    PyObject *row = PyTuple_New(n);
    if (row == NULL) return ERR;
    PyObject *docs = NULL;
    int rc = ERR;
    PyObject *x;
    if ((x = PyLong_FromUnsignedLongLong(start)) == NULL) goto done;
    PyTuple_SET_ITEM(row, 0, x);
    if ((x = PyLong_FromUnsignedLongLong(end)) == NULL) goto done;
    PyTuple_SET_ITEM(row, 1, x);
    if ((x = PyLong_FromLong(code)) == NULL) goto done;
    PyTuple_SET_ITEM(row, 2, x);
    if ((x = PyBytes_FromStringAndSize((const char *)(tid ? tid : (const uint8_t *)""), tid_len)) == NULL) goto done;
    PyTuple_SET_ITEM(row, 3, x);
    if ((x = PyBytes_FromStringAndSize((const char *)(sid ? sid : (const uint8_t *)""), sid_len)) == NULL) goto done;
    PyTuple_SET_ITEM(row, 4, x);
    for (Py_ssize_t i = ROW_HEAD; i < n; i++) {
        Py_INCREF(Py_None);
        PyTuple_SET_ITEM(row, i, Py_None);
    }
    for (Py_ssize_t i = 0; i < hs->n; i++) {  /* which hit fills each slot: lowest rank, then last */
        const Hit *h = &hs->items[i];
        if (h->slot >= 0 && (ranks[h->slot] < 0 || h->rank <= ranks[h->slot])) ranks[h->slot] = h->rank;
    }
    for (Py_ssize_t i = 0; i < hs->n; i++) {
        const Hit *h = &hs->items[i];
        PyObject *v;
        if (h->slot >= 0 && h->rank != ranks[h->slot]) continue;
        rc = hit_value(t, h, &v);
        if (rc != OK) goto done;
        if (h->slot >= 0) {
            Py_ssize_t pos = ROW_HEAD + h->slot;
            PyObject *old = PyTuple_GET_ITEM(row, pos);
            PyTuple_SET_ITEM(row, pos, v);
            Py_DECREF(old);
        } else {
            PyObject *k = PyUnicode_DecodeUTF8((const char *)h->key, h->key_len, NULL);
            if (k == NULL) {
                PyErr_Clear();
                Py_DECREF(v);
                rc = BAIL;
                goto done;
            }
            PyObject *pair = PyTuple_Pack(2, k, v);
            Py_DECREF(k);
            Py_DECREF(v);
            rc = ERR;
            if (pair == NULL) goto done;
            if (docs == NULL && (docs = PyList_New(0)) == NULL) {
                Py_DECREF(pair);
                goto done;
            }
            int ok = PyList_Append(docs, pair);
            Py_DECREF(pair);
            if (ok < 0) goto done;
        }
    }
    if (docs != NULL) {
        PyObject *old = PyTuple_GET_ITEM(row, n - 1);
        PyTuple_SET_ITEM(row, n - 1, docs);
        Py_DECREF(old);
        docs = NULL;
    }
    rc = PyList_Append(rows, row) < 0 ? ERR : OK;
done:  /* success or not: the ranks go back to "unset" for the next span, the row to the list */
    for (Py_ssize_t i = 0; i < hs->n; i++)
        if (hs->items[i].slot >= 0) ranks[hs->items[i].slot] = -1;
    Py_XDECREF(docs);
    Py_DECREF(row);
    return rc;
}

/* -- containers ----------------------------------------------------------------------------------- */

static int resource(const Table *t, Reader r, PyObject *pairs) {
    while (r.p < r.end) {
        uint32_t field;
        int wt;
        Reader sub;
        if (read_tag(&r, &field, &wt) != OK) return BAIL;
        if (field != 1) {
            if (skip_field(&r, wt) != OK) return BAIL;
            continue;
        }
        if (wt != 2 || read_len(&r, &sub) != OK) return BAIL;
        Hit h;
        int marker = 0;
        if (key_value(t, sub, &h, &marker) != OK) return BAIL;
        if (h.slot < 0) continue;
        PyObject *v;
        int rc = hit_value(t, &h, &v);
        if (rc != OK) return rc;
        PyObject *pair = Py_BuildValue("(iN)", h.slot, v);
        if (pair == NULL) return ERR;
        rc = PyList_Append(pairs, pair);
        Py_DECREF(pair);
        if (rc < 0) return ERR;
    }
    return OK;
}

static int scope_spans(const Table *t, Reader r, Hits *hs, int *ranks, PyObject *rows, Py_ssize_t *skipped) {
    while (r.p < r.end) {
        uint32_t field;
        int wt;
        Reader sub;
        if (read_tag(&r, &field, &wt) != OK) return BAIL;
        if (field != 2) {
            if (skip_field(&r, wt) != OK) return BAIL;
            continue;
        }
        if (wt != 2 || read_len(&r, &sub) != OK) return BAIL;
        int rc = span(t, sub, hs, ranks, rows, skipped);
        if (rc != OK) return rc;
    }
    return OK;
}

static int resource_spans(const Table *t, Reader r, Hits *hs, int *ranks, PyObject *out) {
    PyObject *pairs = PyList_New(0);
    PyObject *rows = PyList_New(0);
    Py_ssize_t skipped = 0;
    int rc = ERR;
    if (pairs == NULL || rows == NULL) goto done;
    while (r.p < r.end) {
        uint32_t field;
        int wt;
        Reader sub;
        rc = BAIL;
        if (read_tag(&r, &field, &wt) != OK) goto done;
        if (field == 1 || field == 2) {
            if (wt != 2 || read_len(&r, &sub) != OK) goto done;
            rc = field == 1 ? resource(t, sub, pairs) : scope_spans(t, sub, hs, ranks, rows, &skipped);
            if (rc != OK) goto done;
        } else if (skip_field(&r, wt) != OK) {
            goto done;
        }
    }
    rc = ERR;
    PyObject *entry = Py_BuildValue("(OOn)", pairs, rows, skipped);
    if (entry == NULL) goto done;
    rc = PyList_Append(out, entry) < 0 ? ERR : OK;
    Py_DECREF(entry);
done:
    Py_XDECREF(pairs);
    Py_XDECREF(rows);
    return rc;
}

/* -- module --------------------------------------------------------------------------------------- */

static void table_free(PyObject *capsule) {
    Table *t = PyCapsule_GetPointer(capsule, "gensight._spanscan.Table");
    if (t == NULL) return;
    if (t->entries != NULL) {
        for (size_t i = 0; i <= t->mask; i++) PyMem_Free(t->entries[i].key);
        PyMem_Free(t->entries);
    }
    PyMem_Free(t->doc_prefix);
    PyMem_Free(t->doc_suffix);
    Py_XDECREF(t->unusable);
    for (int i = 0; i < STRING_CACHE_SIZE; i++) Py_XDECREF(t->strings[i]);
    PyMem_Free(t);
}

static char *copy_utf8(PyObject *s, Py_ssize_t *len) {
    const char *u = PyUnicode_AsUTF8AndSize(s, len);
    if (u == NULL) return NULL;
    char *c = PyMem_Malloc((size_t)*len + 1);
    if (c == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(c, u, (size_t)*len + 1);
    return c;
}

static PyObject *make_table(PyObject *self, PyObject *args) {
    PyObject *keys, *markers, *prefix, *suffix, *unusable;
    int nslots;
    if (!PyArg_ParseTuple(args, "O!iOUUO:make_table", &PyDict_Type, &keys, &nslots, &markers, &prefix, &suffix,
                          &unusable))
        return NULL;
    Table *t = PyMem_Calloc(1, sizeof(Table));
    if (t == NULL) return PyErr_NoMemory();
    PyObject *capsule = PyCapsule_New(t, "gensight._spanscan.Table", table_free);
    if (capsule == NULL) {
        PyMem_Free(t);
        return NULL;
    }
    Py_INCREF(unusable);
    t->unusable = unusable;
    t->nslots = nslots;
    size_t size = 16;
    while (size < (size_t)PyDict_Size(keys) * 4) size *= 2;
    t->mask = size - 1;
    t->entries = PyMem_Calloc(size, sizeof(Entry));
    if (t->entries == NULL) goto nomem;
    if ((t->doc_prefix = copy_utf8(prefix, &t->doc_prefix_len)) == NULL) goto fail;
    if ((t->doc_suffix = copy_utf8(suffix, &t->doc_suffix_len)) == NULL) goto fail;
    PyObject *marker_set = PySet_New(markers);
    if (marker_set == NULL) goto fail;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(keys, &pos, &k, &v)) {
        long slot = -1, rank = -1;
        if (PyTuple_Check(v) && PyTuple_GET_SIZE(v) == 2) {
            slot = PyLong_AsLong(PyTuple_GET_ITEM(v, 0));
            rank = PyLong_AsLong(PyTuple_GET_ITEM(v, 1));
        }
        if (!PyUnicode_Check(k) || slot < 0 || slot >= nslots || rank < 0 || rank > 1000) {
            Py_DECREF(marker_set);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "make_table: keys must map str -> (slot in [0, nslots), rank)");
            goto fail;
        }
        Py_ssize_t len;
        char *c = copy_utf8(k, &len);
        if (c == NULL) {
            Py_DECREF(marker_set);
            goto fail;
        }
        size_t i = key_hash((const uint8_t *)c, len) & t->mask;
        while (t->entries[i].key != NULL) i = (i + 1) & t->mask;
        t->entries[i].key = c;
        t->entries[i].len = len;
        t->entries[i].slot = (int)slot;
        t->entries[i].rank = (int)rank;
        int m = PySet_Contains(marker_set, k);
        if (m < 0) {
            Py_DECREF(marker_set);
            goto fail;
        }
        t->entries[i].marker = m;
    }
    Py_DECREF(marker_set);
    return capsule;
nomem:
    PyErr_NoMemory();
fail:
    Py_DECREF(capsule);
    return NULL;
}

static PyObject *scan(PyObject *self, PyObject *args) {
    PyObject *capsule;
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "Oy*:scan", &capsule, &buf)) return NULL;
    Table *t = PyCapsule_GetPointer(capsule, "gensight._spanscan.Table");
    if (t == NULL) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    PyObject *out = PyList_New(0);
    Hits hs = {NULL, 0, 0};
    int rc = ERR;
    int *ranks = PyMem_Malloc(sizeof(int) * (size_t)(t->nslots > 0 ? t->nslots : 1));
    if (out == NULL || ranks == NULL) goto done;
    for (int i = 0; i < t->nslots; i++) ranks[i] = -1;
    Reader r = {(const uint8_t *)buf.buf, (const uint8_t *)buf.buf + buf.len};
    rc = OK;
    while (r.p < r.end && rc == OK) {
        uint32_t field;
        int wt;
        Reader sub;
        if (read_tag(&r, &field, &wt) != OK) {
            rc = BAIL;
        } else if (field == 1) {
            if (wt != 2 || read_len(&r, &sub) != OK) rc = BAIL;
            else rc = resource_spans(t, sub, &hs, ranks, out);
        } else if (skip_field(&r, wt) != OK) {
            rc = BAIL;
        }
    }
done:
    if (ranks == NULL && out != NULL) PyErr_NoMemory();
    PyMem_Free(ranks);
    PyMem_Free(hs.items);
    PyBuffer_Release(&buf);
    if (rc == OK) return out;
    Py_XDECREF(out);
    if (rc == ERR) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"make_table", make_table, METH_VARARGS, "Build the key table scan() looks attribute keys up in."},
    {"scan", scan, METH_VARARGS, "Pick the wanted attributes of GenAI spans out of ExportTraceServiceRequest bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_spanscan", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__spanscan(void) { return PyModule_Create(&module); }
