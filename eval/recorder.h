/* eval/recorder.h: one rollout video -- agentview and the wrist camera side by
 * side, upright, 20 fps (LIBERO's control rate), H.264 through video/video.h.
 * Encoding runs on the video writer's own thread behind a frame queue, so the
 * simulation thread only composes and hands over each frame. */
#ifndef RDT_EVAL_RECORDER_H
#define RDT_EVAL_RECORDER_H

#include <stdint.h>

#define EVAL_VIDEO_FPS 20

typedef struct eval_recorder eval_recorder;

/* Start PATH for cameras of size x size (the frame is 2 size x size).
 * NULL + rdt_error() (also when the build has no FFmpeg). */
eval_recorder *eval_recorder_open(const char *path, int size);
/* Append one frame from the two camera images as rendered (bottom row first). */
int eval_recorder_frame(eval_recorder *r, const uint8_t *agentview, const uint8_t *wrist);
int64_t eval_recorder_frames(const eval_recorder *r);
/* Finish the file (written as PATH.tmp until then).  0 or -1; frees r. */
int eval_recorder_close(eval_recorder *r);
/* Drop the file; frees r. */
void eval_recorder_abort(eval_recorder *r);

#endif
