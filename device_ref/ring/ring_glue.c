/*
 * Call glue for the four batch entry points of the ring core.
 *
 * A cffi API-mode call packs its arguments into a tuple, checks the type
 * of every pointer argument and releases and re-takes the GIL around the
 * call: about a thousand instructions, four times per batch, which is the
 * same order as the ring work of a whole batch.  The ring calls never
 * block, so there is nothing to gain from releasing the GIL.  A
 * BatchCall holds the core's function pointer and the queue's address
 * (both from cffi), is called through the vectorcall protocol, reads the
 * batch's attributes itself and calls the core directly: no Python frame
 * and no argument tuple per batch.
 *
 * No ring logic lives here: the function pointers come from the cffi
 * module (device_ref/ring/c_core.py), so whatever core is loaded (the
 * installed one, or a sanitizer build) is the one called.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
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

/* ---- BatchCall: one queue's batch entry point as a Python callable ----
 *
 * BatchCall(kind, fn, q, last_count, bind, fail, keep) is what
 * DriverQueue.add_batch (etc.) is on the C backend.  It reads the batch's
 * attributes, calls the core and fills in the result with no Python frame
 * in between.  kind: 0 add, 1 collect, 2 pop, 3 push.  `bind(batch)`
 * returns the batch's buffer addresses (and pins them), `fail(code, count)`
 * builds the RingError to raise (count None: not reported), `keep` holds
 * whatever the raw queue pointer needs alive. */

enum { K_ADD, K_COLLECT, K_POP, K_PUSH };

typedef uint32_t (*fn_count)(void *);

/* the batch attributes a call reads (A_N, A_M) and writes (A_COUNT_OUT) */
enum { A_CA, A_N, A_M, A_COUNT_OUT, N_ATTR };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int kind;
    void *fn, *q;
    fn_count last_count;
    PyObject *bind, *fail, *keep;
    PyObject *names[N_ATTR];        /* borrowed interned names; NULL: not used */
    /* The batch classes keep these attributes in __slots__: for the last
     * batch type seen, their offsets in the object, read directly instead
     * of a generic attribute look-up per attribute per call (-1: look up). */
    PyTypeObject *type;
    Py_ssize_t off[N_ATTR];
} BatchCall;

static PyObject *s_ca, *s_count, *s_nsegs, *s_max_entries, *s_max_chains, *s_max_segs, *s_fill, *s_coalesce;

static void resolve_slots(BatchCall *self, PyTypeObject *type)
{
    for (int i = 0; i < N_ATTR; i++) {
        self->off[i] = -1;
        if (!self->names[i])
            continue;
        PyObject *d = PyObject_GetAttr((PyObject *)type, self->names[i]);
        if (!d) {
            PyErr_Clear();
            continue;
        }
        if (Py_IS_TYPE(d, &PyMemberDescr_Type)) {
            PyMemberDef *md = ((PyMemberDescrObject *)d)->d_member;
            if (md->type == T_OBJECT_EX && !(md->flags & READONLY))
                self->off[i] = md->offset;
        }
        Py_DECREF(d);
    }
    Py_INCREF(type);            /* held, so the address cannot be reused by another type */
    Py_XSETREF(self->type, type);
}

/* new reference to attribute i of the batch */
static PyObject *attr_get(BatchCall *self, PyObject *batch, int i)
{
    if (Py_TYPE(batch) != self->type)
        resolve_slots(self, Py_TYPE(batch));
    if (self->off[i] >= 0) {
        PyObject *v = *(PyObject **)((char *)batch + self->off[i]);
        if (!v) {
            PyErr_SetObject(PyExc_AttributeError, self->names[i]);
            return NULL;
        }
        Py_INCREF(v);
        return v;
    }
    return PyObject_GetAttr(batch, self->names[i]);
}

