/* eval/recorder.c: rollout videos (see recorder.h). */
#include "eval/recorder.h"

#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#if RDT_EVAL_VIDEO
#include "video/video.h"
#endif

struct eval_recorder {
  int size;
  uint8_t *frame;   /* 2 size x size x 3, top row first */
#if RDT_EVAL_VIDEO
  rdt_video *video;
#endif
};

#if RDT_EVAL_VIDEO
eval_recorder *eval_recorder_open(const char *path, int size) {
  rdt_video_opts o;
  rdt_video_opts_init(&o);
  o.async = 1;
  rdt_video *v = rdt_video_open_opts(path, 2 * size, size, EVAL_VIDEO_FPS, &o);
  if (!v) return NULL;
  eval_recorder *r = rdt_calloc(1, sizeof *r);
  r->size = size;
  r->frame = rdt_malloc((size_t)2 * size * size * 3);
  r->video = v;
  return r;
}

/* Compose the two cameras side by side, turning rows upright. */
int eval_recorder_frame(eval_recorder *r, const uint8_t *agentview, const uint8_t *wrist) {
  size_t row = (size_t)r->size * 3;
  for (int y = 0; y < r->size; y++) {
    const size_t src = (size_t)(r->size - 1 - y) * row;
    memcpy(r->frame + (size_t)y * 2 * row, agentview + src, row);
    memcpy(r->frame + (size_t)y * 2 * row + row, wrist + src, row);
  }
  return rdt_video_frame(r->video, r->frame);
}

int64_t eval_recorder_frames(const eval_recorder *r) { return rdt_video_frames(r->video); }

int eval_recorder_close(eval_recorder *r) {
  int rc = rdt_video_close(r->video);
  free(r->frame);
  free(r);
  return rc;
}

void eval_recorder_abort(eval_recorder *r) {
  rdt_video_abort(r->video);
  free(r->frame);
  free(r);
}
#else
eval_recorder *eval_recorder_open(const char *path, int size) {
  (void)size;
  rdt_fail("%s: this build has no FFmpeg, so it cannot record videos (install libavcodec-dev, "
           "libavformat-dev, libswscale-dev and rebuild)", path);
  return NULL;
}
int eval_recorder_frame(eval_recorder *r, const uint8_t *agentview, const uint8_t *wrist) {
  (void)r, (void)agentview, (void)wrist;
  return -1;
}
int64_t eval_recorder_frames(const eval_recorder *r) { (void)r; return 0; }
int eval_recorder_close(eval_recorder *r) { (void)r; return -1; }
void eval_recorder_abort(eval_recorder *r) { (void)r; }
#endif
