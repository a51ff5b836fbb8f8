/*
 * Virtqueue ring core (see ring.h).  Bounds-checked, never loops more than
 * the queue size per chain, and reports hostile ring contents as error
 * codes.  Behaviour mirrors the Python twin check for check, so both
 * backends return the same code for the same bytes.
 */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ring core assumes a little-endian host (virtio 1.x rings are little-endian)"
#endif

#define F_NEXT 1u
#define F_WRITE 2u
#define F_INDIRECT 4u
#define F_AVAIL (1u << 7)
#define F_USED (1u << 15)
#define EVT_ENABLE 0
#define EVT_DISABLE 1
#define EVT_DESC 2
#define SEG_WRITABLE 1u

/* the other side may be another process: order our stores and loads */
#define ACQUIRE() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define RELEASE() __atomic_thread_fence(__ATOMIC_RELEASE)
#define FULL() __atomic_thread_fence(__ATOMIC_SEQ_CST)

/* error branches are rare: keep them off the hot path */
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

struct split_desc { uint64_t addr; uint32_t len; uint16_t flags; uint16_t next; };
struct packed_desc { uint64_t addr; uint32_t len; uint16_t id; uint16_t flags; };

struct fifo { uint16_t *v; uint32_t head, count, cap; uint64_t head_seq; };

/* what each side remembers per buffer id (split: per head / descriptor index) */
struct meta {
    uint64_t token;
    uint32_t wlen;       /* writable bytes */
    uint16_t ndesc;      /* ring descriptors the buffer occupies */
    uint16_t next;       /* split driver: private copy of the chain link */
    uint8_t infl;        /* 1 in flight; 2 while a push batch is validated */
};

struct ring_queue {
    const struct ring_mem *mem;
    uint32_t size, packed, event_idx, indirect, in_order, device;
    uint8_t *desc, *drv, *dev;      /* host pointers of the three areas */
    int error;
    /* split */
    uint16_t avail_idx, last_used;  /* driver */
    uint16_t last_avail, used_idx;  /* device */
    /* packed positions: driver next-avail / last-used, device next-avail / used */
    uint32_t a_idx, a_wrap, u_idx, u_wrap;
    uint32_t free_desc;             /* packed driver */
    uint32_t inflight_desc;         /* packed device */
    uint32_t outstanding;           /* buffers in flight */
    struct fifo free;               /* split: descriptor indices; packed: buffer ids */
    struct fifo order;              /* IN_ORDER: in-flight ids, oldest first */
    struct meta *m;                 /* per descriptor index / buffer id */
    uint64_t *seq;                  /* per id, IN_ORDER: position in the in-flight order */
    uint32_t hint;                  /* region that held the last segment */
    uint32_t last_count;            /* items completed by the last ring_add/collect/pop */
};

/* ---- little-endian field access (memcpy: no alignment assumptions) ---- */
static inline uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline void st16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* ---- fifo ---- */
static inline void fifo_push(struct fifo *f, uint16_t v)
{
    uint32_t i = f->head + f->count;
    if (i >= f->cap)
        i -= f->cap;
    f->v[i] = v;
    f->count++;
}

static inline uint16_t fifo_pop(struct fifo *f)
{
    uint16_t v = f->v[f->head];
    if (++f->head == f->cap)
        f->head = 0;
    f->count--;
    f->head_seq++;
    return v;
}

static inline uint16_t fifo_at(const struct fifo *f, uint32_t k)
{
    uint32_t i = f->head + k;
    if (i >= f->cap)
        i -= f->cap;
    return f->v[i];
}

#ifndef RING_SOURCE_ID
#define RING_SOURCE_ID "unknown"
#endif

const char *ring_source_id(void)
{
    return RING_SOURCE_ID;
}

/* ---- memory map ---- */
int ring_mem_find(const struct ring_mem *mem, uint64_t gpa, uint64_t len, uint8_t **host)
{
    if (len > UINT64_MAX - gpa)
        return RING_E_ADDR_OVERFLOW;
    for (uint32_t i = 0; i < mem->nregions; i++) {
        const struct ring_region *r = &mem->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa)) {
            *host = r->host + (gpa - r->gpa);
            return RING_OK;
        }
    }
    return RING_E_OUT_OF_BOUNDS;
}

/* ---- queue lifetime ---- */
static int check_area(const struct ring_mem *mem, uint64_t gpa, uint64_t len, uint64_t align, uint8_t **host)
{
    if (gpa % align)
        return RING_E_BAD_CONFIG;
    return ring_mem_find(mem, gpa, len, host);
}

void ring_queue_free(ring_queue *q)
{
    if (!q)
        return;
    free(q->free.v);
    free(q->order.v);
    free(q->m);
    free(q->seq);
    free(q);
}

int ring_queue_new(const struct ring_mem *mem, const struct ring_cfg *cfg, int device_side,
                   int has_start, uint32_t start, ring_queue **out)
{
    uint32_t n = cfg->size;
    int e;
    *out = NULL;
    if (n < 1 || n > 32768 || (!cfg->packed && (n & (n - 1))))
        return RING_E_BAD_CONFIG;
    ring_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return RING_E_BAD_CONFIG;
    q->mem = mem;
    q->size = n;
    q->packed = !!cfg->packed;
    q->event_idx = !!cfg->event_idx;
    q->indirect = !!cfg->indirect;
    q->in_order = !!cfg->in_order;
    q->device = !!device_side;
    if (q->packed) {
        e = check_area(mem, cfg->desc, 16ull * n, 16, &q->desc);
        if (!e) e = check_area(mem, cfg->driver, 4, 4, &q->drv);
        if (!e) e = check_area(mem, cfg->device, 4, 4, &q->dev);
    } else {
        e = check_area(mem, cfg->desc, 16ull * n, 16, &q->desc);
        if (!e) e = check_area(mem, cfg->driver, 6ull + 2ull * n, 2, &q->drv);
        if (!e) e = check_area(mem, cfg->device, 6ull + 8ull * n, 4, &q->dev);
    }
    if (e) {
        free(q);
        return e;
    }
    q->free.v = calloc(n, 2);
    q->free.cap = n;
    q->order.v = calloc(n, 2);
    q->order.cap = n;
    q->m = calloc(n, sizeof(struct meta));
    q->seq = calloc(n, 8);
    if (!q->free.v || !q->order.v || !q->m || !q->seq) {
        ring_queue_free(q);
        return RING_E_BAD_CONFIG;
    }
    q->a_wrap = q->u_wrap = 1;
    if (!device_side) {
        for (uint32_t i = 0; i < n; i++)
            fifo_push(&q->free, (uint16_t)i);
        q->free_desc = n;
        memset(q->desc, 0, 16ull * n);
        memset(q->drv, 0, q->packed ? 4 : 6ull + 2ull * n);
        memset(q->dev, 0, q->packed ? 4 : 6ull + 8ull * n);
    } else if (q->packed) {
        if (!has_start)
            start = 1u << 15;
        if ((start & 0x7fff) >= n) {
            ring_queue_free(q);
            return RING_E_BAD_CONFIG;
        }
        q->a_idx = q->u_idx = start & 0x7fff;
        q->a_wrap = q->u_wrap = (start >> 15) & 1;
    } else {
        q->last_avail = has_start ? (uint16_t)start : 0;
        q->used_idx = ld16(q->dev + 2);
    }
    *out = q;
    return RING_OK;
}

int ring_error(const ring_queue *q) { return q->error; }
uint32_t ring_outstanding(const ring_queue *q) { return q->outstanding; }

uint32_t ring_num_free(const ring_queue *q)
{
    return q->packed ? q->free_desc : q->free.count;
}

uint32_t ring_state(const ring_queue *q)
{
    return q->packed ? (q->a_idx | (q->a_wrap << 15)) : q->last_avail;
}

/* ---- shared helpers ---- */
static inline int need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

static inline void advance(uint32_t *idx, uint32_t *wrap, uint32_t n, uint32_t size)
{
    *idx += n;
    while (*idx >= size) {
        *idx -= size;
        *wrap ^= 1;
    }
}

