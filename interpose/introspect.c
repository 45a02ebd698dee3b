/* The public statistics and address-lookup API (mspace.h): the figures
 * come from core/usage.c and core/lookup.c, the call counts from
 * observe.c. The report is formatted line by line with the bounded
 * formatter and written only after every allocator lock is released, so
 * it may go through stdio (which can allocate) or straight to a file
 * descriptor. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "../core/heap.h"
#include "../core/host.h"
#include "../core/lookup.h"
#include "../core/size_class.h"
#include "../core/stats.h"
#include "../core/text.h"
#include "../core/usage.h"
#include "bootstrap.h"
#include "introspect.h"
#include "mspace.h"
#include "observe.h"
#include "track.h"

#define EXPORT __attribute__((visibility("default")))

_Static_assert(MS_CLASS_COUNT <= MSPACE_CLASSES_MAX, "classes fit mspace_stats");
_Static_assert((int)MSPACE_IN_USE == (int)MS_LOOKUP_IN_USE &&
                   (int)MSPACE_FREE == (int)MS_LOOKUP_FREE &&
                   (int)MSPACE_UNCARVED == (int)MS_LOOKUP_UNCARVED &&
                   (int)MSPACE_METADATA == (int)MS_LOOKUP_METADATA,
               "public states mirror core/lookup.h");

/* Regions described by the verbose report; the rest are counted. */
#define VIEW_REGIONS_MAX 32

EXPORT mspace_stats mspace_stats_get(void) {
    ms_usage_t u;
    ms_usage_collect(&u);
    ms_stats_t counters;
    ms_stats_read(&counters);
    mspace_stats s = {
        .mapped = u.mapped, .pages = u.mapped / MS_OS_PAGE, .in_use = u.in_use, .free = u.free,
        .free_holes = u.free_holes, .free_uncarved = u.free_uncarved,
        .free_slices = u.free_slices, .free_cached = u.free_cached, .overhead = u.overhead,
        .fragmentation = u.in_use + u.free ? (double)u.free / (double)(u.in_use + u.free) : 0.0,
        .mapped_peak = counters.bytes_mapped_peak,
        .regions = u.small_segments + u.large_blocks, .small_regions = u.small_segments,
        .large_blocks = u.large_blocks, .large_bytes = u.large_in_use,
        .large_mapped = u.large_mapped, .heaps = u.heaps,
        .calls_counted = ms_observing, .mmaps = counters.os_maps, .munmaps = counters.os_unmaps,
        .class_count = MS_CLASS_COUNT,
    };
    if (s.mapped_peak < s.mapped) /* the peak is kept by another counter, a moment apart */
        s.mapped_peak = s.mapped;
    uint64_t calls[MS_CALL_COUNT];
    ms_observe_calls(calls);
    s.mallocs = calls[MS_CALL_malloc];
    s.frees = calls[MS_CALL_free];
    s.reallocs = calls[MS_CALL_realloc];
    for (unsigned c = 0; c < MS_CLASS_COUNT; c++) {
        const ms_class_usage_t *cu = &u.classes[c];
        size_t size = ms_size_class_size(c);
        s.classes[c] = (mspace_class_stats){
            .block_size = size, .spans = cu->spans, .blocks_in_use = cu->blocks_in_use,
            .blocks_free = cu->blocks_free, .bytes_in_use = cu->blocks_in_use * size,
            .bytes_free = cu->blocks_free * size + cu->bytes_uncarved,
            .bytes_uncarved = cu->bytes_uncarved,
        };
    }
    return s;
}

/* ---- where the report goes: a FILE or a descriptor ---- */

typedef struct {
    FILE *file;
    int fd;
    bool failed;
    bool json;
    ms_text_t t;
} out_t;

static void emit(out_t *o) {
    if (o->file)
        o->failed |= fwrite(o->t.buf, 1, o->t.len, o->file) != o->t.len;
    else
        ms_host_write(o->fd, o->t.buf, o->t.len);
    o->t.len = 0;
}

