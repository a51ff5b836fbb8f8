/*
 * The block device's per-request loop for its common request shape: a
 * chain of three descriptors, the 16-byte header (device-readable), the
 * data (device-writable for a read, device-readable for a write) and the
 * one-byte status (device-writable).
 *
 *   serve_blk       BlkDevice._serve_three (device_ref/devices/blk.py)
 *
 * The data moves with one pread/pwrite straight between the disk file and
 * guest memory, with no Python object per request. Everything else stays
 * in Python: another shape, another request type (flush, get id), a system
 * call that fails (Python records the I/O error), an address outside the
 * regions (Python's translate() raises the ring error). The loop then
 * stops at that chain and returns its position, Python serves it and calls
 * the loop again for the rest.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "ring.h"
#include "guest_regions.h"

#define SEG_WRITABLE 1u

static uint64_t le_bytes(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* what the device type decides (device_ref/devices/blk.py): one home for
 * the block device's numbers, handed over with each call */
typedef struct {
    unsigned long long sector, t_in, t_out, s_ok, s_ioerr, header;
} blk_consts;

static int consts_get(PyObject *t, blk_consts *k)
{
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 6) {
        PyErr_SetString(PyExc_TypeError, "consts must be a 6-tuple");
        return -1;
    }
    unsigned long long *out[6] = {&k->sector, &k->t_in, &k->t_out, &k->s_ok, &k->s_ioerr,
                                  &k->header};
    for (int i = 0; i < 6; i++) {
        *out[i] = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(t, i));
        if (PyErr_Occurred())
            return -1;
    }
    if (k->sector == 0 || k->header != 16 || k->s_ok > 255 || k->s_ioerr > 255) {
        PyErr_SetString(PyExc_ValueError, "consts out of range");
        return -1;
    }
    return 0;
}

/*
 * serve_blk(regions, records, segs, index, seg_index, count, fd, limit,
 *           read_only, consts) -> (index, seg_index)
 *
 * Serves the popped chains index.. of a PopBatch while they are
 * header + data + status reads or writes, writing the status byte and each
 * used length. limit: the sectors a request may reach (the smaller of the
 * capacity the config space shows and the file's size); read_only: refuse
 * writes with the I/O error status; consts: (sector size, T_IN, T_OUT,
 * S_OK, S_IOERR, header length). Returns where it stopped: count, or a
 * chain for the Python path.
 */
static PyObject *serve_blk(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "serve_blk takes 10 arguments");
        return NULL;
    }
    Py_ssize_t index = PyLong_AsSsize_t(args[3]);
    Py_ssize_t seg_index = PyLong_AsSsize_t(args[4]);
    Py_ssize_t count = PyLong_AsSsize_t(args[5]);
    long fd = PyLong_AsLong(args[6]);
    unsigned long long limit = PyLong_AsUnsignedLongLong(args[7]);
    int read_only = PyObject_IsTrue(args[8]);
    blk_consts k;
    if (PyErr_Occurred() || read_only < 0 || consts_get(args[9], &k) < 0)
        return NULL;
    if (fd < 0 || fd > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "serve_blk: bad file descriptor");
        return NULL;
    }

    Py_buffer brec = {0}, bseg = {0};
    regions_t mem = {0};
    PyObject *result = NULL;
    if (PyObject_GetBuffer(args[1], &brec, PyBUF_WRITABLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[2], &bseg, PyBUF_SIMPLE) < 0)
        goto out;
    if (regions_get(args[0], &mem) < 0)
        goto out;
    if (index < 0 || count < index || seg_index < 0 ||
            (size_t)count * sizeof(struct ring_popped) > (size_t)brec.len) {
        PyErr_SetString(PyExc_ValueError, "serve_blk: index or count outside the batch");
        goto out;
    }
    struct ring_popped *rec = brec.buf;
    const struct ring_seg *seg = bseg.buf;
    Py_ssize_t nsegs = bseg.len / (Py_ssize_t)sizeof(struct ring_seg);

    for (; index < count; index++) {
        struct ring_popped *c = &rec[index];
        if (c->nseg != 3 || seg_index > nsegs - 3)
            break;
        const struct ring_seg *h = &seg[seg_index], *d = &seg[seg_index + 1],
                              *st = &seg[seg_index + 2];
        if ((h->flags & SEG_WRITABLE) || h->len != k.header || !(st->flags & SEG_WRITABLE) ||
                st->len != 1 || d->len == 0)
            break;
        uint64_t hoff, doff, soff;
        region_t *hr = regions_find(&mem, h->addr, h->len, &hoff);
        region_t *dr = regions_find(&mem, d->addr, d->len, &doff);
        region_t *sr = regions_find(&mem, st->addr, 1, &soff);
        if (!hr || !dr || !sr)
            break;
        /* decide on a copy: the driver may rewrite the header meanwhile */
        uint8_t hdr[16];
        memcpy(hdr, hr->host + hoff, sizeof hdr);
        uint64_t type = le_bytes(hdr, 4);          /* le32 type, le32 reserved, le64 sector */
        uint64_t sector = le_bytes(hdr + 8, 8);
        int writes = d->flags & SEG_WRITABLE;
        uint64_t n = d->len;
        unsigned status;
        uint32_t written = 1;
        if (type == k.t_in && writes) {
            ;
        } else if (type == k.t_out && !writes) {
            ;
        } else {
            break;      /* another request type or layout: Python decides */
        }
        if (type == k.t_out && read_only) {
            status = (unsigned)k.s_ioerr;
        } else if (n % k.sector || sector > limit || n / k.sector > limit - sector) {
            status = (unsigned)k.s_ioerr;
        } else {
            off_t at = (off_t)(sector * k.sector);
            uint8_t *p = dr->host + doff;
            ssize_t r;
            Py_BEGIN_ALLOW_THREADS
            r = writes ? pread((int)fd, p, (size_t)n, at) : pwrite((int)fd, p, (size_t)n, at);
            Py_END_ALLOW_THREADS
            if (r < 0)
                break;  /* Python retries it, and records the error if it stays */
            status = (unsigned)k.s_ok;
            if (writes)
                written += (uint32_t)r;
        }
        sr->host[soff] = (uint8_t)status;
        c->written = written;
        seg_index += 3;
    }
    result = Py_BuildValue("nn", index, seg_index);
out:
    regions_release(&mem);
    if (bseg.obj)
        PyBuffer_Release(&bseg);
    if (brec.obj)
        PyBuffer_Release(&brec);
    return result;
}

static PyMethodDef methods[] = {
    {"serve_blk", (PyCFunction)(void (*)(void))serve_blk, METH_FASTCALL,
     "The block device's loop over popped header, data, status chains."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_blk_loops",
    "The block device's per-request loop (see blk_loops.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__blk_loops(void)
{
#ifndef BLK_SOURCE_ID
#define BLK_SOURCE_ID "unknown"
#endif
    return loops_module(&module, BLK_SOURCE_ID);
}