/* packed: was (ev_idx, ev_wrap) one of the `moved` positions before (idx, wrap)? */
static int packed_notify(const uint8_t *area, const ring_queue *q, uint32_t idx, uint32_t wrap, uint32_t moved)
{
    FULL();
    uint16_t off_wrap = ld16(area), flags = ld16(area + 2);
    if (flags == EVT_DISABLE)
        return 0;
    if (flags == EVT_DESC && q->event_idx) {
        int64_t back = (int64_t)idx - (int64_t)(off_wrap & 0x7fff) +
                       ((uint32_t)(off_wrap >> 15) != wrap ? (int64_t)q->size : 0);
        if (back <= 0)
            back += 2 * (int64_t)q->size;
        return back >= 1 && back <= (int64_t)moved;
    }
    return 1;
}

static inline int packed_is_avail(uint16_t flags, uint32_t wrap)
{
    return (!!(flags & F_AVAIL)) == (int)wrap && (!!(flags & F_USED)) != (int)wrap;
}

static inline uint16_t avail_bits(uint32_t wrap) { return wrap ? F_AVAIL : F_USED; }
static inline uint16_t used_bits(uint32_t wrap) { return wrap ? (F_AVAIL | F_USED) : 0; }

/* validate a batch of chains before the driver writes anything: a cheap
 * screen passes the common batch (direct chains, counts in range); anything
 * else gets the exact check, chain by chain, for the right error */
static int check_requests(ring_queue *q, const struct ring_add *chains, uint32_t nchains, uint32_t nsegs)
{
    const uint32_t size = q->size;
    uint64_t s = 0, ind = 0;
    uint32_t any = 0;
    for (uint32_t k = 0; k < nchains; k++) {
        /* every nseg - 1 is at most the OR of them all, so an OR below the
         * size passes them all (nseg 0 wraps to all ones and fails) */
        any |= chains[k].nseg - 1u;
        s += chains[k].nseg;
        ind |= chains[k].indirect;
    }
    if (LIKELY(any < size && !ind && s <= nsegs))
        return RING_OK;
    s = 0;
    for (uint32_t k = 0; k < nchains; k++) {
        uint32_t nseg = chains[k].nseg;
        if (nseg == 0 || nseg > size || s + nseg > nsegs)
            return RING_E_BAD_REQUEST;
        s += nseg;
        if (chains[k].indirect) {
            uint8_t *h;
            if (!q->indirect)
                return RING_E_BAD_REQUEST;
            int e = ring_mem_find(q->mem, chains[k].indirect, 16ull * nseg, &h);
            if (e)
                return e;
        }
    }
    return RING_OK;
}

static uint32_t writable_total(const struct ring_seg *s, uint32_t n)
{
    uint64_t t = 0;
    for (uint32_t i = 0; i < n; i++)
        if (s[i].flags & SEG_WRITABLE)
            t += s[i].len;
    return (uint32_t)t;
}

static void order_append(ring_queue *q, uint16_t id)
{
    if (q->in_order) {
        q->seq[id] = q->order.head_seq + q->order.count;
        fifo_push(&q->order, id);
    }
    q->outstanding++;
}

/* ---- device-side chain parser ---- */
struct parse {
    struct ring_seg *out;
    uint32_t room;       /* segments that fit in `out`; later ones are checked, not stored */
    uint32_t n;
    int seen_write;
    uint64_t wlen;
};

/* ring_mem_find's verdict, trying the last region that matched first */
static inline int seg_check(ring_queue *q, uint64_t addr, uint64_t len)
{
    const struct ring_mem *mem = q->mem;
    if (len > UINT64_MAX - addr)
        return RING_E_ADDR_OVERFLOW;
    if (q->hint < mem->nregions) {
        const struct ring_region *r = &mem->regions[q->hint];
        /* addr < gpa wraps to a value above any size, as region ends stay below 2**64 */
        if (addr - r->gpa <= r->size && len <= r->size - (addr - r->gpa))
            return RING_OK;
    }
    for (uint32_t i = 0; i < mem->nregions; i++) {
        const struct ring_region *r = &mem->regions[i];
        if (addr >= r->gpa && addr - r->gpa <= r->size && len <= r->size - (addr - r->gpa)) {
            q->hint = i;
            return RING_OK;
        }
    }
    return RING_E_OUT_OF_BOUNDS;
}

static inline int p_data(ring_queue *q, struct parse *p, uint64_t addr, uint32_t len, uint16_t flags)
{
    int e = seg_check(q, addr, len);
    if (e)
        return e;
    if (flags & F_WRITE) {
        p->seen_write = 1;
        p->wlen += len;
        if (p->wlen > 0xffffffffull)
            return RING_E_CHAIN_LEN_OVERFLOW;
    } else if (p->seen_write) {
        return RING_E_READ_AFTER_WRITE;
    }
    if (p->n >= q->size)
        return RING_E_CHAIN_TOO_LONG;
    if (p->n < p->room) {
        p->out[p->n].addr = addr;
        p->out[p->n].len = len;
        p->out[p->n].flags = (flags & F_WRITE) ? SEG_WRITABLE : 0;
    }
    p->n++;
    return RING_OK;
}

static int p_indirect(ring_queue *q, struct parse *p, uint64_t addr, uint32_t len, uint16_t flags)
{
    uint8_t *t;
    int e;
    if (!q->indirect)
        return RING_E_INDIRECT_NOT_NEGOTIATED;
    if (flags & F_NEXT)
        return RING_E_INDIRECT_WITH_NEXT;
    if (len == 0 || len % 16)
        return RING_E_INDIRECT_BAD_LEN;
    if (len / 16 > q->size)
        return RING_E_CHAIN_TOO_LONG;
    e = ring_mem_find(q->mem, addr, len, &t);
    if (e)
        return e;
    uint32_t n = len / 16;
    if (q->packed) {
        for (uint32_t i = 0; i < n; i++) {
            struct packed_desc d;
            memcpy(&d, t + 16ull * i, 16);
            if (d.flags & F_INDIRECT)
                return RING_E_INDIRECT_NESTED;
            e = p_data(q, p, d.addr, d.len, d.flags);
            if (e)
                return e;
        }
        return RING_OK;
    }
    uint32_t i = 0, visited = 0;
    for (;;) {
        struct split_desc d;
        if (++visited > n)
            return RING_E_CHAIN_TOO_LONG;
        memcpy(&d, t + 16ull * i, 16);
        if (d.flags & F_INDIRECT)
            return RING_E_INDIRECT_NESTED;
        e = p_data(q, p, d.addr, d.len, d.flags);
        if (e)
            return e;
        if (!(d.flags & F_NEXT))
            return RING_OK;
        if (d.next >= n)
            return RING_E_DESC_INDEX_RANGE;
        i = d.next;
    }
}

/* ================= split ================= */

/* The split hot loops are written once and expanded twice (IN_ORDER on
 * and off), so the common configuration carries no per-item test of the
 * feature.  Queue fields are copied into locals first: every store into
 * guest memory goes through a uint8_t pointer, which could alias the
 * queue, so fields read through q would be re-read after each store. */

/* add one chain the general way (several segments, or an indirect table):
 * its head, -1 when the free descriptors do not suffice, -2 when the
 * table cannot be translated (unreachable: check_requests translated it) */
