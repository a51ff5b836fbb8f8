/*
 * Per-request loops of fixed-shape requests: one device-readable and one
 * device-writable descriptor a chain, as the driver's Stream makes them
 * and as a device type with handle_pair serves them.
 *
 * Each function runs the loop body of a Python method for a whole batch,
 * with the same rules and results (the methods keep a Python twin of every
 * loop, used when this module is not built or DEVICE_REF_RING=python):
 *
 *   serve_pairs     VirtioDevice._serve_records with DeviceQenc.serve_pair
 *   submit_pairs    Stream.submit
 *   complete_pairs  Stream.complete
 *
 * No cryptography here: sealing and opening are calls to the
 * encrypt_into/decrypt_into methods of cryptography's AEAD objects, as in
 * Python. What moves into C is the bookkeeping around them: records,
 * address translation, nonces and associated data, copies, the flight
 * table. Guest memory is reached through the regions of a GuestMemory,
 * each a writable buffer held (PyObject_GetBuffer) for one call only;
 * views handed to Python code are slices of the regions' memoryviews, so
 * they keep the memory alive as translate() views do.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "ring.h"
#include "guest_regions.h"

#define TAG_LEN 16
#define TO_DEVICE 0
#define TO_DRIVER 1
#define SEG_WRITABLE 1u

static PyObject *s_addr, *s_length, *s_counter;

/* ---- nonces and associated data (device_ref/qenc/nonce.py) ------------- */

/* A call's nonce: one bytearray, rewritten before each cipher call (the
 * cipher copies it in; nothing keeps it). */
static PyObject *nonce_new(void)
{
    return PyByteArray_FromStringAndSize(NULL, 12);
}

static PyObject *nonce_set(PyObject *nonce, uint64_t counter, unsigned queue, unsigned direction)
{
    uint8_t *p = (uint8_t *)PyByteArray_AS_STRING(nonce);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(counter >> (8 * i));
    p[8] = (uint8_t)queue;
    p[9] = (uint8_t)(queue >> 8);
    p[10] = (uint8_t)direction;
    p[11] = 0;
    return nonce;
}

static PyObject *make_aad(uint32_t length, unsigned queue, unsigned direction, unsigned algorithm)
{
    PyObject *b = PyBytes_FromStringAndSize(NULL, 8);
    if (!b)
        return NULL;
    uint8_t *p = (uint8_t *)PyBytes_AS_STRING(b);
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(length >> (8 * i));
    p[4] = (uint8_t)queue;
    p[5] = (uint8_t)(queue >> 8);
    p[6] = (uint8_t)direction;
    p[7] = (uint8_t)algorithm;
    return b;
}

/* the associated data of the last length asked for, kept for the next */
typedef struct {
    PyObject *obj;
    uint32_t length;
} aad_cache;

static PyObject *aad_get(aad_cache *c, uint32_t length, unsigned queue, unsigned direction,
                         unsigned algorithm)
{
    if (!c->obj || c->length != length) {
        Py_XDECREF(c->obj);
        c->obj = make_aad(length, queue, direction, algorithm);
        c->length = length;
    }
    return c->obj;   /* borrowed; NULL on error */
}

/* method(nonce, input, aad, output); 0, 1 for InvalidTag (cleared), -1 error */
static int aead_call(PyObject *method, PyObject *nonce, PyObject *in, PyObject *aad,
                     PyObject *out, PyObject *invalid_tag)
{
    PyObject *args[4] = {nonce, in, aad, out};
    PyObject *res = PyObject_Vectorcall(method, args, 4, NULL);
    if (res) {
        Py_DECREF(res);
        return 0;
    }
    if (invalid_tag && PyErr_ExceptionMatches(invalid_tag)) {
        PyErr_Clear();
        return 1;
    }
    return -1;
}

static int buffer_ptr(PyObject *obj, int writable, Py_buffer *view)
{
    return PyObject_GetBuffer(obj, view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE);
}

/* release a buffer if buffer_ptr got it (a zeroed Py_buffer was never taken) */
static void buffer_drop(Py_buffer *view)
{
    if (view->obj)
        PyBuffer_Release(view);
}

/* ---- windows ------------------------------------------------------------ */

