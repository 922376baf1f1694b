/*
 * pitchside_plugin.h: the Pitchside plugin C ABI, version 1.
 *
 * Mirrors plugins/pitchside-plugin/src/abi.rs field for field; README.md beside this
 * directory is the full contract (ownership, lifetimes, threading, versioning, errors).
 *
 * A plugin is a shared library exporting one function, pitchside_plugin_entry, that
 * returns a pointer to a static PsPluginDescriptor. The host reads abi_version and
 * struct_size first and refuses the library unless abi_version == PS_ABI_VERSION and
 * struct_size >= sizeof(PsPluginDescriptor) of this version.
 */
#ifndef PITCHSIDE_PLUGIN_H
#define PITCHSIDE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Major version: bumped on any incompatible change. Fields are only ever appended within
 * a major version, and struct_size tells the host how many the plugin has. */
#define PS_ABI_VERSION 1u
#define PS_ENTRY_SYMBOL "pitchside_plugin_entry"

/* PsPluginDescriptor.kind */
#define PS_KIND_DETECTOR 1u
#define PS_KIND_TRACKER 2u

/* PsFrame.pixel_format: 8 bits per channel, packed, 3 bytes per pixel. */
#define PS_PIXEL_FORMAT_BGR8 0u
#define PS_PIXEL_FORMAT_RGB8 1u

/* Status codes. Functions return them as int32_t; the host reads unknown codes as
 * PS_FAILED. On any code but PS_OK the message is in last_error. */
enum {
    PS_OK = 0,
    PS_FAILED = 1,         /* the call failed */
    PS_INVALID_PARAMS = 2, /* create: the parameters are unusable */
    PS_INVALID_INPUT = 3,  /* the host passed something unusable (bad frame, null) */
    PS_PANICKED = 4        /* the plugin crashed in a way it caught (panic, exception);
                              the host never calls the handle again, except destroy */
};

/* A frame borrowed for the duration of one detect call. Rows are row_stride bytes apart
 * (row_stride >= width * 3); data holds data_len >= row_stride * (height - 1) + width * 3
 * bytes. */
typedef struct PsFrame {
    const uint8_t *data;
    size_t data_len;
    size_t row_stride;
    uint64_t frame_number; /* in the source video, never renumbered */
    uint32_t width;
    uint32_t height;
    uint32_t pixel_format; /* PS_PIXEL_FORMAT_* */
    uint32_t reserved;     /* 0 */
} PsFrame;

/* bbox is {x1, y1, x2, y2} in source pixels. */
typedef struct PsDetection {
    float bbox[4];
    float score;
    uint32_t class_id;
} PsDetection;

/* A detector's result for a batch, in buffers the PLUGIN owns, valid until the next call
 * on the same handle or its destroy. Frame i's detections follow frame i-1's in
 * `detections`; frame_counts[i] says how many there are. */
typedef struct PsDetectOutput {
    const PsDetection *detections;
    size_t num_detections;       /* == sum of frame_counts */
    const size_t *frame_counts;  /* num_frames entries */
    size_t num_frames;           /* == the number of frames passed in */
    const float *keypoints;      /* num_detections * num_keypoints * 3 floats,
                                    {x, y, confidence}, detection-major; may be NULL
                                    when that product is 0 */
    uint32_t num_keypoints;      /* == what num_keypoints() reported */
    uint32_t reserved;           /* 0 */
} PsDetectOutput;

/* Detections passed to a tracker, borrowed for the duration of one track call. */
typedef struct PsDetectionList {
    const PsDetection *detections;
    size_t num_detections;
    const float *keypoints; /* num_detections * num_keypoints * 3 floats */
    uint32_t num_keypoints;
    uint32_t reserved;
} PsDetectionList;

typedef struct PsTrackedObject {
    uint64_t id; /* starts at 1 */
    float bbox[4];
    float score;
    uint32_t class_id;
} PsTrackedObject;

/* A tracker's result for one frame, in buffers the PLUGIN owns (valid until the next call
 * on the handle or destroy). */
