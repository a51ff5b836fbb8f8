/*
 * Virtqueue ring core: split and packed rings, driver and device sides,
 * every guest access bounds-checked through a memory map.
 *
 * The pure-Python twin (py_split.py, py_packed.py) implements the same
 * behaviour; error numbers match errors.py.  Everything between the cdef
 * markers is read by _build.py as the cffi declarations, so it must stay
 * plain C declarations (no macros, no includes).
 */
#ifndef DEVICE_REF_RING_H
#define DEVICE_REF_RING_H

#include <stdint.h>

/* cdef-begin */
enum ring_err {
    RING_OK = 0,
    RING_E_OUT_OF_BOUNDS = 1,
    RING_E_ADDR_OVERFLOW = 2,
    RING_E_BAD_CONFIG = 3,
    RING_E_QUEUE_FULL = 4,
    RING_E_BAD_REQUEST = 5,
    RING_E_AVAIL_IDX_JUMP = 10,
    RING_E_DESC_INDEX_RANGE = 11,
    RING_E_CHAIN_TOO_LONG = 12,
    RING_E_INDIRECT_NOT_NEGOTIATED = 13,
    RING_E_INDIRECT_NESTED = 14,
    RING_E_INDIRECT_WITH_NEXT = 15,
    RING_E_INDIRECT_BAD_LEN = 16,
    RING_E_READ_AFTER_WRITE = 17,
    RING_E_CHAIN_LEN_OVERFLOW = 18,
    RING_E_BUFFER_ID_RANGE = 19,
    RING_E_ID_IN_USE = 20,
    RING_E_PACKED_BAD_FLAGS = 21,
    RING_E_PUSH_UNKNOWN_ID = 22,
    RING_E_PUSH_OUT_OF_ORDER = 23,
    RING_E_USED_IDX_JUMP = 30,
    RING_E_USED_ID_BAD = 31,
    RING_E_USED_LEN_TOO_BIG = 32,
    RING_E_USED_BAD_FLAGS = 33,
    RING_E_USED_WRONG_WRAP = 34
};

/* one guest memory region; host points at `size` writable bytes */
struct ring_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *host;
};

/* the map: regions sorted by gpa, not overlapping */
struct ring_mem {
    struct ring_region *regions;
    uint32_t nregions;
};

struct ring_cfg {
    uint32_t size;
    uint32_t packed;
    uint32_t event_idx;
    uint32_t indirect;
    uint32_t in_order;
    uint64_t desc;
    uint64_t driver;
    uint64_t device;
};

/* batch records, little-endian, laid out as in batch.py */
struct ring_seg {        /* a segment: flags bit 0 = device-writable */
    uint64_t addr;
    uint32_t len;
    uint32_t flags;
};

struct ring_add {        /* one chain to add: its segments follow the previous chain's */
    uint32_t nseg;
    uint32_t reserved;
    uint64_t indirect;   /* guest address for an indirect table, 0 for none */
    uint64_t token;
};

struct ring_popped {     /* one popped chain (device) or one chain to push */
    uint32_t id;
    uint32_t nseg;
    uint32_t wlen;       /* writable bytes of the chain */
    uint32_t written;    /* bytes the device wrote (push input) */
};

struct ring_used {       /* one collected buffer */
    uint64_t token;
    uint32_t len;
    uint32_t reserved;
};

typedef struct ring_queue ring_queue;

/* hash of ring.c and ring.h at build time, to spot a stale build */
const char *ring_source_id(void);

int ring_mem_find(const struct ring_mem *mem, uint64_t gpa, uint64_t len, uint8_t **host);

int ring_queue_new(const struct ring_mem *mem, const struct ring_cfg *cfg, int device_side,
                   int has_start, uint32_t start, ring_queue **out);
void ring_queue_free(ring_queue *q);
int ring_error(const ring_queue *q);
uint32_t ring_num_free(const ring_queue *q);
uint32_t ring_outstanding(const ring_queue *q);
uint32_t ring_state(const ring_queue *q);

int ring_drv_add(ring_queue *q, const struct ring_add *chains, uint32_t nchains,
                 const struct ring_seg *segs, uint32_t nsegs, uint32_t *added, int *notify);
int ring_drv_collect(ring_queue *q, struct ring_used *out, uint32_t max, uint32_t *count);
int ring_drv_enable_intr(ring_queue *q);
void ring_drv_disable_intr(ring_queue *q);

int ring_dev_pop(ring_queue *q, struct ring_popped *chains, uint32_t max_chains,
                 struct ring_seg *segs, uint32_t max_segs, uint32_t *count);
int ring_dev_push(ring_queue *q, const struct ring_popped *items, uint32_t n, int fill,
                  int coalesce, int *notify);
int ring_dev_enable_notify(ring_queue *q);

/* The same four batch operations with a single return value, which is
 * cheaper to take apart from Python: >= 0 is the result (add: added << 1 |
 * notify; collect and pop: count; push: notify), < 0 is minus the error
 * code, and then ring_last_count() says how many items completed. */
int64_t ring_add(ring_queue *q, const struct ring_add *chains, uint32_t nchains,
                 const struct ring_seg *segs, uint32_t nsegs);
int64_t ring_collect(ring_queue *q, struct ring_used *out, uint32_t max);
int64_t ring_pop(ring_queue *q, struct ring_popped *chains, uint32_t max_chains,
                 struct ring_seg *segs, uint32_t max_segs);
int64_t ring_push(ring_queue *q, const struct ring_popped *items, uint32_t n, int fill, int coalesce);
uint32_t ring_last_count(const ring_queue *q);
void ring_dev_disable_notify(ring_queue *q);
/* cdef-end */

#endif