static int attr_set(BatchCall *self, PyObject *batch, int i, PyObject *v)
{
    if (Py_TYPE(batch) != self->type)
        resolve_slots(self, Py_TYPE(batch));
    if (self->off[i] >= 0) {
        PyObject **p = (PyObject **)((char *)batch + self->off[i]);
        PyObject *old = *p;
        Py_INCREF(v);
        *p = v;
        Py_XDECREF(old);
        return 0;
    }
    return PyObject_SetAttr(batch, self->names[i], v);
}

static int get_u32(BatchCall *self, PyObject *batch, int i, uint32_t *out)
{
    PyObject *v = attr_get(self, batch, i);
    if (!v)
        return -1;
    int r = arg_u32(v, out);
    Py_DECREF(v);
    return r;
}

/* the batch's buffer addresses and capacities (records): its `_ca` tuple
 * (address, capacity, address, capacity), made by bind() the first time */
static int get_addrs(BatchCall *self, PyObject *batch, void **a0, uint32_t *c0, void **a1, uint32_t *c1)
{
    PyObject *ca = attr_get(self, batch, A_CA);
    if (!ca)
        return -1;
    if (ca == Py_None) {
        Py_DECREF(ca);
        ca = PyObject_CallOneArg(self->bind, batch);
        if (!ca)
            return -1;
    }
    int r = -1;
    Py_ssize_t want = a1 ? 4 : 2;
    if (!PyTuple_Check(ca) || PyTuple_GET_SIZE(ca) < want)
        PyErr_SetString(PyExc_TypeError, "batch addresses must be a tuple");
    else if (!arg_ptr(PyTuple_GET_ITEM(ca, 0), a0) && !arg_u32(PyTuple_GET_ITEM(ca, 1), c0) &&
             (!a1 || (!arg_ptr(PyTuple_GET_ITEM(ca, 2), a1) && !arg_u32(PyTuple_GET_ITEM(ca, 3), c1))))
        r = 0;
    Py_DECREF(ca);
    return r;
}

