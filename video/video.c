/* video/video.c: H.264 mp4 writer (libx264 through libavcodec, yuv420p via
 * libswscale, mp4 via libavformat), optionally encoding on its own thread. */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "video/video.h"

#define QUEUE_SLOTS 8

struct rdt_video {
  char *path, *tmp;
  int w, h;                 /* frames as given */
  int W, H;                 /* encoded (even) size */
  int64_t frames;           /* accepted by rdt_video_frame */
  int64_t pts;              /* encoded */
  AVFormatContext *fmt;
  AVCodecContext *enc;
  AVStream *st;
  struct SwsContext *sws;
  AVFrame *frame;
  AVPacket *pkt;
  uint8_t *padded;          /* W x H x 3 (+ padding: swscale reads past the end) */
  /* asynchronous mode: a ring of padded frames filled by rdt_video_frame */
  int async;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t changed;
  uint8_t *slots[QUEUE_SLOTS];
  int head, count, closing, failed;
  char error[512];
};

/* ================================================================ helpers */

/* "PATH: what: libav message"; returns -1. */
static int av_fail(const rdt_video *v, const char *what, int err) {
  char msg[AV_ERROR_MAX_STRING_SIZE];
  av_strerror(err, msg, sizeof msg);
  return rdt_fail("%s: %s: %s", v->path, what, msg);
}

static void quiet_libav(void) { av_log_set_level(AV_LOG_ERROR); }

/* Send one frame (NULL flushes) and write every packet the encoder returns. */
static int encode(rdt_video *v, AVFrame *f) {
  int r = avcodec_send_frame(v->enc, f);
  if (r < 0) return av_fail(v, "encoding a frame", r);
  while ((r = avcodec_receive_packet(v->enc, v->pkt)) >= 0) {
    av_packet_rescale_ts(v->pkt, v->enc->time_base, v->st->time_base);
    v->pkt->stream_index = v->st->index;
    if ((r = av_interleaved_write_frame(v->fmt, v->pkt)) < 0) return av_fail(v, "writing a packet", r);
  }
  return r == AVERROR(EAGAIN) || r == AVERROR_EOF ? 0 : av_fail(v, "encoding a frame", r);
}

/* Copy rgb (w x h) into dst (W x H), repeating the last column and row if odd. */
static void pad_frame(const rdt_video *v, uint8_t *dst, const uint8_t *rgb) {
  for (int y = 0; y < v->H; y++) {
    const uint8_t *row = rgb + (size_t)(y < v->h ? y : v->h - 1) * v->w * 3;
    uint8_t *out = dst + (size_t)y * v->W * 3;
    memcpy(out, row, (size_t)v->w * 3);
    if (v->W > v->w) memcpy(out + (size_t)v->w * 3, row + (size_t)(v->w - 1) * 3, 3);
  }
}

/* Convert one W x H RGB frame to yuv420p and encode it. */
static int encode_rgb(rdt_video *v, const uint8_t *rgb) {
  const uint8_t *src[1] = {rgb};
  const int stride[1] = {v->W * 3};
  int r = av_frame_make_writable(v->frame);
  if (r < 0) return av_fail(v, "frame buffer", r);
  sws_scale(v->sws, src, stride, 0, v->H, v->frame->data, v->frame->linesize);
  v->frame->pts = v->pts++;
  return encode(v, v->frame);
}

/* ================================================================ encoder thread */

/* Drain the queue until closed; after a failure keep draining so writers never block. */
static void *encoder_main(void *arg) {
  rdt_video *v = arg;
  pthread_mutex_lock(&v->mu);
  for (;;) {
    while (!v->count && !v->closing) pthread_cond_wait(&v->changed, &v->mu);
    if (!v->count) break;
    uint8_t *slot = v->slots[v->head];
    int failed = v->failed;
    pthread_mutex_unlock(&v->mu);
    int rc = failed ? 0 : encode_rgb(v, slot);
    pthread_mutex_lock(&v->mu);
    if (rc < 0) {
      v->failed = 1;
      snprintf(v->error, sizeof v->error, "%s", rdt_error());
    }
    v->head = (v->head + 1) % QUEUE_SLOTS;
    v->count--;
    pthread_cond_broadcast(&v->changed);
  }
  pthread_mutex_unlock(&v->mu);
  return NULL;
}