/*
 * A window is a buffer object showing [ptr, ptr + len) of the memory of an
 * owner: guest memory (owner: the region's memoryview) or a scratch buffer
 * (owner: that buffer). It is what a cipher call gets for memory only that
 * call sees. A loop keeps one window per role and aims it anew before each
 * call, where a fresh memoryview would cost two objects a call.
 *
 * While aimed, a window holds a buffer of its owner, so the memory can be
 * neither freed nor unmapped (closing guest memory then fails instead).
 * A window is re-aimed only while the loop alone holds it and nothing has a
 * buffer of it; otherwise the loop takes a new window and leaves the old
 * one as it is. A window the loop lets go of with nothing exported is
 * closed: it lets go of its owner, and asking it for a buffer fails.
 * Python code never gets a window: views for the device type are slices of
 * the regions' memoryviews, as translate() makes them.
 */
typedef struct {
    PyObject_HEAD
    uint8_t *ptr;
    Py_ssize_t len;
    int readonly, open;
    Py_ssize_t exports;
    Py_buffer owner;            /* owner.obj NULL: none held */
} window_t;

static int window_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    window_t *w = (window_t *)self;
    if (!w->open) {
        PyErr_SetString(PyExc_BufferError, "this window onto guest memory is closed");
        return -1;
    }
    if (PyBuffer_FillInfo(view, self, w->ptr, w->len, w->readonly, flags) < 0)
        return -1;
    w->exports++;
    return 0;
}

static void window_releasebuffer(PyObject *self, Py_buffer *view)
{
    ((window_t *)self)->exports--;
}

static void window_dealloc(PyObject *self)
{
    buffer_drop(&((window_t *)self)->owner);
    PyObject_Free(self);
}

static PyBufferProcs window_buffer = {window_getbuffer, window_releasebuffer};

static PyTypeObject window_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "device_ref.ring._pair_loops.Window",
    .tp_basicsize = sizeof(window_t),
    .tp_dealloc = window_dealloc,
    .tp_as_buffer = &window_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A buffer onto guest or scratch memory, lent to one cipher call at a time.",
};

/* the loop lets go of *slot: a window nothing has a buffer of is closed */
static void window_drop(PyObject **slot)
{
    window_t *w = (window_t *)*slot;
    if (!w)
        return;
    if (!w->exports) {
        w->open = 0;
        buffer_drop(&w->owner);
    }
    Py_DECREF(w);
    *slot = NULL;
}

/* aim *slot at [ptr, ptr + len) of owner's memory, with a new window if the
 * old one is kept or exported; the window (borrowed), or NULL on error */
static PyObject *window_aim(PyObject **slot, uint8_t *ptr, Py_ssize_t len, int writable,
                            PyObject *owner)
{
    window_t *w = (window_t *)*slot;
    if (w && (Py_REFCNT(w) > 1 || w->exports))
        window_drop(slot), w = NULL;
    if (!w) {
        if (!(w = PyObject_New(window_t, &window_type)))
            return NULL;
        w->exports = 0;
        w->open = 0;
        memset(&w->owner, 0, sizeof w->owner);
        *slot = (PyObject *)w;
    }
    if (w->owner.obj != owner) {
        buffer_drop(&w->owner);
        if (buffer_ptr(owner, 0, &w->owner) < 0) {
            memset(&w->owner, 0, sizeof w->owner);
            w->open = 0;
            return NULL;
        }
    }
    w->ptr = ptr;
    w->len = len;
    w->readonly = !writable;
    w->open = 1;
    return (PyObject *)w;
}

/* ---- device: serve_pairs ------------------------------------------------ */

/*
 * serve_pairs(regions, records, segs, index, seg_index, count, queue,
 *             handle_pair, crypt) -> (index, seg_index)
 *
 * Serves the popped chains index.. of a PopBatch (records: its chains
 * buffer, segs: its segs buffer; seg_index: the first segment of chain
 * index) while they are one readable then one writable descriptor, writing
 * each used length into its record. Returns where it stopped: count, or a
 * chain for the Python path (another shape, an encrypted chain whose sizes
 * differ from the scratch views', an address outside the regions).
 *
 * crypt: None, the queue unprotected (handle_pair on views of guest
 * memory), or (cipher, decrypt_into, encrypt_into, algorithm, private,
 * plain, area, refuse, InvalidTag), the queue encrypted (DeviceQenc.serve_pair):
 * `cipher` is the QueueCipher whose counter the loop advances (set back on
 * the object whatever happens), private/plain/area the scratch views of
 * the current shape, refuse(queue, message) the layer's refusal of a
 * forged or malformed chain.
 */