static PyObject *raise_ring_error(BatchCall *self, int64_t r, PyObject *count)
{
    PyObject *code = PyLong_FromLongLong(-r);
    if (!code)
        return NULL;
    PyObject *exc = PyObject_CallFunctionObjArgs(self->fail, code, count, NULL);
    Py_DECREF(code);
    if (!exc)
        return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

/* counts a caller set beyond the batch's buffers: BAD_REQUEST, nothing done
 * (batch.py check_capacity says the same for the other paths) */
static PyObject *over_capacity(BatchCall *self)
{
    return raise_ring_error(self, -5, Py_None);     /* RING_E_BAD_REQUEST */
}

/* collect and pop: set batch.count to what completed; raise on error */
static PyObject *finish_count(BatchCall *self, PyObject *batch, int64_t r)
{
    PyObject *n = PyLong_FromLongLong(r < 0 ? (int64_t)self->last_count(self->q) : r);
    if (!n)
        return NULL;
    if (attr_set(self, batch, A_COUNT_OUT, n) < 0) {
        Py_DECREF(n);
        return NULL;
    }
    if (r < 0) {
        raise_ring_error(self, r, n);
        Py_DECREF(n);
        return NULL;
    }
    return n;
}

static PyObject *batchcall_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    BatchCall *self = (BatchCall *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    void *a0 = NULL, *a1 = NULL;
    uint32_t n = 0, m = 0, c0 = 0, c1 = 0;
    int64_t r;
    if (!self->keep) {
        PyErr_SetString(PyExc_ValueError, "the queue of this batch call has been released");
        return NULL;
    }
    if (self->kind != K_PUSH && (nargs != 1 || nkw)) {
        PyErr_SetString(PyExc_TypeError, "takes exactly one argument (the batch)");
        return NULL;
    }
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "missing the batch argument");
        return NULL;
    }
    PyObject *batch = args[0];
    switch (self->kind) {
    case K_ADD:
        if (get_addrs(self, batch, &a0, &c0, &a1, &c1) || get_u32(self, batch, A_N, &n) ||
            get_u32(self, batch, A_M, &m))
            return NULL;
        if (n > c0 || m > c1)
            return over_capacity(self);
        r = ((fn_ppupu)self->fn)(self->q, a0, n, a1, m);
        if (r < 0) {
            PyObject *c = PyLong_FromUnsignedLong(self->last_count(self->q));
            if (c) {
                raise_ring_error(self, r, c);
                Py_DECREF(c);
            }
            return NULL;
        }
        {
            PyObject *added = PyLong_FromLongLong(r >> 1);
            if (!added)
                return NULL;
            PyObject *notify = PyBool_FromLong((long)(r & 1));
            PyObject *t = PyTuple_New(2);
            if (!t) {
                Py_DECREF(added);
                Py_DECREF(notify);
                return NULL;
            }
            PyTuple_SET_ITEM(t, 0, added);
            PyTuple_SET_ITEM(t, 1, notify);
            return t;
        }
    case K_COLLECT:
        if (get_addrs(self, batch, &a0, &c0, NULL, NULL) || get_u32(self, batch, A_N, &n))
            return NULL;
        if (n > c0)
            return over_capacity(self);
        r = ((fn_ppu)self->fn)(self->q, a0, n);
        return finish_count(self, batch, r);
    case K_POP:
        if (get_addrs(self, batch, &a0, &c0, &a1, &c1) || get_u32(self, batch, A_N, &n) ||
            get_u32(self, batch, A_M, &m))
            return NULL;
        if (n > c0 || m > c1)
            return over_capacity(self);
        r = ((fn_ppupu)self->fn)(self->q, a0, n, a1, m);
        return finish_count(self, batch, r);
    default: {   /* K_PUSH: (batch, fill=False, coalesce=False) */
        PyObject *opt[2] = { NULL, NULL };
        int fill, coalesce;
        if (nargs > 3) {
            PyErr_SetString(PyExc_TypeError, "push_batch takes at most 3 arguments");
            return NULL;
        }
        for (Py_ssize_t i = 1; i < nargs; i++)
            opt[i - 1] = args[i];
        for (Py_ssize_t i = 0; i < nkw; i++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, i);
            int which = -1;
            if (PyUnicode_Compare(key, s_fill) == 0)
                which = 0;
            else if (PyUnicode_Compare(key, s_coalesce) == 0)
                which = 1;
            if (which < 0 || opt[which]) {
                PyErr_Format(PyExc_TypeError, "push_batch: unexpected or repeated argument %R", key);
                return NULL;
            }
            opt[which] = args[nargs + i];
        }
        fill = opt[0] ? PyObject_IsTrue(opt[0]) : 0;
        coalesce = opt[1] ? PyObject_IsTrue(opt[1]) : 0;
        if (fill < 0 || coalesce < 0)
            return NULL;
        if (get_addrs(self, batch, &a0, &c0, NULL, NULL) || get_u32(self, batch, A_N, &n))
            return NULL;
        if (n > c0)
            return over_capacity(self);
        r = ((fn_ppuii)self->fn)(self->q, a0, n, fill, coalesce);
        if (r < 0)
            return raise_ring_error(self, r, Py_None);
        return PyBool_FromLong(r == 1);
    }
    }
}