static __attribute__((noinline)) int32_t
split_add_general(ring_queue *q, const struct ring_add *ch, const struct ring_seg *s)
{
    const uint32_t mask = q->size - 1, nseg = ch->nseg;
    const uint64_t ind = ch->indirect;
    const uint32_t need = ind ? 1 : nseg;
    struct meta *const m = q->m;
    uint16_t *const fv = q->free.v;
    uint32_t fh = q->free.head, fc = q->free.count;
    uint64_t w = 0;
    uint16_t head;
    if (need > fc)
        return -1;
    head = fv[fh];
    fh = (fh + 1) & mask;
    fc--;
    if (ind) {
        uint8_t *t = NULL;
        if (ring_mem_find(q->mem, ind, 16ull * nseg, &t))
            return -2;
        for (uint32_t i = 0; i < nseg; i++) {
            int last = i + 1 == nseg;
            struct split_desc d = { s[i].addr, s[i].len,
                (uint16_t)(((s[i].flags & SEG_WRITABLE) ? F_WRITE : 0) | (last ? 0 : F_NEXT)),
                (uint16_t)(last ? 0 : i + 1) };
            memcpy(t + 16ull * i, &d, 16);
            if (s[i].flags & SEG_WRITABLE)
                w += s[i].len;
        }
        struct split_desc d = { ind, 16u * nseg, F_INDIRECT, 0 };
        memcpy(q->desc + 16ull * head, &d, 16);
        m[head].next = 0;
    } else {
        uint16_t cur = head;
        for (uint32_t i = 0; i < nseg; i++) {
            int last = i + 1 == nseg;
            uint16_t nxt = 0;
            if (!last) {
                nxt = fv[fh];
                fh = (fh + 1) & mask;
                fc--;
            }
            struct split_desc d = { s[i].addr, s[i].len,
                (uint16_t)(((s[i].flags & SEG_WRITABLE) ? F_WRITE : 0) | (last ? 0 : F_NEXT)), nxt };
            memcpy(q->desc + 16ull * cur, &d, 16);
            if (s[i].flags & SEG_WRITABLE)
                w += s[i].len;
            m[cur].next = nxt;
            cur = nxt;
        }
    }
    m[head].token = ch->token;
    m[head].ndesc = (uint16_t)need;
    m[head].wlen = (uint32_t)w;
    m[head].infl = 1;
    q->free.head = fh;
    q->free.count = fc;
    return head;
}

/* The common single-segment chain takes the short path; anything else goes
 * to split_add_general, out of line so the short path keeps its registers. */
static inline __attribute__((always_inline)) int
split_add_t(ring_queue *q, const struct ring_add *chains, uint32_t nchains,
            const struct ring_seg *segs, uint32_t *added, const int in_order)
{
    const uint32_t mask = q->size - 1;
    uint8_t *const desc = q->desc, *const avail = q->drv + 4;
    struct meta *const m = q->m;
    uint16_t *const fv = q->free.v;
    uint32_t fh = q->free.head, fc = q->free.count;   /* free fifo, kept in registers */
    uint16_t aidx = q->avail_idx;
    const struct ring_seg *s = segs;
    const struct ring_add *ch = chains, *const ch_end = chains + nchains;
    int e = RING_OK;
    for (; ch != ch_end; ch++) {
        uint32_t head;
        if (LIKELY(ch->nseg == 1 && !ch->indirect)) {
            if (UNLIKELY(fc == 0))
                break;
            head = fv[fh];
            fh = (fh + 1) & mask;
            fc--;
            const uint64_t addr = s->addr;
            const uint32_t len = s->len, wr = s->flags & SEG_WRITABLE;
            /* descriptor: addr, len, flags (WRITE or nothing), next 0 */
            const uint64_t w1 = len | (uint64_t)(wr << 1) << 32;
            memcpy(desc + 16ull * head, &addr, 8);
            memcpy(desc + 16ull * head + 8, &w1, 8);
            struct meta *const mh = &m[head];
            mh->token = ch->token;
            mh->wlen = len & (0u - wr);
            mh->ndesc = 1;
            mh->next = 0;
            mh->infl = 1;
            s++;
        } else {
            /* the free fifo goes through q, so fh and fc can stay in registers here */
            q->free.head = fh;
            q->free.count = fc;
            const int32_t h = split_add_general(q, ch, s);
            fh = q->free.head;
            fc = q->free.count;
            if (h == -1)
                break;
            if (UNLIKELY(h < 0)) {
                e = RING_E_OUT_OF_BOUNDS;
                break;
            }
            head = (uint32_t)h;
            s += ch->nseg;
        }
        if (in_order) {
            q->seq[head] = q->order.head_seq + q->order.count;
            fifo_push(&q->order, (uint16_t)head);
        }
        st16(avail + 2u * (aidx & mask), (uint16_t)head);
        aidx++;
    }
    if (UNLIKELY(e))
        return e;   /* as before: nothing recorded */
    const uint32_t k = (uint32_t)(ch - chains);
    q->free.head = fh;
    q->free.count = fc;
    q->outstanding += k;
    q->avail_idx = aidx;
    *added = k;
    return RING_OK;
}

static int split_add(ring_queue *q, const struct ring_add *chains, uint32_t nchains,
                     const struct ring_seg *segs, uint32_t nsegs, uint32_t *added, int *notify)
{
    const uint16_t old = q->avail_idx;
    int e = check_requests(q, chains, nchains, nsegs);
    *added = 0;
    *notify = 0;
    if (e)
        return e;
    e = q->in_order ? split_add_t(q, chains, nchains, segs, added, 1)
                    : split_add_t(q, chains, nchains, segs, added, 0);
    if (e)
        return e;
    if (*added == 0)
        return nchains ? RING_E_QUEUE_FULL : RING_OK;
    const uint16_t aidx = q->avail_idx;
    RELEASE();
    st16(q->drv + 2, aidx);
    FULL();
    if (q->event_idx)
        *notify = need_event(ld16(q->dev + 4 + 8u * q->size), aidx, old);
    else
        *notify = !(ld16(q->dev) & 1);
    return RING_OK;
}

static inline __attribute__((always_inline)) int
split_collect_t(ring_queue *q, struct ring_used *out, uint32_t max, uint32_t *count, const int in_order)
{
    const uint32_t size = q->size, mask = size - 1;
    const uint8_t *const ring = q->dev + 4;
    struct meta *const m = q->m;
    uint16_t *const fv = q->free.v;
    const uint32_t fh = q->free.head;
    uint32_t fc = q->free.count, c = 0, outstanding = q->outstanding;
    uint16_t last = q->last_used;
    int e = RING_OK;
    const uint16_t used_idx = ld16(q->dev + 2);
    ACQUIRE();
    if ((uint16_t)(used_idx - last) > outstanding) {
        *count = 0;
        return RING_E_USED_IDX_JUMP;
    }
    if (!in_order) {
        /* one used entry, one collected buffer; freed descriptors go to
         * the back of the free fifo, at `tail` */
        uint32_t todo = (uint16_t)(used_idx - last), tail = fh + fc;
        if (todo > max)
            todo = max;
        for (; c < todo; c++) {
            const uint8_t *el = ring + 8u * (last & mask);
            const uint32_t id = ld32(el), len = ld32(el + 4);
            if (UNLIKELY(id > mask || !m[id].infl)) {
                e = RING_E_USED_ID_BAD;
                break;
            }
            const uint32_t wlen = m[id].wlen, ndesc = m[id].ndesc;
            if (UNLIKELY(len > wlen)) {
                e = RING_E_USED_LEN_TOO_BIG;
                break;
            }
            out[c].token = m[id].token;
            out[c].len = len;
            out[c].reserved = 0;
            uint16_t d = (uint16_t)id;
            fv[tail++ & mask] = d;
            for (uint32_t j = ndesc; UNLIKELY(j > 1); j--) {
                d = m[d].next;
                fv[tail++ & mask] = d;
            }
            m[id].infl = 0;
            last++;
        }
        fc = tail - fh;
        outstanding -= c;
    } else {
        while (last != used_idx && c < max) {
            const uint8_t *el = ring + 8u * (last & mask);
            uint32_t id = ld32(el), len = ld32(el + 4), n;
            if (id >= size || !m[id].infl) {
                e = RING_E_USED_ID_BAD;
                break;
            }
            n = (uint32_t)(q->seq[id] - q->order.head_seq) + 1;
            if (n > (uint16_t)(used_idx - last)) {
                e = RING_E_USED_IDX_JUMP;
                break;
            }
            if (len > m[id].wlen) {
                e = RING_E_USED_LEN_TOO_BIG;
                break;
            }
            if (c + n > max)
                break;
            for (uint32_t i = 0; i < n; i++) {
                uint16_t h = fifo_pop(&q->order);
                out[c].token = m[h].token;
                out[c].len = i + 1 == n ? len : 0;
                out[c].reserved = 0;
                c++;
                uint16_t d = h;
                fv[(fh + fc) & mask] = d;
                fc++;
                for (uint32_t j = m[h].ndesc; j > 1; j--) {
                    d = m[d].next;
                    fv[(fh + fc) & mask] = d;
                    fc++;
                }
                m[h].infl = 0;
                outstanding--;
            }
            last = (uint16_t)(last + n);
        }
    }
    q->free.count = fc;
    q->outstanding = outstanding;
    q->last_used = last;
    *count = c;
    return e;
}