static PyObject *serve_pairs(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "serve_pairs takes 9 arguments");
        return NULL;
    }
    PyObject *handle = args[7], *crypt = args[8];
    Py_ssize_t index = PyLong_AsSsize_t(args[3]);
    Py_ssize_t seg_index = PyLong_AsSsize_t(args[4]);
    Py_ssize_t count = PyLong_AsSsize_t(args[5]);
    long queue_l = PyLong_AsLong(args[6]);
    if (PyErr_Occurred())
        return NULL;
    if (queue_l < 0 || queue_l > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "queue index out of range");
        return NULL;
    }
    PyObject *queue = args[6];
    unsigned q = (unsigned)queue_l;

    int enc = crypt != Py_None;
    PyObject *cipher = NULL, *dec = NULL, *encm = NULL, *private = NULL, *plain = NULL,
             *area = NULL, *refuse = NULL, *invalid = NULL, *aad_in = NULL, *nonce = NULL,
             *win = NULL, *win_reply = NULL;
    aad_cache aad_out = {0};
    unsigned algorithm = 0;
    uint64_t counter = 0;
    Py_buffer bprivate = {0}, barea = {0};
    Py_ssize_t size = 0, room = 0;
    if (enc) {
        if (!PyTuple_Check(crypt) || PyTuple_GET_SIZE(crypt) != 9) {
            PyErr_SetString(PyExc_TypeError, "crypt must be None or a 9-tuple");
            return NULL;
        }
        cipher = PyTuple_GET_ITEM(crypt, 0);
        dec = PyTuple_GET_ITEM(crypt, 1);
        encm = PyTuple_GET_ITEM(crypt, 2);
        algorithm = (unsigned)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(crypt, 3));
        private = PyTuple_GET_ITEM(crypt, 4);
        plain = PyTuple_GET_ITEM(crypt, 5);
        area = PyTuple_GET_ITEM(crypt, 6);
        refuse = PyTuple_GET_ITEM(crypt, 7);
        invalid = PyTuple_GET_ITEM(crypt, 8);
        if (get_u64(cipher, s_counter, &counter) < 0 || PyErr_Occurred())
            return NULL;
        if (!(nonce = nonce_new()))
            return NULL;
    }

    Py_buffer brec = {0}, bseg = {0};
    regions_t mem = {0};
    PyObject *result = NULL;
    if (buffer_ptr(args[1], 1, &brec) < 0)
        return NULL;
    if (buffer_ptr(args[2], 0, &bseg) < 0)
        goto out;
    if (regions_get(args[0], &mem) < 0)
        goto out;
    if (enc) {
        if (buffer_ptr(private, 1, &bprivate) < 0)
            goto out;
        if (buffer_ptr(area, 1, &barea) < 0)
            goto out;
        size = bprivate.len;
        room = barea.len;
    }
    if (index < 0 || count < index || (size_t)count * sizeof(struct ring_popped) > (size_t)brec.len ||
            seg_index < 0) {
        PyErr_SetString(PyExc_ValueError, "serve_pairs: index or count outside the batch");
        goto out;
    }
    struct ring_popped *rec = brec.buf;
    const struct ring_seg *seg = bseg.buf;
    Py_ssize_t nsegs = bseg.len / (Py_ssize_t)sizeof(struct ring_seg);

    for (; index < count; index++) {
        struct ring_popped *c = &rec[index];
        if (c->nseg != 2 || seg_index + 2 > nsegs)
            break;
        const struct ring_seg *r = &seg[seg_index], *w = &seg[seg_index + 1];
        if ((r->flags & SEG_WRITABLE) || !(w->flags & SEG_WRITABLE))
            break;
        uint64_t roff = 0, woff = 0;
        region_t *rr = regions_find(&mem, r->addr, r->len, &roff);
        region_t *wr = regions_find(&mem, w->addr, w->len, &woff);
        if (!rr || !wr)
            break;      /* Python's translate() raises the ring error */
        long written;
        if (!enc) {
            PyObject *rview = region_slice(rr, roff, r->len);
            PyObject *wview = rview ? region_slice(wr, woff, w->len) : NULL;
            if (!wview) {
                Py_XDECREF(rview);
                goto out;
            }
            PyObject *a[3] = {queue, rview, wview};
            PyObject *res = PyObject_Vectorcall(handle, a, 3, NULL);
            Py_DECREF(rview);
            Py_DECREF(wview);
            if (!res)
                goto out;
            written = PyLong_AsLong(res);
            Py_DECREF(res);
            if (written == -1 && PyErr_Occurred())
                goto out;
        } else {
            /* DeviceQenc.serve_pair and _open, in that order of checks (the
             * caller keeps the counter below 2**64 for the whole batch) */
            Py_ssize_t rsize = r->len, wlen = w->len;
            int short_r = rsize && rsize < TAG_LEN, short_w = wlen && wlen < TAG_LEN;
            Py_ssize_t want_room = wlen ? wlen - TAG_LEN : 0;
            if (!short_r && !short_w && (rsize != size || want_room != room))
                break;  /* another shape: the Python path makes its views */
            uint64_t n = counter++;   /* the chain's position counts even when refused */
            PyObject *msg = NULL;
            if (short_r) {
                msg = PyUnicode_FromFormat("sealed part of %zd bytes has no room for the tag", rsize);
            } else if (short_w) {
                msg = PyUnicode_FromFormat("writable part of %zd bytes has no room for the tag", wlen);
            } else if (size) {
                if (!aad_in && !(aad_in = make_aad((uint32_t)(size - TAG_LEN), q, TO_DEVICE, algorithm)))
                    goto out;
                /* open from a private copy: the tag check and the decryption
                 * must see the same bytes */
                memcpy(bprivate.buf, rr->host + roff, (size_t)size);
                int rc = aead_call(dec, nonce_set(nonce, n, q, TO_DEVICE), private, aad_in, plain,
                                   invalid);
                if (rc < 0)
                    goto out;
                if (rc == 1)
                    msg = PyUnicode_FromFormat("tag check failed (queue %u, direction %d, counter %llu)",
                                               q, TO_DEVICE, (unsigned long long)n);
                else
                    msg = Py_None, Py_INCREF(Py_None);
            } else {
                msg = Py_None, Py_INCREF(Py_None);
            }
            if (!msg)
                goto out;
            if (msg != Py_None) {   /* refused: the device type never sees it */
                PyObject *a[2] = {queue, msg};
                PyObject *res = PyObject_Vectorcall(refuse, a, 2, NULL);
                Py_DECREF(msg);
                if (!res)
                    goto out;
                written = PyLong_AsLong(res);
                Py_DECREF(res);
                if (written == -1 && PyErr_Occurred())
                    goto out;
                c->written = (uint32_t)written;
                seg_index += 2;
                continue;
            }
            Py_DECREF(msg);
            PyObject *a[3] = {queue, plain, area};
            PyObject *res = PyObject_Vectorcall(handle, a, 3, NULL);
            if (!res)
                goto out;
            long used = PyLong_AsLong(res);
            Py_DECREF(res);
            if (used == -1 && PyErr_Occurred())
                goto out;
            if (!wlen) {
                written = used;
            } else {
                if (used < 0 || used > room) {
                    PyErr_Format(PyExc_ValueError, "handle_pair returned %ld for a %zd-byte area",
                                 used, room);
                    goto out;
                }
                /* handle_pair wrote area[:used], the reply: sealed straight
                 * into the start of the writable part, the tag right after
                 * it, so the used length covers all the driver reads */
                PyObject *aad = aad_get(&aad_out, (uint32_t)used, q, TO_DRIVER, algorithm);
                PyObject *reply = !aad ? NULL : used == room ? area
                    : window_aim(&win_reply, barea.buf, (Py_ssize_t)used, 0, area);
                PyObject *out = reply ? window_aim(&win, wr->host + woff, (Py_ssize_t)used + TAG_LEN, 1,
                                                   wr->view) : NULL;
                if (!out || aead_call(encm, nonce_set(nonce, n, q, TO_DRIVER), reply, aad, out, NULL) < 0)
                    goto out;
                written = used + TAG_LEN;
            }
        }
        if (written < 0 || written > UINT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "used length out of range");
            goto out;
        }
        c->written = (uint32_t)written;
        seg_index += 2;
    }
    result = Py_BuildValue("nn", index, seg_index);
