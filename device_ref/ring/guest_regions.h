/*
 * Guest memory as the per-request loops (pair_loops.c, blk_loops.c) see it:
 * the regions of a GuestMemory (device_ref/ring/memory.py), each a
 * writable buffer held (PyObject_GetBuffer) for one call only, and the
 * bounds-checked look-up of a guest range in them. Static functions: each
 * extension that includes this compiles its own copy, and setup.py hashes
 * this header into the source id of each.
 *
 * The includer makes its module with loops_module(), which interns s_gpa,
 * s_size and s_view.
 */
#ifndef GUEST_REGIONS_H
#define GUEST_REGIONS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *s_gpa, *s_size, *s_view;

static inline int regions_init(void)
{
    s_gpa = PyUnicode_InternFromString("gpa");
    s_size = PyUnicode_InternFromString("size");
    s_view = PyUnicode_InternFromString("view");
    return s_gpa && s_size && s_view ? 0 : -1;
}

typedef struct {
    uint64_t gpa, size;
    uint8_t *host;
    PyObject *view;             /* the region's memoryview (new reference) */
    Py_buffer buf;
} region_t;

typedef struct {
    region_t *r;
    Py_ssize_t n;
} regions_t;

static inline void regions_release(regions_t *m)
{
    for (Py_ssize_t i = 0; i < m->n; i++) {
        PyBuffer_Release(&m->r[i].buf);
        Py_DECREF(m->r[i].view);
    }
    PyMem_Free(m->r);
    m->r = NULL;
    m->n = 0;
}

static inline int get_u64(PyObject *obj, PyObject *name, uint64_t *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (!v)
        return -1;
    *out = PyLong_AsUnsignedLongLong(v);
    Py_DECREF(v);
    return (*out == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

/* `list`: GuestMemory._regions, Region objects with gpa, size and view */
static inline int regions_get(PyObject *list, regions_t *m)
{
    m->n = 0;
    if (!PyList_Check(list)) {
        PyErr_SetString(PyExc_TypeError, "regions must be a list");
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(list);
    m->r = PyMem_Calloc(n ? n : 1, sizeof(region_t));
    if (!m->r) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *reg = PyList_GET_ITEM(list, i);
        region_t *r = &m->r[i];
        if (get_u64(reg, s_gpa, &r->gpa) < 0 || get_u64(reg, s_size, &r->size) < 0)
            goto fail;
        r->view = PyObject_GetAttr(reg, s_view);
        if (!r->view)
            goto fail;
        if (PyObject_GetBuffer(r->view, &r->buf, PyBUF_WRITABLE) < 0) {
            Py_CLEAR(r->view);
            goto fail;
        }
        if ((uint64_t)r->buf.len < r->size) {
            PyBuffer_Release(&r->buf);
            Py_CLEAR(r->view);
            PyErr_SetString(PyExc_ValueError, "region view shorter than its size");
            goto fail;
        }
        r->host = r->buf.buf;
        m->n = i + 1;
    }
    return 0;
fail:
    regions_release(m);
    return -1;
}

/* the region holding [gpa, gpa+len), and the offset in it; NULL if none */
static inline region_t *regions_find(const regions_t *m, uint64_t gpa, uint64_t len, uint64_t *off)
{
    for (Py_ssize_t i = 0; i < m->n; i++) {
        region_t *r = &m->r[i];
        if (gpa >= r->gpa && len <= r->size && gpa - r->gpa <= r->size - len) {
            *off = gpa - r->gpa;
            return r;
        }
    }
    return NULL;
}

/* a memoryview of [off, off+len) of region r: what translate() returns */
static inline PyObject *region_slice(region_t *r, uint64_t off, uint64_t len)
{
    return PySequence_GetSlice(r->view, (Py_ssize_t)off, (Py_ssize_t)(off + len));
}

/* a loop file's module: the region names interned, the module made, and
 * the hash of the sources it was built from as SOURCE_ID (c_stale()) */
static inline PyObject *loops_module(struct PyModuleDef *def, const char *source_id)
{
    if (regions_init() < 0)
        return NULL;
    PyObject *mod = PyModule_Create(def);
    if (mod && PyModule_AddStringConstant(mod, "SOURCE_ID", source_id) < 0)
        Py_CLEAR(mod);
    return mod;
}

#endif