static int split_collect(ring_queue *q, struct ring_used *out, uint32_t max, uint32_t *count)
{
    return q->in_order ? split_collect_t(q, out, max, count, 1) : split_collect_t(q, out, max, count, 0);
}

/* walk a chain of the descriptor table (direct descriptors, then at most
 * one indirect table) */
static __attribute__((noinline)) int split_parse(ring_queue *q, uint16_t head, struct parse *p)
{
    const uint32_t size = q->size;
    const uint8_t *const desc = q->desc;
    uint32_t i = head, visited = 0;
    for (;;) {
        struct split_desc d;
        int e;
        if (++visited > size)
            return RING_E_CHAIN_TOO_LONG;
        memcpy(&d, desc + 16ull * i, 16);
        if (d.flags & F_INDIRECT)
            return p_indirect(q, p, d.addr, d.len, d.flags);
        e = p_data(q, p, d.addr, d.len, d.flags);
        if (e)
            return e;
        if (!(d.flags & F_NEXT))
            return RING_OK;
        if (d.next >= size)
            return RING_E_DESC_INDEX_RANGE;
        i = d.next;
    }
}

/* seg_check off the hot path */
static __attribute__((noinline)) int seg_check_slow(ring_queue *q, uint64_t addr, uint64_t len)
{
    return seg_check(q, addr, len);
}

/* bookkeeping for one popped chain */
static inline __attribute__((always_inline)) void
pop_record(ring_queue *q, struct meta *mh, struct ring_popped *co, uint32_t head, uint32_t n,
           uint32_t wlen, const int in_order)
{
    co->id = head;
    co->nseg = n;
    co->wlen = wlen;
    co->written = 0;
    mh->infl = 1;
    mh->wlen = wlen;
    if (in_order) {
        q->seq[head] = q->order.head_seq + q->order.count;
        fifo_push(&q->order, (uint16_t)head);
    }
}

/* Pop up to max_chains chains.  The first loop takes single direct
 * descriptors on a short path, checked against the region of the last
 * segment kept in registers, and needs no room check for their segment as
 * long as the segment buffer has room for one segment per chain still to
 * pop (true at the start: max_segs >= queue size >= chains available).
 * Anything else goes through split_parse, the reference walk; once a long
 * chain leaves less room than that, the rest of the batch goes through it
 * too, with the room checked chain by chain.  `nomap`: the map has no
 * region, so every chain takes split_parse (which reports it). */
static inline __attribute__((always_inline)) int
split_pop_t(ring_queue *q, struct ring_popped *chains, uint32_t max_chains,
            struct ring_seg *segs, uint32_t max_segs, uint32_t *count,
            const int in_order, const int nomap)
{
    const uint32_t mask = q->size - 1;      /* size is a power of two */
    const uint8_t *const avail = q->drv + 4, *const desc = q->desc;
    struct meta *const m = q->m;
    struct ring_seg *so = segs;
    uint16_t last = q->last_avail;
    int e = RING_OK;
    uint64_t lo = 0, sz = 0;
    if (!nomap) {
        if (q->hint >= q->mem->nregions)
            q->hint = 0;
        lo = q->mem->regions[q->hint].gpa;
        sz = q->mem->regions[q->hint].size;
    }
    const uint16_t avail_idx = ld16(q->drv + 2);
    ACQUIRE();
    uint32_t todo = (uint16_t)(avail_idx - last);
    if (todo > mask + 1) {
        *count = 0;
        return RING_E_AVAIL_IDX_JUMP;
    }
    if (todo > max_chains)
        todo = max_chains;
    struct ring_popped *co = chains, *const co_end = chains + todo;
    while (co != co_end) {
        const uint32_t head = ld16(avail + 2u * (last & mask));
        struct split_desc d;
        if (UNLIKELY(head > mask)) {
            e = RING_E_DESC_INDEX_RANGE;
            goto out;
        }
        struct meta *const mh = &m[head];
        if (UNLIKELY(mh->infl)) {
            e = RING_E_ID_IN_USE;
            goto out;
        }
        memcpy(&d, desc + 16ull * head, 16);
        if (LIKELY(!nomap && !(d.flags & (F_NEXT | F_INDIRECT)))) {
            /* the checks of split_parse that can fail for one direct
             * descriptor.  Inside the cached region addr + len cannot
             * overflow (region ends stay below 2**64); anywhere else
             * seg_check decides, overflow first. */
            const uint64_t off = d.addr - lo;
            if (UNLIKELY(off > sz || d.len > sz - off)) {
                e = seg_check_slow(q, d.addr, d.len);
                if (e)
                    goto out;
                lo = q->mem->regions[q->hint].gpa;
                sz = q->mem->regions[q->hint].size;
            }
            const uint32_t wr = (d.flags >> 1) & 1;     /* F_WRITE -> SEG_WRITABLE */
            so->addr = d.addr;
            so->len = d.len;
            so->flags = wr;
            so++;
            pop_record(q, mh, co, head, 1, d.len & (0u - wr), in_order);
            co++;
            last++;
        } else {
            struct ring_seg *const seg_end = segs + max_segs;
            struct parse p = { so, (uint32_t)(seg_end - so), 0, 0, 0 };
            e = split_parse(q, (uint16_t)head, &p);
            if (e)
                goto out;
            if (p.n > p.room)
                goto out;
            so += p.n;
            pop_record(q, mh, co, head, p.n, (uint32_t)p.wlen, in_order);
            co++;
            last++;
            if (!nomap) {
                lo = q->mem->regions[q->hint].gpa;
                sz = q->mem->regions[q->hint].size;
            }
            if (UNLIKELY(seg_end - so < co_end - co))
                goto tight;
        }
    }
    goto out;
tight:
    while (co != co_end) {
        const uint32_t head = ld16(avail + 2u * (last & mask));
        if (head > mask) {
            e = RING_E_DESC_INDEX_RANGE;
            break;
        }
        if (m[head].infl) {
            e = RING_E_ID_IN_USE;
            break;
        }
        struct parse p = { so, (uint32_t)(segs + max_segs - so), 0, 0, 0 };
        e = split_parse(q, (uint16_t)head, &p);
        if (e)
            break;
        if (p.n > p.room)
            break;
        so += p.n;
        pop_record(q, &m[head], co, head, p.n, (uint32_t)p.wlen, in_order);
        co++;
        last++;
    }
out:;
    const uint32_t c = (uint32_t)(co - chains);
    q->outstanding += c;
    q->last_avail = last;
    *count = c;
    return e;
}

static __attribute__((noinline)) int split_pop(ring_queue *q, struct ring_popped *chains, uint32_t max_chains,
                                               struct ring_seg *segs, uint32_t max_segs, uint32_t *count)
{
    if (q->mem->nregions == 0)
        return split_pop_t(q, chains, max_chains, segs, max_segs, count, q->in_order, 1);
    return q->in_order ? split_pop_t(q, chains, max_chains, segs, max_segs, count, 1, 0)
                       : split_pop_t(q, chains, max_chains, segs, max_segs, count, 0, 0);
}