out:
    if (enc) {
        PyObject *v = PyLong_FromUnsignedLongLong(counter);
        if (!v || PyObject_SetAttr(cipher, s_counter, v) < 0)
            Py_CLEAR(result);
        Py_XDECREF(v);
    }
    Py_XDECREF(aad_in);
    Py_XDECREF(aad_out.obj);
    Py_XDECREF(nonce);
    window_drop(&win);
    window_drop(&win_reply);
    buffer_drop(&bprivate);
    buffer_drop(&barea);
    regions_release(&mem);
    buffer_drop(&bseg);
    buffer_drop(&brec);
    return result;
}

/* ---- driver: submit_pairs and complete_pairs ----------------------------- */

enum { MODE_PLAIN, MODE_BOUNCE, MODE_SEAL };

/* One position of a Stream while a request holds it (stream.FLIGHT): the
 * caller's reply buffer, the request's counter and ticket, the reply's
 * capacity, and whether the position is taken. */
struct flight {
    uint64_t dst;
    uint64_t counter;
    uint64_t ticket;
    uint32_t cap;
    uint32_t busy;
};

/* The head the driver loops' cipher tuples share, (method, queue,
 * algorithm, ...), from a tuple that must have n items; 0 or -1. */
static int cipher_tuple(PyObject *t, Py_ssize_t n, const char *name, PyObject **method,
                        unsigned *q, unsigned *algorithm)
{
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != n) {
        PyErr_Format(PyExc_TypeError, "%s must be a %zd-tuple", name, n);
        return -1;
    }
    *method = PyTuple_GET_ITEM(t, 0);
    *q = (unsigned)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(t, 1));
    *algorithm = (unsigned)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(t, 2));
    return PyErr_Occurred() ? -1 : 0;
}