typedef struct PsTrackOutput {
    const PsTrackedObject *objects;
    size_t num_objects;
} PsTrackOutput;

/* What every descriptor version starts with. */
typedef struct PsDescriptorHeader {
    uint32_t abi_version;
    uint32_t struct_size;
} PsDescriptorHeader;

typedef struct PsPluginDescriptor {
    uint32_t abi_version; /* PS_ABI_VERSION */
    uint32_t struct_size; /* sizeof(PsPluginDescriptor) */
    uint32_t kind;        /* PS_KIND_* */
    uint32_t reserved;    /* 0 */
    const char *name;     /* static, NUL-terminated UTF-8 */
    const char *version;  /* static, NUL-terminated UTF-8 */

    /* params_json: params_len bytes of UTF-8 JSON (also NUL-terminated; params_len
     * excludes the NUL). On success: *out_handle = a new handle, return PS_OK. On failure:
     * *out_handle = NULL, return a status, and leave the message for last_error(NULL)
     * on the calling thread. */
    int32_t (*create)(const char *params_json, size_t params_len, void **out_handle);
    /* Frees the handle and everything it owns; NULL is a no-op. */
    void (*destroy)(void *handle);
    /* The handle's last error, or for NULL the calling thread's last create error.
     * Never NULL (empty when none); valid until the next call on that handle (or the next
     * create on that thread). */
    const char *(*last_error)(void *handle);

    /* Detectors (NULL for trackers). */
    int32_t (*num_keypoints)(void *handle, uint32_t *out);
    int32_t (*detect)(void *handle, const PsFrame *frames, size_t num_frames,
                      PsDetectOutput *out);

    /* Trackers (NULL for detectors). */
    int32_t (*track)(void *handle, uint64_t frame_number, const PsDetectionList *detections,
                     PsTrackOutput *out);
    int32_t (*reset)(void *handle);
} PsPluginDescriptor;

typedef const PsPluginDescriptor *(*PsEntryFn)(void);

#if defined(_WIN32)
#define PS_EXPORT __declspec(dllexport)
#else
#define PS_EXPORT __attribute__((visibility("default")))
#endif

/* The one symbol a plugin exports. */
PS_EXPORT const PsPluginDescriptor *pitchside_plugin_entry(void);

/* The Rust side asserts the same numbers (abi.rs); they hold on 64-bit targets. */
#if defined(__cplusplus)
#define PS_STATIC_ASSERT(c, m) static_assert(c, m)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define PS_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
#if defined(PS_STATIC_ASSERT) && UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
PS_STATIC_ASSERT(sizeof(PsFrame) == 48, "PsFrame layout");
PS_STATIC_ASSERT(sizeof(PsDetection) == 24, "PsDetection layout");
PS_STATIC_ASSERT(sizeof(PsDetectOutput) == 48, "PsDetectOutput layout");
PS_STATIC_ASSERT(sizeof(PsDetectionList) == 32, "PsDetectionList layout");
PS_STATIC_ASSERT(sizeof(PsTrackedObject) == 32, "PsTrackedObject layout");
PS_STATIC_ASSERT(sizeof(PsTrackOutput) == 16, "PsTrackOutput layout");
PS_STATIC_ASSERT(sizeof(PsDescriptorHeader) == 8, "PsDescriptorHeader layout");
PS_STATIC_ASSERT(sizeof(PsPluginDescriptor) == 88, "PsPluginDescriptor layout");
PS_STATIC_ASSERT(offsetof(PsPluginDescriptor, name) == 16, "PsPluginDescriptor.name");
PS_STATIC_ASSERT(offsetof(PsPluginDescriptor, create) == 32, "PsPluginDescriptor.create");
PS_STATIC_ASSERT(offsetof(PsPluginDescriptor, reset) == 80, "PsPluginDescriptor.reset");
#endif

#ifdef __cplusplus
}
#endif

#endif /* PITCHSIDE_PLUGIN_H */