/* push validation shared by both layouts; nothing is written on error */
static inline __attribute__((always_inline)) int
check_push_t(ring_queue *q, const struct ring_popped *items, uint32_t n, int fill, const int in_order)
{
    struct meta *const m = q->m;
    const uint32_t size = q->size;
    int e = RING_OK;
    uint32_t k;
    for (k = 0; k < n; k++) {
        const uint32_t id = items[k].id;
        if (UNLIKELY(id >= size || m[id].infl != 1)) {
            e = RING_E_PUSH_UNKNOWN_ID;
            break;
        }
        if (in_order && fifo_at(&q->order, k) != id) {
            e = RING_E_PUSH_OUT_OF_ORDER;
            break;
        }
        /* with fill the length is the writable size itself */
        if (!fill && UNLIKELY(items[k].written > m[id].wlen)) {
            e = RING_E_BAD_REQUEST;
            break;
        }
        m[id].infl = 2;    /* seen in this batch: a repeat is unknown */
    }
    if (UNLIKELY(e))
        for (uint32_t j = 0; j < k; j++)
            m[items[j].id].infl = 1;
    return e;
}

static int check_push(ring_queue *q, const struct ring_popped *items, uint32_t n, int fill)
{
    if (q->in_order)
        return check_push_t(q, items, n, fill, 1);
    return fill ? check_push_t(q, items, n, 1, 0) : check_push_t(q, items, n, 0, 0);
}

/* after a successful check_push every pushed id is marked 2; the writers clear it */
static inline __attribute__((always_inline)) void
split_push_t(ring_queue *q, const struct ring_popped *items, uint32_t n, int fill,
             int coalesce, const int in_order)
{
    const uint32_t mask = q->size - 1;
    uint8_t *const ring = q->dev + 4;
    struct meta *const m = q->m;
    const uint16_t old = q->used_idx;
    if (coalesce) {
        const struct ring_popped *it = &items[n - 1];
        uint8_t *el = ring + 8u * (old & mask);
        st32(el, it->id);
        st32(el + 4, fill ? m[it->id].wlen : it->written);
    }
    for (uint32_t k = 0; k < n; k++) {
        const uint32_t id = items[k].id;
        if (!coalesce) {
            /* id and length in one store (little-endian host) */
            const uint64_t v = id | (uint64_t)(fill ? m[id].wlen : items[k].written) << 32;
            memcpy(ring + 8u * ((uint16_t)(old + k) & mask), &v, 8);
        }
        m[id].infl = 0;
        if (in_order)
            fifo_pop(&q->order);
    }
}

/*
 * The common split push (one used entry per buffer, a batch of at most
 * FOLD_MAX) with its checks folded into the writing loop: one pass, where
 * check_push and the writer made two. Each entry is checked as it is
 * written, past the used index, where the driver does not look yet; on a
 * bad entry the entries written so far get their old bytes back and their
 * buffers their in-flight mark, so, as with check_push, the ring memory is
 * as it was and nothing is published.
 */
#define FOLD_MAX 256u

static inline __attribute__((always_inline)) int
split_push_folded_t(ring_queue *q, const struct ring_popped *items, uint32_t n, const int fill,
                    const int in_order)
{
    const uint32_t size = q->size, mask = size - 1;
    uint8_t *const ring = q->dev + 4;
    struct meta *const m = q->m;
    const uint16_t old = q->used_idx;
    uint64_t saved[FOLD_MAX];
    int e = RING_OK;
    uint32_t k;
    for (k = 0; k < n; k++) {
        const uint32_t id = items[k].id;
        if (UNLIKELY(id >= size || m[id].infl != 1)) {
            e = RING_E_PUSH_UNKNOWN_ID;     /* also a repeat: its mark is gone */
            break;
        }
        if (in_order && UNLIKELY(fifo_at(&q->order, k) != id)) {
            e = RING_E_PUSH_OUT_OF_ORDER;
            break;
        }
        const uint32_t len = fill ? m[id].wlen : items[k].written;
        if (!fill && UNLIKELY(len > m[id].wlen)) {
            e = RING_E_BAD_REQUEST;
            break;
        }
        uint8_t *const el = ring + 8u * ((uint16_t)(old + k) & mask);
        memcpy(&saved[k], el, 8);
        /* id and length in one store (little-endian host) */
        const uint64_t v = id | (uint64_t)len << 32;
        memcpy(el, &v, 8);
        m[id].infl = 0;
    }
    if (UNLIKELY(e)) {
        for (uint32_t j = 0; j < k; j++) {
            memcpy(ring + 8u * ((uint16_t)(old + j) & mask), &saved[j], 8);
            m[items[j].id].infl = 1;
        }
        return e;
    }
    if (in_order) {   /* the n oldest in-flight buffers, just checked: drop them at once */
        struct fifo *f = &q->order;
        f->head += n;
        if (f->head >= f->cap)
            f->head -= f->cap;
        f->count -= n;
        f->head_seq += n;
    }
    return RING_OK;
}

static void split_publish(ring_queue *q, uint16_t old, uint32_t n, int *notify)
{
    q->outstanding -= n;
    q->used_idx = (uint16_t)(old + n);
    RELEASE();
    st16(q->dev + 2, q->used_idx);
    FULL();
    if (q->event_idx)
        *notify = need_event(ld16(q->drv + 4 + 2u * q->size), q->used_idx, old);
    else
        *notify = !(ld16(q->drv) & 1);
}

static int split_push_folded(ring_queue *q, const struct ring_popped *items, uint32_t n, int fill,
                             int *notify)
{
    const uint16_t old = q->used_idx;
    int e = q->in_order ? split_push_folded_t(q, items, n, fill, 1)
          : fill ? split_push_folded_t(q, items, n, 1, 0) : split_push_folded_t(q, items, n, 0, 0);
    if (e)
        return e;
    split_publish(q, old, n, notify);
    return RING_OK;
}

static int split_push(ring_queue *q, const struct ring_popped *items, uint32_t n, int fill,
                      int coalesce, int *notify)
{
    const uint16_t old = q->used_idx;
    if (q->in_order)
        split_push_t(q, items, n, fill, coalesce, 1);
    else if (fill)
        split_push_t(q, items, n, 1, 0, 0);
    else
        split_push_t(q, items, n, 0, 0, 0);
    split_publish(q, old, n, notify);
    return RING_OK;
}

/* ================= packed ================= */

/* add one chain the general way (several segments, or an indirect table)
 * at q->a_idx: its buffer id, -1 when the ring has no room, -2 when the
 * table cannot be translated (unreachable: check_requests translated it) */
static __attribute__((noinline)) int32_t
packed_add_general(ring_queue *q, const struct ring_add *ch, const struct ring_seg *s)
{
    const uint32_t nseg = ch->nseg;
    const uint64_t ind = ch->indirect;
    const uint32_t need = ind ? 1 : nseg;
    uint16_t head_flags;
    const uint32_t head_idx = q->a_idx;
    if (need > q->free_desc || q->free.count == 0)
        return -1;
    uint16_t id = fifo_pop(&q->free);
    if (ind) {
        uint8_t *t = NULL;
        if (ring_mem_find(q->mem, ind, 16ull * nseg, &t))
            return -2;
        for (uint32_t i = 0; i < nseg; i++) {
            struct packed_desc d = { s[i].addr, s[i].len, 0,
                (uint16_t)((s[i].flags & SEG_WRITABLE) ? F_WRITE : 0) };
            memcpy(t + 16ull * i, &d, 16);
        }
        uint8_t *h = q->desc + 16ull * head_idx;
        uint64_t a = ind;
        uint32_t l = 16u * nseg;
        memcpy(h, &a, 8);
        st32(h + 8, l);
        st16(h + 12, id);
        head_flags = (uint16_t)(F_INDIRECT | avail_bits(q->a_wrap));
    } else {
        uint32_t idx = q->a_idx, wrap = q->a_wrap;
        head_flags = 0;
        for (uint32_t i = 0; i < nseg; i++) {
            uint16_t fl = (uint16_t)(((s[i].flags & SEG_WRITABLE) ? F_WRITE : 0) |
                                     (i + 1 < nseg ? F_NEXT : 0) | avail_bits(wrap));
            uint8_t *h = q->desc + 16ull * idx;
            if (i == 0) {
                /* the head's flags go in last, so the device never sees half a chain */
                memcpy(h, &s[i].addr, 8);
                st32(h + 8, s[i].len);
                st16(h + 12, id);
                head_flags = fl;
            } else {
                struct packed_desc d = { s[i].addr, s[i].len, id, fl };
                memcpy(h, &d, 16);
            }
            advance(&idx, &wrap, 1, q->size);
        }
    }
    RELEASE();
    st16(q->desc + 16ull * head_idx + 14, head_flags);
    advance(&q->a_idx, &q->a_wrap, need, q->size);
    q->free_desc -= need;
    q->m[id].token = ch->token;
    q->m[id].ndesc = (uint16_t)need;
    q->m[id].wlen = writable_total(s, nseg);
    q->m[id].infl = 1;
    order_append(q, id);
    return id;
}