static int table_get(PyObject *table, Py_ssize_t depth, Py_buffer *b)
{
    if (buffer_ptr(table, 1, b) < 0)
        return -1;
    if (depth < 0 || (size_t)b->len < (size_t)depth * sizeof(struct flight)) {
        PyBuffer_Release(b);
        PyErr_SetString(PyExc_ValueError, "flight table shorter than the stream's depth");
        return -1;
    }
    return 0;
}

static int addr_at(PyObject *list, Py_ssize_t p, uint64_t *out)
{
    PyObject *v = PyList_GetItem(list, p);
    if (!v)
        return -1;
    *out = PyLong_AsUnsignedLongLong(v);
    return (*out == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

/*
 * submit_pairs(regions, pairs, n, out_len, in_len, table, free, slots,
 *              batch_bufs, ticket, mode, seal) -> (count, nsegs)
 *
 * Stream.submit's loop for the first n (out, reply) GuestBuffer pairs, all
 * checked before any is sealed (a part sealed is a counter spent): for a
 * pair that does not fit, (its index, None) and nothing done. table: the
 * stream's flight table (struct flight per position); free: its list of
 * free positions, taken from the end. slots: (out_addrs, in_addrs,
 * out_views) of the positions, for modes 1 and 2 (an out view spans the
 * whole slot, tag included: it must be the slot at out_addrs[p]). batch_bufs: (chains, segs) of the
 * ChainBatch, filled from record 0. mode 0: the caller's buffers go to the
 * ring; 1: copied into the out slots; 2: sealed into them, seal being
 * (encrypt_into, queue, algorithm, first counter).
 */
static PyObject *submit_pairs(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 12) {
        PyErr_SetString(PyExc_TypeError, "submit_pairs takes 12 arguments");
        return NULL;
    }
    PyObject *pairs = args[1], *free_list = args[6], *slots = args[7], *bufs = args[8],
             *seal = args[11];
    Py_ssize_t n = PyLong_AsSsize_t(args[2]);
    Py_ssize_t out_len = PyLong_AsSsize_t(args[3]);
    Py_ssize_t in_len = PyLong_AsSsize_t(args[4]);
    unsigned long long ticket = PyLong_AsUnsignedLongLong(args[9]);
    long mode = PyLong_AsLong(args[10]);
    if (PyErr_Occurred())
        return NULL;
    if (!PyList_Check(pairs) || !PyList_Check(free_list) || n < 0 || n > PyList_GET_SIZE(pairs) ||
            n > PyList_GET_SIZE(free_list) || mode < MODE_PLAIN || mode > MODE_SEAL ||
            !PyTuple_Check(bufs) || PyTuple_GET_SIZE(bufs) != 2 ||
            (mode != MODE_PLAIN && (!PyTuple_Check(slots) || PyTuple_GET_SIZE(slots) != 3))) {
        PyErr_SetString(PyExc_ValueError, "submit_pairs: bad arguments");
        return NULL;
    }
    PyObject *encm = NULL;
    unsigned q = 0, algorithm = 0;
    uint64_t counter = 0;
    if (mode == MODE_SEAL) {
        if (cipher_tuple(seal, 4, "seal", &encm, &q, &algorithm) < 0)
            return NULL;
        counter = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(seal, 3));
        if (PyErr_Occurred())
            return NULL;
    }

    /* every request checked first: nothing is sealed for a call that fails */
    uint64_t *lens = PyMem_Malloc(sizeof(uint64_t) * 4 * (size_t)(n ? n : 1));
    if (!lens)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i);
        if (!(PyTuple_Check(pair) || PyList_Check(pair)) || PySequence_Fast_GET_SIZE(pair) != 2) {
            PyMem_Free(lens);
            PyErr_SetString(PyExc_TypeError, "stream requests are (out, reply) pairs");
            return NULL;
        }
        PyObject *out = PySequence_Fast_GET_ITEM(pair, 0), *reply = PySequence_Fast_GET_ITEM(pair, 1);
        uint64_t *l = &lens[4 * i];
        if (get_u64(out, s_addr, &l[0]) < 0 || get_u64(out, s_length, &l[1]) < 0 ||
                get_u64(reply, s_addr, &l[2]) < 0 || get_u64(reply, s_length, &l[3]) < 0) {
            PyMem_Free(lens);
            return NULL;
        }
        if (l[1] > (uint64_t)out_len || l[3] > (uint64_t)in_len || !(l[1] + l[3])) {
            PyMem_Free(lens);
            return Py_BuildValue("(nO)", i, Py_None);   /* Stream.submit says why */
        }
    }

    Py_buffer bch = {0}, bsg = {0}, btab = {0};
    regions_t mem = {0};
    PyObject *result = NULL, *nonce = NULL, *win_in = NULL, *win_out = NULL;
    aad_cache aad = {0};
    Py_ssize_t nsegs = 0, i = 0;
    if (buffer_ptr(PyTuple_GET_ITEM(bufs, 0), 1, &bch) < 0 ||
            buffer_ptr(PyTuple_GET_ITEM(bufs, 1), 1, &bsg) < 0 ||
            table_get(args[5], PyList_GET_SIZE(free_list), &btab) < 0 ||
            regions_get(args[0], &mem) < 0)
        goto done;
    if ((size_t)n * sizeof(struct ring_add) > (size_t)bch.len ||
            (size_t)(2 * n) * sizeof(struct ring_seg) > (size_t)bsg.len) {
        PyErr_SetString(PyExc_ValueError, "submit_pairs: the chain batch is too small");
        goto done;
    }
    struct ring_add *chains = bch.buf;
    struct ring_seg *segs = bsg.buf;
    struct flight *table = btab.buf;
    Py_ssize_t depth = btab.len / (Py_ssize_t)sizeof(struct flight);
    if (mode == MODE_SEAL && !(nonce = nonce_new()))
        goto done;

    for (i = 0; i < n; i++) {
        uint64_t src = lens[4 * i], olen = lens[4 * i + 1];
        uint64_t dst = lens[4 * i + 2], ilen = lens[4 * i + 3];
        Py_ssize_t nfree = PyList_GET_SIZE(free_list);
        Py_ssize_t p = PyLong_AsSsize_t(PyList_GET_ITEM(free_list, nfree - 1));
        if (p == -1 && PyErr_Occurred())
            break;
        if (p < 0 || p >= depth || table[p].busy) {
            PyErr_Format(PyExc_RuntimeError, "free position %zd is not free", p);
            break;
        }
        uint64_t out_addr = src, in_addr = dst;
        if (mode != MODE_PLAIN) {
            uint64_t soff = 0, ooff = 0, doff;
            region_t *sr = NULL, *orr = NULL;
            if (addr_at(PyTuple_GET_ITEM(slots, 0), p, &out_addr) < 0 ||
                    addr_at(PyTuple_GET_ITEM(slots, 1), p, &in_addr) < 0)
                break;
            if ((olen && (!(sr = regions_find(&mem, src, olen, &soff)) ||
                          !(orr = regions_find(&mem, out_addr, olen + (mode == MODE_SEAL ? TAG_LEN : 0),
                                               &ooff)))) ||
                    (ilen && !regions_find(&mem, dst, ilen, &doff))) {
                PyErr_Format(PyExc_ValueError, "stream request %zd lies outside guest memory", i);
                break;
            }
            if (olen && mode == MODE_BOUNCE) {
                memmove(orr->host + ooff, sr->host + soff, olen);
            } else if (olen) {
                /* into the position's own slot view when the part fills it */
                PyObject *slot = PyList_GetItem(PyTuple_GET_ITEM(slots, 2), p);
                if (!slot)
                    break;
                PyObject *a = aad_get(&aad, (uint32_t)olen, q, TO_DEVICE, algorithm);
                PyObject *in = a ? window_aim(&win_in, sr->host + soff, (Py_ssize_t)olen, 0, sr->view)
                                 : NULL;
                PyObject *out = !in ? NULL
                    : PyObject_Length(slot) == (Py_ssize_t)olen + TAG_LEN ? slot
                    : window_aim(&win_out, orr->host + ooff, (Py_ssize_t)olen + TAG_LEN, 1, orr->view);
                if (!out || aead_call(encm, nonce_set(nonce, counter, q, TO_DEVICE), in, a, out, NULL) < 0)
                    break;
                olen += TAG_LEN;
            }
        }
        /* the position is taken: flight entry, then the chain record */
        if (PyList_SetSlice(free_list, nfree - 1, nfree, NULL) < 0)
            break;
        table[p].dst = dst;
        table[p].counter = counter;
        table[p].ticket = ticket;
        table[p].cap = (uint32_t)ilen;
        table[p].busy = 1;
        if (mode == MODE_SEAL) {
            if (ilen)
                ilen += TAG_LEN;
            counter++;
        }
        uint32_t k = 0;
        if (olen) {
            segs[nsegs + k].addr = out_addr;
            segs[nsegs + k].len = (uint32_t)olen;
            segs[nsegs + k].flags = 0;
            k++;
        }
        if (ilen) {
            segs[nsegs + k].addr = in_addr;
            segs[nsegs + k].len = (uint32_t)ilen;
            segs[nsegs + k].flags = SEG_WRITABLE;
            k++;
        }
        chains[i].nseg = k;
        chains[i].reserved = 0;
        chains[i].indirect = 0;
        chains[i].token = (uint64_t)p;
        nsegs += k;
        ticket++;
    }
    if (i == n)
        result = Py_BuildValue("nn", n, nsegs);
    else if (!PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "submit_pairs stopped early");