/* Stop the encoder thread after it has drained the queue; -1 if it failed. */
static int stop_thread(rdt_video *v) {
  pthread_mutex_lock(&v->mu);
  v->closing = 1;
  pthread_cond_broadcast(&v->changed);
  pthread_mutex_unlock(&v->mu);
  pthread_join(v->thread, NULL);
  v->async = 0;
  return v->failed ? rdt_fail("%s", v->error) : 0;
}

/* ================================================================ open, frames, close */

/* Release everything; remove the temporary file when asked. */
static void destroy(rdt_video *v, int remove_tmp) {
  if (v->async) stop_thread(v);
  if (v->fmt && v->fmt->pb) avio_closep(&v->fmt->pb);
  if (remove_tmp && v->tmp) remove(v->tmp);
  avformat_free_context(v->fmt);
  avcodec_free_context(&v->enc);
  sws_freeContext(v->sws);
  av_frame_free(&v->frame);
  av_packet_free(&v->pkt);
  for (int i = 0; i < QUEUE_SLOTS; i++) free(v->slots[i]);
  free(v->padded);
  free(v->path);
  free(v->tmp);
  free(v);
}

void rdt_video_opts_init(rdt_video_opts *o) {
  o->crf = 20;
  o->preset = "veryfast";
  o->threads = 1;
  o->async = 0;
}

/* Codec context for H.264 yuv420p at fps. */
static int open_encoder(rdt_video *v, int fps, const rdt_video_opts *o) {
  const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
  if (!codec) codec = avcodec_find_encoder(AV_CODEC_ID_H264);
  if (!codec) return rdt_fail("%s: this FFmpeg has no H.264 encoder (install one with libx264)", v->path);
  v->enc = avcodec_alloc_context3(codec);
  v->enc->width = v->W;
  v->enc->height = v->H;
  v->enc->pix_fmt = AV_PIX_FMT_YUV420P;
  v->enc->time_base = (AVRational){1, fps};
  v->enc->framerate = (AVRational){fps, 1};
  v->enc->gop_size = 2 * fps;
  v->enc->thread_count = o->threads > 0 ? o->threads : 1;
  v->enc->color_range = AVCOL_RANGE_MPEG;
  v->enc->colorspace = AVCOL_SPC_SMPTE170M;
  if (v->fmt->oformat->flags & AVFMT_GLOBALHEADER) v->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (!strcmp(codec->name, "libx264")) {
    char crf[16];
    snprintf(crf, sizeof crf, "%d", o->crf);
    av_opt_set(v->enc->priv_data, "preset", o->preset ? o->preset : "veryfast", 0);
    av_opt_set(v->enc->priv_data, "crf", crf, 0);
  }
  int r = avcodec_open2(v->enc, codec, NULL);
  if (r < 0) return av_fail(v, "opening the H.264 encoder", r);
  v->st = avformat_new_stream(v->fmt, NULL);
  v->st->time_base = v->enc->time_base;
  v->st->avg_frame_rate = v->enc->framerate;
  if ((r = avcodec_parameters_from_context(v->st->codecpar, v->enc)) < 0)
    return av_fail(v, "stream parameters", r);
  return 0;
}

/* Frame, packet, scaler and (async) the queue and its thread. */
static int open_buffers(rdt_video *v, const rdt_video_opts *o) {
  v->frame = av_frame_alloc();
  v->pkt = av_packet_alloc();
  v->frame->format = AV_PIX_FMT_YUV420P;
  v->frame->width = v->W;
  v->frame->height = v->H;
  int r = av_frame_get_buffer(v->frame, 0);
  if (r < 0) return av_fail(v, "frame buffer", r);
  v->sws = sws_getContext(v->W, v->H, AV_PIX_FMT_RGB24, v->W, v->H, AV_PIX_FMT_YUV420P,
                          SWS_BILINEAR, NULL, NULL, NULL);
  if (!v->sws) return rdt_fail("%s: no RGB24 -> yuv420p converter", v->path);
  size_t bytes = (size_t)v->W * v->H * 3 + AV_INPUT_BUFFER_PADDING_SIZE;
  if (!o->async) {
    v->padded = rdt_calloc(bytes, 1);
    return 0;
  }
  for (int i = 0; i < QUEUE_SLOTS; i++) v->slots[i] = rdt_calloc(bytes, 1);
  pthread_mutex_init(&v->mu, NULL);
  pthread_cond_init(&v->changed, NULL);
  if (pthread_create(&v->thread, NULL, encoder_main, v) != 0)
    return rdt_fail("%s: cannot start the encoder thread", v->path);
  v->async = 1;
  return 0;
}