/* The formatter's buffer holds a few lines; empty it before it could fill. */
static void put(out_t *o, const char *s) {
    if (o->t.len > sizeof o->t.buf - 160)
        emit(o);
    ms_text_str(&o->t, s);
}
static void put_dec(out_t *o, uint64_t v) { ms_text_dec(&o->t, v); }
static void put_hex(out_t *o, uint64_t v) {
    if (o->json)
        ms_text_str(&o->t, "\"");
    ms_text_hex(&o->t, v);
    if (o->json)
        ms_text_str(&o->t, "\"");
}

/* The JSON or the text form of the same piece. */
static void put2(out_t *o, const char *json, const char *text) { put(o, o->json ? json : text); }

/* num / den with four decimals, without floating point. */
static void put_ratio(out_t *o, uint64_t num, uint64_t den) {
    uint64_t scaled = den ? (uint64_t)((unsigned __int128)num * 10000 / den) : 0;
    put_dec(o, scaled / 10000);
    put(o, ".");
    for (uint64_t unit = 1000; unit; unit /= 10)
        put_dec(o, scaled / unit % 10);
}

static void put_padded(out_t *o, const char *s, size_t width) {
    put(o, s);
    for (size_t n = strlen(s); n < width; n++)
        put(o, " ");
}

static void put_cell(out_t *o, uint64_t value, unsigned width) {
    unsigned digits = 1;
    for (uint64_t v = value; v >= 10; v /= 10)
        digits++;
    for (; digits < width; digits++)
        put(o, " ");
    put_dec(o, value);
}

/* `"key": value,` in JSON, `  key     value` in text. */
static void field(out_t *o, const char *key, uint64_t value) {
    if (o->json) {
        put(o, "  \"");
        put(o, key);
        put(o, "\": ");
        put_dec(o, value);
        put(o, ",\n");
    } else {
        put(o, "  ");
        put_padded(o, key, 16);
        put_cell(o, value, 14);
        put(o, "\n");
    }
}

/* The fields of mspace_stats in report order; the report's keys are the
 * field names. */
#define SPACE_FIELDS(X)                                                        \
    X(mapped) X(pages) X(in_use) X(free) X(free_holes) X(free_uncarved)        \
    X(free_slices) X(free_cached) X(overhead)
#define SHAPE_FIELDS(X)                                                        \
    X(mapped_peak) X(regions) X(small_regions) X(large_blocks) X(large_bytes)  \
    X(large_mapped) X(heaps)
#define CALL_FIELDS(X) X(mallocs) X(frees) X(reallocs)
#define OS_FIELDS(X) X(mmaps) X(munmaps)
#define FIELD(name) field(o, #name, s->name);

static void put_totals(out_t *o, const mspace_stats *s) {
    SPACE_FIELDS(FIELD)
    put2(o, "  \"fragmentation\": ", "  fragmentation           ");
    put_ratio(o, s->free, (uint64_t)s->in_use + s->free);
    put2(o, ",\n", "   (free / (in_use + free))\n");
    SHAPE_FIELDS(FIELD)
    if (o->json)
        put(o, s->calls_counted ? "  \"calls_counted\": true,\n" : "  \"calls_counted\": false,\n");
    if (s->calls_counted) {
        CALL_FIELDS(FIELD)
    } else {
        put2(o, "  \"mallocs\": null,\n  \"frees\": null,\n  \"reallocs\": null,\n",
             "  mallocs, frees, reallocs: not counted (start the program with MSPACE_STATS=1)\n");
    }
    OS_FIELDS(FIELD)
}

static void put_classes(out_t *o, const mspace_stats *s) {
    bool first = true;
    put2(o, "  \"classes\": [", "  size classes with spans:\n"
                                         "    class    block    spans  blocks in use    blocks free"
                                         "   bytes in use     bytes free\n");
    for (unsigned c = 0; c < s->class_count; c++) {
        const mspace_class_stats *k = &s->classes[c];
        if (k->spans == 0)
            continue;
        static const char *const names[] = {"class",       "block_size",   "spans",
                                            "blocks_in_use", "blocks_free", "bytes_in_use",
                                            "bytes_free"};
        static const unsigned widths[] = {9, 9, 9, 15, 15, 15, 15};
        const uint64_t cells[] = {c, k->block_size, k->spans, k->blocks_in_use,
                                  k->blocks_free, k->bytes_in_use, k->bytes_free};
        if (o->json)
            put(o, first ? "\n    {" : ",\n    {");
        for (unsigned i = 0; i < 7; i++) {
            if (o->json) {
                put(o, i ? ", \"" : "\"");
                put(o, names[i]);
                put(o, "\": ");
                put_dec(o, cells[i]);
            } else {
                put_cell(o, cells[i], widths[i]);
            }
        }
        put2(o, "}", "\n");
        first = false;
    }
    if (o->json)
        put(o, first ? "]" : "\n  ]");
}

