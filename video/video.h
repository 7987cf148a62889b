/* video/video.h: mp4 (H.264, yuv420p) writer on libavcodec/libavformat.
 *
 * Frames are RGB24, top row first, all of one size given at open.  The file is
 * written to PATH.tmp and renamed on close, so a killed run leaves no broken
 * mp4 under the final name.
 */
#ifndef RDT_VIDEO_H
#define RDT_VIDEO_H

#include <stdint.h>

typedef struct rdt_video rdt_video;

/* Open a writer; width and height are rounded up to even.  NULL + rdt_error(). */
rdt_video *rdt_video_open(const char *path, int width, int height, int fps);
/* Append one RGB24 frame (width*height*3 bytes, top row first).  0 or -1. */
int rdt_video_frame(rdt_video *v, const uint8_t *rgb);
/* Flush, finish the file and rename it into place.  0 or -1; frees v. */
int rdt_video_close(rdt_video *v);
/* Abandon: remove the temporary file; frees v. */
void rdt_video_abort(rdt_video *v);

/* Encoder settings (rdt_video_open uses the defaults). */
typedef struct {
  int crf;              /* x264 constant rate factor, 0..51 (default 20) */
  const char *preset;   /* x264 preset (default "veryfast") */
  int threads;          /* encoder threads (default 1: many writers run at once) */
  int async;            /* 1: encode on a thread of the writer's own; rdt_video_frame
                           copies the frame into a bounded queue and returns */
} rdt_video_opts;

void rdt_video_opts_init(rdt_video_opts *o);
/* rdt_video_open with explicit settings.  An odd width or height is padded by
 * repeating the last column / row.  NULL + rdt_error(). */
rdt_video *rdt_video_open_opts(const char *path, int width, int height, int fps,
                               const rdt_video_opts *o);
/* Frames accepted so far. */
int64_t rdt_video_frames(const rdt_video *v);

#endif