/* single-segment chains on a short path with the ring position, the free
 * counts and the free fifo in registers; anything else goes to
 * packed_add_general with the queue brought up to date first */
static inline __attribute__((always_inline)) int
packed_add_t(ring_queue *q, const struct ring_add *chains, uint32_t nchains,
             const struct ring_seg *segs, uint32_t *added, uint32_t *moved_out, const int in_order)
{
    const uint32_t size = q->size;
    uint8_t *const desc = q->desc;
    struct meta *const m = q->m;
    uint16_t *const fv = q->free.v;
    uint32_t fh = q->free.head, fc = q->free.count, popped = 0;
    uint32_t a_idx = q->a_idx, a_wrap = q->a_wrap, free_desc = q->free_desc;
    uint32_t moved = 0, fast = 0;
    const struct ring_seg *s = segs;
    const struct ring_add *ch = chains, *const ch_end = chains + nchains;
    int e = RING_OK;
    for (; ch != ch_end; ch++) {
        if (LIKELY(ch->nseg == 1 && !ch->indirect)) {
            if (UNLIKELY(free_desc == 0 || fc == 0))
                break;
            const uint16_t id = fv[fh];
            if (++fh == size)
                fh = 0;
            fc--;
            popped++;
            const uint32_t len = s->len, wr = s->flags & SEG_WRITABLE;
            uint8_t *const h = desc + 16ull * a_idx;
            memcpy(h, &s->addr, 8);
            st32(h + 8, len);
            st16(h + 12, id);
            RELEASE();      /* the flags go in last, so the device never sees half a descriptor */
            st16(h + 14, (uint16_t)((wr ? F_WRITE : 0) | avail_bits(a_wrap)));
            if (++a_idx == size) {
                a_idx = 0;
                a_wrap ^= 1;
            }
            free_desc--;
            struct meta *const mi = &m[id];
            mi->token = ch->token;
            mi->ndesc = 1;
            mi->wlen = len & (0u - wr);
            mi->infl = 1;
            if (in_order) {
                q->seq[id] = q->order.head_seq + q->order.count;
                fifo_push(&q->order, id);
            }
            fast++;
            moved++;
            s++;
        } else {
            q->free.head = fh;
            q->free.count = fc;
            q->free.head_seq += popped;
            popped = 0;
            q->a_idx = a_idx;
            q->a_wrap = a_wrap;
            q->free_desc = free_desc;
            const int32_t id = packed_add_general(q, ch, s);
            fh = q->free.head;
            fc = q->free.count;
            a_idx = q->a_idx;
            a_wrap = q->a_wrap;
            if (id < 0) {
                if (id == -2)
                    e = RING_E_OUT_OF_BOUNDS;
                break;
            }
            moved += free_desc - q->free_desc;
            free_desc = q->free_desc;
            s += ch->nseg;
        }
    }
    q->free.head = fh;
    q->free.count = fc;
    q->free.head_seq += popped;
    q->a_idx = a_idx;
    q->a_wrap = a_wrap;
    q->free_desc = free_desc;
    q->outstanding += fast;     /* packed_add_general counted its own */
    *added = (uint32_t)(ch - chains);
    *moved_out = moved;
    return e;
}

static int packed_add(ring_queue *q, const struct ring_add *chains, uint32_t nchains,
                      const struct ring_seg *segs, uint32_t nsegs, uint32_t *added, int *notify)
{
    uint32_t moved = 0;
    int e = check_requests(q, chains, nchains, nsegs);
    *added = 0;
    *notify = 0;
    if (e)
        return e;
    e = q->in_order ? packed_add_t(q, chains, nchains, segs, added, &moved, 1)
                    : packed_add_t(q, chains, nchains, segs, added, &moved, 0);
    if (e) {
        *added = 0;     /* as the general loop always did: unreachable anyway */
        return e;
    }
    if (*added == 0)
        return nchains ? RING_E_QUEUE_FULL : RING_OK;
    *notify = packed_notify(q->dev, q, q->a_idx, q->a_wrap, moved);
    return RING_OK;
}

static uint32_t packed_free(ring_queue *q, uint16_t id)
{
    q->m[id].infl = 0;
    fifo_push(&q->free, id);
    q->free_desc += q->m[id].ndesc;
    q->outstanding--;
    return q->m[id].ndesc;
}

static int packed_collect_general(ring_queue *q, struct ring_used *out, uint32_t max, uint32_t *count)
{
    uint32_t c = 0;
    while (q->outstanding && c < max) {
        uint8_t *h = q->desc + 16ull * q->u_idx;
        uint16_t flags = ld16(h + 14);
        uint32_t a = !!(flags & F_AVAIL), u = !!(flags & F_USED), n = 1, skip = 0;
        if (a != u) {
            if (a == q->u_wrap)
                break;
            *count = c;
            return RING_E_USED_BAD_FLAGS;
        }
        if (a != q->u_wrap) {
            *count = c;
            return RING_E_USED_WRONG_WRAP;
        }
        ACQUIRE();
        uint32_t len = ld32(h + 8), id = ld16(h + 12);
        if (id >= q->size || !q->m[id].infl) {
            *count = c;
            return RING_E_USED_ID_BAD;
        }
        if (q->in_order)
            n = (uint32_t)(q->seq[id] - q->order.head_seq) + 1;
        if (!(flags & F_WRITE))
            len = 0;
        if (len > q->m[id].wlen) {
            *count = c;
            return RING_E_USED_LEN_TOO_BIG;
        }
        if (c + n > max)
            break;
        for (uint32_t i = 0; i + 1 < n; i++) {
            uint16_t b = fifo_pop(&q->order);
            out[c].token = q->m[b].token;
            out[c].len = 0;
            out[c].reserved = 0;
            c++;
            skip += packed_free(q, b);
        }
        if (q->in_order)
            fifo_pop(&q->order);
        out[c].token = q->m[id].token;
        out[c].len = len;
        out[c].reserved = 0;
        c++;
        skip += packed_free(q, (uint16_t)id);
        advance(&q->u_idx, &q->u_wrap, skip, q->size);
    }
    *count = c;
    return RING_OK;
}

/* without IN_ORDER every used descriptor completes one buffer: the same
 * checks as packed_collect_general, in its order, with the position, the
 * counts and the free fifo in registers */