rdt_video *rdt_video_open_opts(const char *path, int width, int height, int fps,
                               const rdt_video_opts *o) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, quiet_libav);
  if (width <= 0 || height <= 0 || fps <= 0) {
    rdt_fail("%s: bad video size %dx%d at %d fps", path, width, height, fps);
    return NULL;
  }
  rdt_video *v = rdt_calloc(1, sizeof *v);
  size_t n = strlen(path);
  v->path = rdt_strdup(path);
  v->tmp = rdt_malloc(n + 5);
  memcpy(v->tmp, path, n);
  memcpy(v->tmp + n, ".tmp", 5);
  v->w = width, v->h = height;
  v->W = (width + 1) & ~1, v->H = (height + 1) & ~1;
  int r = avformat_alloc_output_context2(&v->fmt, NULL, "mp4", v->tmp);
  if (r < 0 || !v->fmt) {
    av_fail(v, "mp4 muxer", r);
    destroy(v, 0);
    return NULL;
  }
  if (open_encoder(v, fps, o) < 0 || open_buffers(v, o) < 0) {
    destroy(v, 0);
    return NULL;
  }
  if ((r = avio_open(&v->fmt->pb, v->tmp, AVIO_FLAG_WRITE)) < 0) {
    rdt_fail("%s: cannot create %s: %s", path, v->tmp, av_err2str(r));
    destroy(v, 0);
    return NULL;
  }
  if ((r = avformat_write_header(v->fmt, NULL)) < 0) {
    av_fail(v, "writing the mp4 header", r);
    destroy(v, 1);
    return NULL;
  }
  return v;
}

rdt_video *rdt_video_open(const char *path, int width, int height, int fps) {
  rdt_video_opts o;
  rdt_video_opts_init(&o);
  return rdt_video_open_opts(path, width, height, fps, &o);
}

int rdt_video_frame(rdt_video *v, const uint8_t *rgb) {
  if (!v->async) {
    pad_frame(v, v->padded, rgb);
    if (encode_rgb(v, v->padded) < 0) return -1;
    v->frames++;
    return 0;
  }
  pthread_mutex_lock(&v->mu);
  while (v->count == QUEUE_SLOTS && !v->failed) pthread_cond_wait(&v->changed, &v->mu);
  int failed = v->failed;
  pthread_mutex_unlock(&v->mu);
  if (failed) return rdt_fail("%s", v->error);
  pad_frame(v, v->slots[(v->head + v->count) % QUEUE_SLOTS], rgb);   /* only this thread adds */
  pthread_mutex_lock(&v->mu);
  v->count++;
  pthread_cond_broadcast(&v->changed);
  pthread_mutex_unlock(&v->mu);
  v->frames++;
  return 0;
}

int64_t rdt_video_frames(const rdt_video *v) { return v->frames; }

int rdt_video_close(rdt_video *v) {
  int rc = v->async ? stop_thread(v) : 0;
  if (!rc) rc = encode(v, NULL);
  int r = rc ? 0 : av_write_trailer(v->fmt);
  if (!rc && r < 0) rc = av_fail(v, "finishing the mp4", r);
  if (!rc && (r = avio_closep(&v->fmt->pb)) < 0) rc = av_fail(v, "closing the file", r);
  if (!rc && rename(v->tmp, v->path) != 0) rc = rdt_fail("%s: cannot rename %s into place", v->path, v->tmp);
  destroy(v, rc != 0);
  return rc;
}

void rdt_video_abort(rdt_video *v) {
  if (v) destroy(v, 1);
}
