/*
 * Call glue for the four batch entry points of the ring core.
 *
 * A cffi API-mode call packs its arguments into a tuple, checks the type
 * of every pointer argument and releases and re-takes the GIL around the
 * call: about a thousand instructions, four times per batch, which is the
 * same order as the ring work of a whole batch.  The ring calls never
 * block, so there is nothing to gain from releasing the GIL.  These
 * functions take the core's function pointer and plain integer arguments
 * (addresses the caller got from cffi and keeps alive) through the
 * vectorcall protocol and call it directly.
 *
 * No ring logic lives here: the function pointers come from the cffi
 * module (device_ref/ring/c_core.py), so whatever core is loaded (the
 * installed one, or a sanitizer build) is the one called.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef int64_t (*fn_ppupu)(void *, void *, uint32_t, void *, uint32_t);
typedef int64_t (*fn_ppu)(void *, void *, uint32_t);
typedef int64_t (*fn_ppuii)(void *, void *, uint32_t, int, int);

static int arg_ptr(PyObject *o, void **out)
{
    void *p = PyLong_AsVoidPtr(o);
    if (p == NULL && PyErr_Occurred())
        return -1;
    *out = p;
    return 0;
}

static int arg_u32(PyObject *o, uint32_t *out)
{
    unsigned long v = PyLong_AsUnsignedLong(o);
    if (v == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (v > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "value does not fit in 32 bits");
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int check_nargs(Py_ssize_t nargs, Py_ssize_t want, const char *name)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments (%zd given)", name, want, nargs);
        return -1;
    }
    return 0;
}

/* call_ppupu(fn, q, a, n, b, m) -> fn(q, a, n, b, m): ring_add, ring_pop */
static PyObject *call_ppupu(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    void *f, *q, *a, *b;
    uint32_t n, m;
    (void)self;
    if (check_nargs(nargs, 6, "call_ppupu") || arg_ptr(args[0], &f) || arg_ptr(args[1], &q) ||
        arg_ptr(args[2], &a) || arg_u32(args[3], &n) || arg_ptr(args[4], &b) || arg_u32(args[5], &m))
        return NULL;
    if (!f || !q) {
        PyErr_SetString(PyExc_ValueError, "null function or queue");
        return NULL;
    }
    return PyLong_FromLongLong(((fn_ppupu)f)(q, a, n, b, m));
}

/* call_ppu(fn, q, a, n) -> fn(q, a, n): ring_collect */
static PyObject *call_ppu(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    void *f, *q, *a;
    uint32_t n;
    (void)self;
    if (check_nargs(nargs, 4, "call_ppu") || arg_ptr(args[0], &f) || arg_ptr(args[1], &q) ||
        arg_ptr(args[2], &a) || arg_u32(args[3], &n))
        return NULL;
    if (!f || !q) {
        PyErr_SetString(PyExc_ValueError, "null function or queue");
        return NULL;
    }
    return PyLong_FromLongLong(((fn_ppu)f)(q, a, n));
}

/* call_ppuii(fn, q, a, n, x, y) -> fn(q, a, n, bool(x), bool(y)): ring_push */
static PyObject *call_ppuii(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    void *f, *q, *a;
    uint32_t n;
    int x, y;
    (void)self;
    if (check_nargs(nargs, 6, "call_ppuii") || arg_ptr(args[0], &f) || arg_ptr(args[1], &q) ||
        arg_ptr(args[2], &a) || arg_u32(args[3], &n))
        return NULL;
    if ((x = PyObject_IsTrue(args[4])) < 0 || (y = PyObject_IsTrue(args[5])) < 0)
        return NULL;
    if (!f || !q) {
        PyErr_SetString(PyExc_ValueError, "null function or queue");
        return NULL;
    }
    return PyLong_FromLongLong(((fn_ppuii)f)(q, a, n, x, y));
}

static PyMethodDef methods[] = {
    {"call_ppupu", (PyCFunction)(void (*)(void))call_ppupu, METH_FASTCALL,
     "call_ppupu(fn, q, a, n, b, m): fn(q, a, n, b, m) with the GIL held"},
    {"call_ppu", (PyCFunction)(void (*)(void))call_ppu, METH_FASTCALL,
     "call_ppu(fn, q, a, n): fn(q, a, n) with the GIL held"},
    {"call_ppuii", (PyCFunction)(void (*)(void))call_ppuii, METH_FASTCALL,
     "call_ppuii(fn, q, a, n, x, y): fn(q, a, n, x, y) with the GIL held"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ring_glue",
    "Direct calls into the ring core's batch entry points (see ring_glue.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ring_glue(void)
{
    return PyModule_Create(&module);
}