static int packed_collect(ring_queue *q, struct ring_used *out, uint32_t max, uint32_t *count)
{
    if (q->in_order)
        return packed_collect_general(q, out, max, count);
    const uint32_t size = q->size;
    const uint8_t *const desc = q->desc;
    struct meta *const m = q->m;
    uint16_t *const fv = q->free.v;
    uint32_t fc = q->free.count, tail = q->free.head + fc;
    uint32_t u_idx = q->u_idx, u_wrap = q->u_wrap, outstanding = q->outstanding, free_desc = q->free_desc;
    uint32_t c = 0;
    int e = RING_OK;
    if (tail >= size)
        tail -= size;
    while (outstanding && c < max) {
        const uint8_t *const h = desc + 16ull * u_idx;
        const uint16_t flags = ld16(h + 14);
        const uint32_t a = (flags >> 7) & 1, u = (flags >> 15) & 1;
        if (UNLIKELY(a != u)) {
            if (a != u_wrap)
                e = RING_E_USED_BAD_FLAGS;
            break;              /* else: still available, not used yet */
        }
        if (UNLIKELY(a != u_wrap)) {
            e = RING_E_USED_WRONG_WRAP;
            break;
        }
        ACQUIRE();
        uint32_t len = ld32(h + 8);
        const uint32_t id = ld16(h + 12);
        if (UNLIKELY(id >= size || !m[id].infl)) {
            e = RING_E_USED_ID_BAD;
            break;
        }
        if (!(flags & F_WRITE))
            len = 0;
        if (UNLIKELY(len > m[id].wlen)) {
            e = RING_E_USED_LEN_TOO_BIG;
            break;
        }
        out[c].token = m[id].token;
        out[c].len = len;
        out[c].reserved = 0;
        c++;
        /* free the buffer id and its descriptors */
        const uint32_t nd = m[id].ndesc;
        m[id].infl = 0;
        fv[tail] = (uint16_t)id;
        if (++tail == size)
            tail = 0;
        fc++;
        free_desc += nd;
        outstanding--;
        u_idx += nd;
        while (u_idx >= size) {
            u_idx -= size;
            u_wrap ^= 1;
        }
    }
    q->free.count = fc;
    q->u_idx = u_idx;
    q->u_wrap = u_wrap;
    q->outstanding = outstanding;
    q->free_desc = free_desc;
    *count = c;
    return e;
}

/* parse the chain at the device's next-avail position */
static int packed_parse(ring_queue *q, struct parse *p, uint16_t *id_out, uint32_t *k_out)
{
    uint32_t idx = q->a_idx, wrap = q->a_wrap, k = 0;
    struct packed_desc d;
    int e;
    for (;;) {
        if (k > 0) {
            if (k >= q->size)
                return RING_E_CHAIN_TOO_LONG;
            if (!packed_is_avail(ld16(q->desc + 16ull * idx + 14), wrap))
                return RING_E_PACKED_BAD_FLAGS;
            ACQUIRE();
        }
        if (q->inflight_desc + k + 1 > q->size)
            return RING_E_AVAIL_IDX_JUMP;
        memcpy(&d, q->desc + 16ull * idx, 16);
        k++;
        if (d.flags & F_INDIRECT) {
            e = p_indirect(q, p, d.addr, d.len, d.flags);
            if (e)
                return e;
            break;
        }
        e = p_data(q, p, d.addr, d.len, d.flags);
        if (e)
            return e;
        if (!(d.flags & F_NEXT))
            break;
        advance(&idx, &wrap, 1, q->size);
    }
    if (d.id >= q->size)
        return RING_E_BUFFER_ID_RANGE;
    if (q->m[d.id].infl)
        return RING_E_ID_IN_USE;
    *id_out = d.id;
    *k_out = k;
    return RING_OK;
}

/* Pop up to max_chains chains.  A single direct descriptor takes a short
 * path (the checks packed_parse makes for it, in its order, with the ring
 * position and the region of the last segment in registers); anything
 * else goes through packed_parse with the queue brought up to date first.
 * `nomap`: the map has no region, so every chain takes packed_parse. */
static inline __attribute__((always_inline)) int
packed_pop_t(ring_queue *q, struct ring_popped *chains, uint32_t max_chains,
             struct ring_seg *segs, uint32_t max_segs, uint32_t *count,
             const int in_order, const int nomap)
{
    const uint32_t size = q->size;
    const uint8_t *const desc = q->desc;
    struct meta *const m = q->m;
    uint32_t a_idx = q->a_idx, a_wrap = q->a_wrap, infl_desc = q->inflight_desc;
    struct ring_seg *so = segs, *const seg_end = segs + max_segs;
    struct ring_popped *co = chains, *const co_end = chains + max_chains;
    int e = RING_OK;
    uint64_t lo = 0, sz = 0;
    if (!nomap) {
        if (q->hint >= q->mem->nregions)
            q->hint = 0;
        lo = q->mem->regions[q->hint].gpa;
        sz = q->mem->regions[q->hint].size;
    }
    while (co != co_end) {
        const uint8_t *const h = desc + 16ull * a_idx;
        struct packed_desc d;
        uint32_t n, k, wlen, id;
        if (!packed_is_avail(ld16(h + 14), a_wrap))
            break;
        ACQUIRE();
        if (UNLIKELY(infl_desc + 1 > size)) {
            e = RING_E_AVAIL_IDX_JUMP;
            break;
        }
        memcpy(&d, h, 16);
        if (LIKELY(!nomap && !(d.flags & (F_NEXT | F_INDIRECT)))) {
            const uint64_t off = d.addr - lo;
            if (UNLIKELY(off > sz || d.len > sz - off)) {
                e = seg_check_slow(q, d.addr, d.len);
                if (e)
                    break;
                lo = q->mem->regions[q->hint].gpa;
                sz = q->mem->regions[q->hint].size;
            }
            id = d.id;
            if (UNLIKELY(id >= size)) {
                e = RING_E_BUFFER_ID_RANGE;
                break;
            }
            if (UNLIKELY(m[id].infl)) {
                e = RING_E_ID_IN_USE;
                break;
            }
            if (UNLIKELY(so == seg_end))
                break;                  /* no room for its segment: left for the next pop */
            const uint32_t wr = (d.flags >> 1) & 1;     /* F_WRITE -> SEG_WRITABLE */
            wlen = d.len & (0u - wr);
            so->addr = d.addr;
            so->len = d.len;
            so->flags = wr;
            so++;
            n = 1;
            k = 1;
        } else {
            struct parse p = { so, (uint32_t)(seg_end - so), 0, 0, 0 };
            uint16_t pid;
            q->a_idx = a_idx;
            q->a_wrap = a_wrap;
            q->inflight_desc = infl_desc;
            e = packed_parse(q, &p, &pid, &k);
            if (e)
                break;
            if (p.n > p.room)
                break;
            id = pid;
            n = p.n;
            so += n;
            wlen = (uint32_t)p.wlen;
            if (!nomap) {
                lo = q->mem->regions[q->hint].gpa;
                sz = q->mem->regions[q->hint].size;
            }
        }
        co->id = id;
        co->nseg = n;
        co->wlen = wlen;
        co->written = 0;
        co++;
        m[id].infl = 1;
        m[id].ndesc = (uint16_t)k;
        m[id].wlen = wlen;
        if (in_order) {
            q->seq[id] = q->order.head_seq + q->order.count;
            fifo_push(&q->order, (uint16_t)id);
        }
        infl_desc += k;
        a_idx += k;
        while (a_idx >= size) {
            a_idx -= size;
            a_wrap ^= 1;
        }
    }
    const uint32_t c = (uint32_t)(co - chains);
    q->a_idx = a_idx;
    q->a_wrap = a_wrap;
    q->inflight_desc = infl_desc;
    q->outstanding += c;
    *count = c;
    return e;
}

static __attribute__((noinline)) int packed_pop(ring_queue *q, struct ring_popped *chains, uint32_t max_chains,
                                                struct ring_seg *segs, uint32_t max_segs, uint32_t *count)
{
    if (q->mem->nregions == 0)
        return packed_pop_t(q, chains, max_chains, segs, max_segs, count, q->in_order, 1);
    return q->in_order ? packed_pop_t(q, chains, max_chains, segs, max_segs, count, 1, 0)
                       : packed_pop_t(q, chains, max_chains, segs, max_segs, count, 0, 0);
}

static void packed_write_used(ring_queue *q, uint16_t id, uint32_t len)
{
    uint8_t *h = q->desc + 16ull * q->u_idx;
    st16(h + 12, id);
    st32(h + 8, len);
    RELEASE();
    st16(h + 14, (uint16_t)(used_bits(q->u_wrap) | (len ? F_WRITE : 0)));
}

/* after check_push, without IN_ORDER: each buffer gets its used
 * descriptor (flags last), position and counts in registers */
