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

#endif