done:
    Py_XDECREF(aad.obj);
    Py_XDECREF(nonce);
    window_drop(&win_in);
    window_drop(&win_out);
    PyMem_Free(lens);
    regions_release(&mem);
    buffer_drop(&btab);
    buffer_drop(&bsg);
    buffer_drop(&bch);
    return result;
}

/* (ticket, bytes) of a completed request */
static PyObject *done_item(uint64_t ticket, long long got)
{
    PyObject *t = PyLong_FromUnsignedLongLong(ticket), *g = t ? PyLong_FromLongLong(got) : NULL;
    PyObject *item = g ? PyTuple_Pack(2, t, g) : NULL;
    Py_XDECREF(t);
    Py_XDECREF(g);
    return item;
}

/*
 * complete_pairs(regions, entries, m, table, free, in_addrs, mode, open)
 *     -> (done, failed)
 *
 * Stream.complete's loop over the first m records of a UsedBatch: frees
 * each position and returns [(ticket, bytes)] and the tickets of replies
 * that failed their tags. in_addrs: the positions' in slots (modes 1 and
 * 2). open: (decrypt_into, queue, algorithm, private, InvalidTag) for mode
 * 2; a reply is copied into `private` and opened from there into the
 * caller's buffer, which is wiped if the tag fails.
 */