static inline __attribute__((always_inline)) uint32_t
packed_push_plain(ring_queue *q, const struct ring_popped *items, uint32_t n, const int fill)
{
    const uint32_t size = q->size;
    uint8_t *const desc = q->desc;
    struct meta *const m = q->m;
    uint32_t u_idx = q->u_idx, u_wrap = q->u_wrap, moved = 0;
    uint16_t bits = used_bits(u_wrap);
    for (uint32_t k = 0; k < n; k++) {
        const uint32_t id = items[k].id, nd = m[id].ndesc;
        const uint32_t len = fill ? m[id].wlen : items[k].written;
        uint8_t *const h = desc + 16ull * u_idx;
        st16(h + 12, (uint16_t)id);
        st32(h + 8, len);
        RELEASE();
        st16(h + 14, (uint16_t)(bits | (len ? F_WRITE : 0)));
        u_idx += nd;
        while (u_idx >= size) {
            u_idx -= size;
            u_wrap ^= 1;
            bits = used_bits(u_wrap);
        }
        moved += nd;
        m[id].infl = 0;
    }
    q->u_idx = u_idx;
    q->u_wrap = u_wrap;
    q->inflight_desc -= moved;
    q->outstanding -= n;
    return moved;
}

static int packed_push(ring_queue *q, const struct ring_popped *items, uint32_t n, int fill,
                       int coalesce, int *notify)
{
    uint32_t moved = 0;
    if (!coalesce && !q->in_order) {
        moved = fill ? packed_push_plain(q, items, n, 1) : packed_push_plain(q, items, n, 0);
        *notify = packed_notify(q->drv, q, q->u_idx, q->u_wrap, moved);
        return RING_OK;
    }
    if (coalesce) {
        const struct ring_popped *it = &items[n - 1];
        packed_write_used(q, (uint16_t)it->id, fill ? q->m[it->id].wlen : it->written);
    }
    for (uint32_t k = 0; k < n; k++) {
        uint32_t id = items[k].id;
        if (!coalesce) {
            packed_write_used(q, (uint16_t)id, fill ? q->m[id].wlen : items[k].written);
            advance(&q->u_idx, &q->u_wrap, q->m[id].ndesc, q->size);
        }
        moved += q->m[id].ndesc;
        q->m[id].infl = 0;
        q->inflight_desc -= q->m[id].ndesc;
        if (q->in_order)
            fifo_pop(&q->order);
        q->outstanding--;
    }
    if (coalesce)
        advance(&q->u_idx, &q->u_wrap, moved, q->size);
    *notify = packed_notify(q->drv, q, q->u_idx, q->u_wrap, moved);
    return RING_OK;
}

/* ================= entry points ================= */

int ring_drv_add(ring_queue *q, const struct ring_add *chains, uint32_t nchains,
                 const struct ring_seg *segs, uint32_t nsegs, uint32_t *added, int *notify)
{
    *added = 0;
    *notify = 0;
    if (q->error)
        return q->error;
    return q->packed ? packed_add(q, chains, nchains, segs, nsegs, added, notify)
                     : split_add(q, chains, nchains, segs, nsegs, added, notify);
}

int ring_drv_collect(ring_queue *q, struct ring_used *out, uint32_t max, uint32_t *count)
{
    *count = 0;
    if (q->error)
        return q->error;
    int e = q->packed ? packed_collect(q, out, max, count) : split_collect(q, out, max, count);
    if (e)
        q->error = e;
    return e;
}

int ring_dev_pop(ring_queue *q, struct ring_popped *chains, uint32_t max_chains,
                 struct ring_seg *segs, uint32_t max_segs, uint32_t *count)
{
    *count = 0;
    if (q->error)
        return q->error;
    if (max_segs < q->size)
        return RING_E_BAD_REQUEST;
    int e = q->packed ? packed_pop(q, chains, max_chains, segs, max_segs, count)
                      : split_pop(q, chains, max_chains, segs, max_segs, count);
    if (e)
        q->error = e;
    return e;
}

int ring_dev_push(ring_queue *q, const struct ring_popped *items, uint32_t n, int fill,
                  int coalesce, int *notify)
{
    *notify = 0;
    if (q->error)
        return q->error;
    if (n == 0)
        return RING_OK;
    if (coalesce && !q->in_order)
        return RING_E_BAD_REQUEST;
    if (!q->packed && !coalesce && n <= FOLD_MAX)
        return split_push_folded(q, items, n, fill, notify);
    int e = check_push(q, items, n, fill);
    if (e)
        return e;
    return q->packed ? packed_push(q, items, n, fill, coalesce, notify)
                     : split_push(q, items, n, fill, coalesce, notify);
}

/* Both sides switch the other side's notifications to them the same way.
 * `own` is the area this side writes (driver area for interrupts, device area
 * for notifications); `split_event` is its split-ring event index slot; idx
 * (and, packed, wrap) is the next position this side will read. */
static inline void events_on(ring_queue *q, uint8_t *own, uint8_t *split_event,
                             uint32_t idx, uint32_t wrap)
{
    if (q->packed) {
        if (q->event_idx) {
            st16(own, (uint16_t)(idx | (wrap << 15)));
            st16(own + 2, EVT_DESC);
        } else {
            st16(own + 2, EVT_ENABLE);
        }
    } else if (q->event_idx) {
        st16(split_event, (uint16_t)idx);
    } else {
        st16(own, 0);
    }
    FULL();
}

/* split with EVENT_IDX: the flags must stay 0; the event index simply stays behind */
static inline void events_off(ring_queue *q, uint8_t *own)
{
    if (q->packed)
        st16(own + 2, EVT_DISABLE);
    else if (!q->event_idx)
        st16(own, 1);
}

int ring_drv_enable_intr(ring_queue *q)
{
    if (q->packed) {
        events_on(q, q->drv, NULL, q->u_idx, q->u_wrap);
        if (!q->outstanding)
            return 0;
        uint16_t flags = ld16(q->desc + 16ull * q->u_idx + 14);
        return !packed_is_avail(flags, q->u_wrap) && (!!(flags & F_USED)) == (int)q->u_wrap;
    }
    events_on(q, q->drv, q->drv + 4 + 2u * q->size, q->last_used, 0);
    return ld16(q->dev + 2) != q->last_used;
}

void ring_drv_disable_intr(ring_queue *q)
{
    events_off(q, q->drv);
}

int ring_dev_enable_notify(ring_queue *q)
{
    if (q->packed) {
        events_on(q, q->dev, NULL, q->a_idx, q->a_wrap);
        return packed_is_avail(ld16(q->desc + 16ull * q->a_idx + 14), q->a_wrap);
    }
    events_on(q, q->dev, q->dev + 4 + 8u * q->size, q->last_avail, 0);
    return ld16(q->drv + 2) != q->last_avail;
}

void ring_dev_disable_notify(ring_queue *q)
{
    events_off(q, q->dev);
}

/* ---- single-return-value forms ---- */

int64_t ring_add(ring_queue *q, const struct ring_add *chains, uint32_t nchains,
                 const struct ring_seg *segs, uint32_t nsegs)
{
    uint32_t added;
    int notify;
    int e = ring_drv_add(q, chains, nchains, segs, nsegs, &added, &notify);
    q->last_count = added;
    return e ? -(int64_t)e : ((int64_t)added << 1) | (notify != 0);
}

int64_t ring_collect(ring_queue *q, struct ring_used *out, uint32_t max)
{
    uint32_t n;
    int e = ring_drv_collect(q, out, max, &n);
    q->last_count = n;
    return e ? -(int64_t)e : (int64_t)n;
}

int64_t ring_pop(ring_queue *q, struct ring_popped *chains, uint32_t max_chains,
                 struct ring_seg *segs, uint32_t max_segs)
{
    uint32_t n;
    int e = ring_dev_pop(q, chains, max_chains, segs, max_segs, &n);
    q->last_count = n;
    return e ? -(int64_t)e : (int64_t)n;
}

int64_t ring_push(ring_queue *q, const struct ring_popped *items, uint32_t n, int fill, int coalesce)
{
    int notify;
    int e = ring_dev_push(q, items, n, fill, coalesce, &notify);
    q->last_count = 0;
    return e ? -(int64_t)e : (int64_t)(notify != 0);
}

uint32_t ring_last_count(const ring_queue *q)
{
    return q->last_count;
}