/* ---- the verbose part: MeMS's main chain and sub-chains ---- */

static const char *const run_names[] = {"PROCESS", "HOLE", "UNCARVED"};

static void put_more(out_t *o, const char *indent, uint64_t n, const char *what) {
    put(o, indent);
    put(o, "... ");
    put_dec(o, n);
    put(o, " more ");
    put(o, what);
    put(o, "\n");
}

static void put_span(out_t *o, const ms_span_view_t *v) {
    put2(o, "{\"start\": ", "    span ");
    put_hex(o, v->start);
    put2(o, ", \"end\": ", "-");
    put_hex(o, v->start + v->bytes);
    put2(o, ", \"class\": ", " class ");
    put_dec(o, v->size_class);
    put2(o, ", \"block_size\": ", " (");
    put_dec(o, v->block_size);
    put2(o, ", \"in_use\": ", " B blocks): ");
    put_dec(o, v->in_use);
    put2(o, ", \"free\": ", " in use, ");
    put_dec(o, v->holes);
    put2(o, ", \"uncarved\": ", " free, ");
    put_dec(o, v->uncarved);
    put2(o, ", \"run_count\": ", " uncarved\n");
    if (o->json)
        put_dec(o, v->run_count);
    put2(o, ", \"runs\": [", "");
    uintptr_t at = v->start;
    unsigned kept = v->run_count < MS_VIEW_RUNS_MAX ? v->run_count : MS_VIEW_RUNS_MAX;
    for (unsigned r = 0; r < kept; r++) {
        size_t bytes = (size_t)v->runs[r].blocks * v->block_size;
        put2(o, r ? ", {\"state\": \"" : "{\"state\": \"", "      ");
        put_padded(o, run_names[v->runs[r].state], o->json ? 0 : 9);
        put2(o, "\", \"start\": ", "");
        put_hex(o, at);
        if (!o->json) {
            put(o, "-");
            put_hex(o, at + bytes);
        }
        put2(o, ", \"blocks\": ", " ");
        put_dec(o, v->runs[r].blocks);
        put2(o, "}", v->runs[r].blocks == 1 ? " block\n" : " blocks\n");
        at += bytes;
    }
    put2(o, "]}", "");
    if (!o->json && v->run_count > kept)
        put_more(o, "      ", v->run_count - kept, "runs");
}

static void put_region(out_t *o, const ms_region_view_t *v) {
    bool large = v->kind == SEGMENT_LARGE;
    put2(o, "    {\"start\": ", "  region ");
    put_hex(o, v->base);
    put2(o, ", \"end\": ", "-");
    put_hex(o, v->base + v->size);
    put2(o, ", \"pages\": ", " ");
    put_dec(o, v->size / MS_OS_PAGE);
    if (o->json)
        put(o, large ? ", \"kind\": \"large\"" : ", \"kind\": \"small\"");
    else
        put(o, large ? " pages large" : " pages small");
    if (large) {
        put2(o, ", \"block\": ", ", block ");
        put_hex(o, v->block);
        put2(o, ", \"usable\": ", " usable ");
        put_dec(o, v->block_size);
        put2(o, "", " bytes");
        if (v->heap) { /* an explicit heap's */
            put2(o, ", \"heap\": ", ", explicit heap ");
            put_hex(o, (uintptr_t)v->heap);
        }
        put2(o, "}", "\n");
        return;
    }
    bool mine = v->heap == ms_heap_tls;
    put2(o, ", \"heap\": ", ", heap ");
    put_hex(o, (uintptr_t)v->heap);
    if (o->json)
        put(o, mine ? ", \"this_thread\": true" : ", \"this_thread\": false");
    else if (mine)
        put(o, " (this thread)");
    put2(o, ", \"free_slices\": ", ", ");
    put_dec(o, v->free_slices);
    put2(o, ", \"span_count\": ", " free slices, ");
    put_dec(o, v->span_count);
    put2(o, ", \"spans\": [", " spans\n");
    unsigned kept = v->span_count < MS_VIEW_SPANS_MAX ? v->span_count : MS_VIEW_SPANS_MAX;
    for (unsigned i = 0; i < kept; i++) {
        if (o->json)
            put(o, i ? ",\n      " : "\n      ");
        put_span(o, &v->spans[i]);
    }
    if (o->json)
        put(o, kept ? "\n    ]}" : "]}");
    else if (v->span_count > kept)
        put_more(o, "    ", v->span_count - kept, "spans");
}