static PyObject *batchcall_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    int kind;
    PyObject *fn, *q, *lc, *bind, *fail, *keep;
    if (kw && PyDict_GET_SIZE(kw)) {
        PyErr_SetString(PyExc_TypeError, "BatchCall takes positional arguments only");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "iOOOOOO", &kind, &fn, &q, &lc, &bind, &fail, &keep))
        return NULL;
    if (kind < K_ADD || kind > K_PUSH) {
        PyErr_SetString(PyExc_ValueError, "kind must be 0..3");
        return NULL;
    }
    if (!PyCallable_Check(bind) || !PyCallable_Check(fail)) {
        PyErr_SetString(PyExc_TypeError, "bind and fail must be callable");
        return NULL;
    }
    BatchCall *self = (BatchCall *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->vectorcall = batchcall_vectorcall;
    self->kind = kind;
    if (arg_ptr(fn, &self->fn) || arg_ptr(q, &self->q) || arg_ptr(lc, (void **)&self->last_count)) {
        Py_DECREF(self);
        return NULL;
    }
    if (!self->fn || !self->q || !self->last_count) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_ValueError, "null function or queue");
        return NULL;
    }
    static PyObject **const names[4][N_ATTR] = {
        [K_ADD] = { &s_ca, &s_count, &s_nsegs, NULL },
        [K_COLLECT] = { &s_ca, &s_max_entries, NULL, &s_count },
        [K_POP] = { &s_ca, &s_max_chains, &s_max_segs, &s_count },
        [K_PUSH] = { &s_ca, &s_count, NULL, NULL },
    };
    for (int i = 0; i < N_ATTR; i++) {
        self->names[i] = names[kind][i] ? *names[kind][i] : NULL;
        self->off[i] = -1;
    }
    self->type = NULL;
    Py_INCREF(bind);
    Py_INCREF(fail);
    Py_INCREF(keep);
    self->bind = bind;
    self->fail = fail;
    self->keep = keep;
    return (PyObject *)self;
}

/* the held objects could be part of a reference cycle (a caller keeping a
 * queue's call on its memory object, say): take part in garbage collection */
static int batchcall_traverse(BatchCall *self, visitproc visit, void *arg)
{
    Py_VISIT(self->bind);
    Py_VISIT(self->fail);
    Py_VISIT(self->keep);
    Py_VISIT(self->type);
    return 0;
}

static int batchcall_clear(BatchCall *self)
{
    Py_CLEAR(self->bind);
    Py_CLEAR(self->fail);
    Py_CLEAR(self->keep);       /* from here on, calls are refused: the queue may be gone */
    Py_CLEAR(self->type);
    return 0;
}

static void batchcall_dealloc(BatchCall *self)
{
    PyObject_GC_UnTrack(self);
    batchcall_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject BatchCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "device_ref.ring._ring_glue.BatchCall",
    .tp_basicsize = sizeof(BatchCall),
    .tp_dealloc = (destructor)batchcall_dealloc,
    .tp_vectorcall_offset = offsetof(BatchCall, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)batchcall_traverse,
    .tp_clear = (inquiry)batchcall_clear,
    .tp_doc = "One queue's batch entry point (see ring_glue.c)",
    .tp_new = batchcall_new,
};

static PyMethodDef methods[] = {
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ring_glue",
    "Direct calls into the ring core's batch entry points (see ring_glue.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ring_glue(void)
{
    if (PyType_Ready(&BatchCallType) < 0)
        return NULL;
#define INTERN(var, text) if (!(var = PyUnicode_InternFromString(text))) return NULL
    INTERN(s_ca, "_ca");
    INTERN(s_count, "count");
    INTERN(s_nsegs, "nsegs");
    INTERN(s_max_entries, "max_entries");
    INTERN(s_max_chains, "max_chains");
    INTERN(s_max_segs, "max_segs");
    INTERN(s_fill, "fill");
    INTERN(s_coalesce, "coalesce");
#undef INTERN
    PyObject *mod = PyModule_Create(&module);
    if (!mod)
        return NULL;
#ifndef GLUE_SOURCE_ID
#define GLUE_SOURCE_ID "unknown"
#endif
    if (PyModule_AddStringConstant(mod, "SOURCE_ID", GLUE_SOURCE_ID) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    Py_INCREF(&BatchCallType);
    if (PyModule_AddObject(mod, "BatchCall", (PyObject *)&BatchCallType) < 0) {
        Py_DECREF(&BatchCallType);
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
