/*
 * A minimal Pitchside detector in C: one box per frame, centred on the frame's brightest
 * pixel, scored by its brightness. Params: {"box": N}, the box side in pixels (default 16).
 *
 *   cc -std=c11 -O2 -shared -fPIC -I include -o libbrightest_spot.so c/minimal_detector.c
 *
 * Boxes near the frame edge reach outside it on purpose: the host clips them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pitchside_plugin.h"

typedef struct {
    int box;
    /* Output buffers: owned by the handle, reused, valid until the next call. */
    PsDetection *detections;
    size_t *counts;
    size_t capacity;
    char error[256];
} Handle;

/* create's error, per thread, as the ABI asks. */
static _Thread_local char create_error[256];

static int32_t create(const char *params_json, size_t params_len, void **out_handle) {
    (void)params_len; /* The host NUL-terminates params_json, so strstr is safe. */
    *out_handle = NULL;
    int box = 16;
    const char *p = strstr(params_json, "\"box\"");
    if (p != NULL) {
        p = strchr(p, ':');
        box = p != NULL ? atoi(p + 1) : 0;
    }
    if (box <= 0) {
        snprintf(create_error, sizeof create_error, "\"box\" must be a positive integer");
        return PS_INVALID_PARAMS;
    }
    Handle *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(create_error, sizeof create_error, "out of memory");
        return PS_FAILED;
    }
    h->box = box;
    create_error[0] = '\0';
    *out_handle = h;
    return PS_OK;
}

static void destroy(void *handle) {
    Handle *h = handle;
    if (h == NULL) {
        return;
    }
    free(h->detections);
    free(h->counts);
    free(h);
}

static const char *last_error(void *handle) {
    return handle != NULL ? ((Handle *)handle)->error : create_error;
}

static int32_t num_keypoints(void *handle, uint32_t *out) {
    (void)handle;
    *out = 0;
    return PS_OK;
}

static int32_t detect(void *handle, const PsFrame *frames, size_t num_frames,
                      PsDetectOutput *out) {
    Handle *h = handle;
    if (num_frames > h->capacity) {
        PsDetection *d = realloc(h->detections, num_frames * sizeof *d);
        if (d != NULL) {
            h->detections = d;
        }
        size_t *c = realloc(h->counts, num_frames * sizeof *c);
        if (c != NULL) {
            h->counts = c;
        }
        if (d == NULL || c == NULL) {
            snprintf(h->error, sizeof h->error, "out of memory");
            return PS_FAILED;
        }
        h->capacity = num_frames;
    }
    for (size_t i = 0; i < num_frames; i++) {
        const PsFrame *f = &frames[i];
        if (f->pixel_format > PS_PIXEL_FORMAT_RGB8) {
            snprintf(h->error, sizeof h->error, "unknown pixel format %u", f->pixel_format);
            return PS_INVALID_INPUT;
        }
        unsigned best = 0, bx = 0, by = 0;
        for (uint32_t y = 0; y < f->height; y++) {
            const uint8_t *row = f->data + (size_t)y * f->row_stride;
            for (uint32_t x = 0; x < f->width; x++) {
                unsigned v = row[3 * x] + row[3 * x + 1] + row[3 * x + 2];
                if (v > best) {
                    best = v;
                    bx = x;
                    by = y;
                }
            }
        }
        float half = h->box / 2.0f, cx = bx + 0.5f, cy = by + 0.5f;
        PsDetection d = {{cx - half, cy - half, cx + half, cy + half}, best / 765.0f, 0};
        h->detections[i] = d;
        h->counts[i] = 1;
    }
    out->detections = h->detections;
    out->num_detections = num_frames;
    out->frame_counts = h->counts;
    out->num_frames = num_frames;
    out->keypoints = NULL;
    out->num_keypoints = 0;
    out->reserved = 0;
    h->error[0] = '\0';
    return PS_OK;
}

static const PsPluginDescriptor DESCRIPTOR = {
    .abi_version = PS_ABI_VERSION,
    .struct_size = sizeof(PsPluginDescriptor),
    .kind = PS_KIND_DETECTOR,
    .reserved = 0,
    .name = "brightest-spot",
    .version = "1.0.0",
    .create = create,
    .destroy = destroy,
    .last_error = last_error,
    .num_keypoints = num_keypoints,
    .detect = detect,
    .track = NULL,
    .reset = NULL,
};

PS_EXPORT const PsPluginDescriptor *pitchside_plugin_entry(void) {
    return &DESCRIPTOR;
}