static PyObject *complete_pairs(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "complete_pairs takes 8 arguments");
        return NULL;
    }
    Py_ssize_t m = PyLong_AsSsize_t(args[2]);
    long mode = PyLong_AsLong(args[6]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *free_list = args[4], *in_addrs = args[5], *open = args[7];
    PyObject *dec = NULL, *private = NULL, *invalid = NULL;
    unsigned q = 0, algorithm = 0;
    if (!PyList_Check(free_list) || (mode != MODE_PLAIN && !PyList_Check(in_addrs))) {
        PyErr_SetString(PyExc_TypeError, "complete_pairs: free and in_addrs must be lists");
        return NULL;
    }
    if (mode == MODE_SEAL) {
        if (cipher_tuple(open, 5, "open", &dec, &q, &algorithm) < 0)
            return NULL;
        private = PyTuple_GET_ITEM(open, 3);
        invalid = PyTuple_GET_ITEM(open, 4);
    }
    Py_buffer bent = {0}, bpriv = {0}, btab = {0};
    regions_t mem = {0};
    PyObject *done = NULL, *failed = NULL, *result = NULL, *nonce = NULL, *win_in = NULL,
             *win_out = NULL;
    aad_cache aad = {0};
    if (buffer_ptr(args[1], 0, &bent) < 0 ||
            buffer_ptr(args[3], 1, &btab) < 0 ||
            (mode == MODE_SEAL && buffer_ptr(private, 1, &bpriv) < 0) ||
            regions_get(args[0], &mem) < 0)
        goto out;
    if (m < 0 || (size_t)m * sizeof(struct ring_used) > (size_t)bent.len) {
        PyErr_SetString(PyExc_ValueError, "complete_pairs: count outside the batch");
        goto out;
    }
    if (!(done = PyList_New(0)) || !(failed = PyList_New(0)) ||
            (mode == MODE_SEAL && !(nonce = nonce_new())))
        goto out;
    const struct ring_used *u = bent.buf;
    struct flight *table = btab.buf;
    Py_ssize_t depth = btab.len / (Py_ssize_t)sizeof(struct flight);
    for (Py_ssize_t k = 0; k < m; k++) {
        uint64_t tok = u[k].token, used = u[k].len;
        if (tok >= (uint64_t)depth || !table[tok].busy) {
            PyErr_Format(PyExc_RuntimeError, "used token %llu is no position in flight",
                         (unsigned long long)tok);
            goto out;
        }
        Py_ssize_t p = (Py_ssize_t)tok;
        struct flight f = table[p];
        table[p].busy = 0;
        PyObject *pos = PyLong_FromSsize_t(p);
        if (!pos || PyList_Append(free_list, pos) < 0) {
            Py_XDECREF(pos);
            goto out;
        }
        Py_DECREF(pos);
        long long got = (long long)used;
        uint64_t ioff = 0, doff = 0, in_addr = 0;
        region_t *ir = NULL, *dr = NULL;
        int sealed = mode == MODE_SEAL && f.cap;
        /* a sealed reply is ciphertext then tag, both within the used length */
        uint64_t span = used;
        if (sealed && (used < TAG_LEN || used - TAG_LEN > f.cap)) {
            got = -1;
        } else if (mode != MODE_PLAIN && (sealed || used)) {
            if (addr_at(in_addrs, p, &in_addr) < 0)
                goto out;
            if (!(ir = regions_find(&mem, in_addr, span, &ioff)) ||
                    !(dr = regions_find(&mem, f.dst, sealed ? f.cap : used, &doff))) {
                PyErr_SetString(PyExc_ValueError, "reply buffers outside guest memory");
                goto out;
            }
            if (!sealed) {
                memcpy(dr->host + doff, ir->host + ioff, (size_t)used);
            } else {
                if ((uint64_t)bpriv.len < span) {
                    PyErr_SetString(PyExc_ValueError, "private buffer shorter than a reply");
                    goto out;
                }
                /* open from a private copy: the tag check and the decryption
                 * must see the same bytes */
                memcpy(bpriv.buf, ir->host + ioff, (size_t)span);
                PyObject *in = bpriv.len == (Py_ssize_t)span ? private
                    : window_aim(&win_in, bpriv.buf, (Py_ssize_t)span, 0, private);
                PyObject *out = in ? window_aim(&win_out, dr->host + doff, (Py_ssize_t)(used - TAG_LEN), 1,
                                                dr->view) : NULL;
                PyObject *a = out ? aad_get(&aad, (uint32_t)(used - TAG_LEN), q, TO_DRIVER, algorithm)
                                  : NULL;
                int rc = a ? aead_call(dec, nonce_set(nonce, f.counter, q, TO_DRIVER), in, a, out,
                                       invalid) : -1;
                if (rc < 0)
                    goto out;
                if (rc == 1) {   /* unauthenticated bytes may be in dst: wipe them */
                    memset(dr->host + doff, 0, f.cap);
                    got = -1;
                } else {
                    got = (long long)(used - TAG_LEN);
                }
            }
        }
        PyObject *item = got < 0 ? PyLong_FromUnsignedLongLong(f.ticket) : done_item(f.ticket, got);
        if (!item || PyList_Append(got < 0 ? failed : done, item) < 0) {
            Py_XDECREF(item);
            goto out;
        }
        Py_DECREF(item);
    }
    result = PyTuple_Pack(2, done, failed);
out:
    Py_XDECREF(aad.obj);
    Py_XDECREF(nonce);
    window_drop(&win_in);
    window_drop(&win_out);
    Py_XDECREF(done);
    Py_XDECREF(failed);
    regions_release(&mem);
    buffer_drop(&bpriv);
    buffer_drop(&btab);
    buffer_drop(&bent);
    return result;
}

static PyMethodDef methods[] = {
    {"serve_pairs", (PyCFunction)(void (*)(void))serve_pairs, METH_FASTCALL,
     "The device's loop over popped one-readable, one-writable chains."},
    {"submit_pairs", (PyCFunction)(void (*)(void))submit_pairs, METH_FASTCALL,
     "Stream.submit's loop over (out, reply) pairs."},
    {"complete_pairs", (PyCFunction)(void (*)(void))complete_pairs, METH_FASTCALL,
     "Stream.complete's loop over collected replies."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pair_loops",
    "Per-request loops of fixed-shape requests (see pair_loops.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pair_loops(void)
{
#define INTERN(var, text) if (!(var = PyUnicode_InternFromString(text))) return NULL
    INTERN(s_addr, "addr");
    INTERN(s_length, "length");
    INTERN(s_counter, "counter");
#undef INTERN
    if (PyType_Ready(&window_type) < 0)
        return NULL;
#ifndef PAIRS_SOURCE_ID
#define PAIRS_SOURCE_ID "unknown"
#endif
    return loops_module(&module, PAIRS_SOURCE_ID);
}