static int put_chain(out_t *o) {
    ms_region_view_t *views = malloc(VIEW_REGIONS_MAX * sizeof *views);
    if (views == NULL)
        return -1;
    size_t total = ms_usage_regions(views, VIEW_REGIONS_MAX);
    size_t kept = total < VIEW_REGIONS_MAX ? total : VIEW_REGIONS_MAX;
    if (o->json) {
        put(o, ",\n  \"chain_regions\": ");
        put_dec(o, total);
        put(o, ",\n  \"chain\": [");
    } else {
        put(o, "  chain of mapped regions (");
        put_dec(o, total);
        put(o, "):\n");
    }
    for (size_t i = 0; i < kept; i++) {
        if (o->json)
            put(o, i ? ",\n" : "\n");
        put_region(o, &views[i]);
    }
    if (o->json)
        put(o, kept ? "\n  ]" : "]");
    else if (total > kept)
        put_more(o, "  ", total - kept, "regions");
    free(views);
    return 0;
}

static int report(out_t *o, int flags) {
    if (flags & ~(MSPACE_STATS_VERBOSE | MSPACE_STATS_JSON)) {
        errno = EINVAL;
        return -1;
    }
    o->json = flags & MSPACE_STATS_JSON;
    mspace_stats s = mspace_stats_get();
    put2(o, "{\n", "mspace statistics (a snapshot: other threads run on while it is taken)\n");
    put_totals(o, &s);
    put_classes(o, &s);
    int rc = 0;
    if (flags & MSPACE_STATS_VERBOSE)
        rc = put_chain(o);
    put2(o, "\n}\n", "");
    emit(o);
    if (o->failed) {
        errno = EIO;
        return -1;
    }
    return rc;
}

EXPORT int mspace_stats_print(FILE *out, int flags) {
    if (out == NULL) {
        errno = EINVAL;
        return -1;
    }
    out_t o = {.file = out};
    int rc = report(&o, flags);
    if (fflush(out) != 0)
        rc = -1;
    return rc;
}

int ms_introspect_write(int fd, int flags) {
    out_t o = {.fd = fd};
    return report(&o, flags);
}

/* ---- mspace_get ---- */

EXPORT int mspace_get(const void *addr, mspace_block_info *out) {
    if (out == NULL) {
        errno = EINVAL;
        return -1;
    }
    *out = (mspace_block_info){.state = MSPACE_FOREIGN, .size_class = -1};
    void *block;
    size_t usable;
    if (ms_bootstrap_owns(addr)) {
        out->bootstrap = 1;
        out->exact = 1;
        if (ms_bootstrap_find(addr, &block, &usable)) {
            out->state = MSPACE_IN_USE; /* never reused, so never free */
            out->block = block;
            out->usable_size = usable;
        } else {
            out->state = MSPACE_UNCARVED;
        }
    } else {
        ms_lookup_t found;
        ms_lookup(addr, &found);
        out->state = (enum mspace_block_state)found.state;
        out->exact = found.exact;
        out->block = (void *)found.block;
        out->usable_size = found.block_size;
        out->requested_size = found.requested;
        out->size_class = found.size_class;
        out->region = (void *)found.region;
        out->region_size = found.region_size;
        out->large = found.large;
    }
    size_t requested;
    if (out->bootstrap)
        out->requested_size = out->usable_size;
    else if (out->state == MSPACE_IN_USE && ms_track_requested(out->block, &requested))
        out->requested_size = requested;
    uint64_t physical;
    if (ms_host_physical_address(addr, &physical)) {
        out->physical_known = 1;
        out->physical_address = physical;
    }
    return out->state != MSPACE_FOREIGN;
}
