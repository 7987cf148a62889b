/* mp4 writer: write frames, check the stream with ffprobe (when on PATH) and
 * by decoding the first frame back with libavcodec; temporary-file handling,
 * odd sizes, the encoder thread, and named errors. */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
#include <stdint.h>
#include "core/error.h"
#include "core/fsutil.h"
#include "video/video.h"
#include "test.h"

enum { W = 64, H = 48, N = 25, FPS = 20 };

static char dir[4096];

/* Frame i: four flat quadrants (red, green, blue, grey) with a white bar
 * moving one column per frame along the top row band. */
static void make_frame(uint8_t *rgb, int w, int h, int i) {
  static const uint8_t q[4][3] = {{200, 30, 30}, {30, 180, 40}, {40, 50, 210}, {128, 128, 128}};
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const uint8_t *c = q[(y >= h / 2) * 2 + (x >= w / 2)];
      uint8_t *p = rgb + ((size_t)y * w + x) * 3;
      memcpy(p, c, 3);
      if (y < 4 && x == i % w) p[0] = p[1] = p[2] = 255;
    }
}

/* ffprobe's codec_name, pix_fmt, width, height, nb_frames and r_frame_rate as
 * one line of text; "" when ffprobe is not on PATH. */
static const char *probe(const char *path, char *out, size_t n) {
  char cmd[8192];
  out[0] = 0;
  if (system("command -v ffprobe > /dev/null 2>&1") != 0) return out;
  snprintf(cmd, sizeof cmd,
           "ffprobe -v error -select_streams v:0 -show_entries "
           "stream=codec_name,pix_fmt,width,height,nb_frames,r_frame_rate -of default=nw=1 '%s'", path);
  FILE *p = popen(cmd, "r");
  size_t len = 0;
  while (p && len + 1 < n && fgets(out + len, (int)(n - len), p)) len = strlen(out);
  if (p) pclose(p);
  return out;
}

/* Decode the first frame to RGB24 (w x h).  0 or -1. */
static int decode_first(const char *path, uint8_t *rgb, int *w, int *h) {
  AVFormatContext *fmt = NULL;
  if (avformat_open_input(&fmt, path, NULL, NULL) < 0) return -1;
  avformat_find_stream_info(fmt, NULL);
  int si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0), rc = -1;
  const AVCodec *codec = si >= 0 ? avcodec_find_decoder(fmt->streams[si]->codecpar->codec_id) : NULL;
  AVCodecContext *dec = codec ? avcodec_alloc_context3(codec) : NULL;
  AVPacket *pkt = av_packet_alloc();
  AVFrame *fr = av_frame_alloc();
  if (dec && avcodec_parameters_to_context(dec, fmt->streams[si]->codecpar) >= 0 &&
      avcodec_open2(dec, codec, NULL) >= 0) {
    int got = 0;
    while (!got && av_read_frame(fmt, pkt) >= 0) {
      if (pkt->stream_index == si && avcodec_send_packet(dec, pkt) >= 0)
        got = avcodec_receive_frame(dec, fr) >= 0;
      av_packet_unref(pkt);
    }
    if (!got && avcodec_send_packet(dec, NULL) >= 0) got = avcodec_receive_frame(dec, fr) >= 0;
    if (got) {
      *w = fr->width, *h = fr->height;
      struct SwsContext *s = sws_getContext(fr->width, fr->height, fr->format, fr->width, fr->height,
                                            AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
      uint8_t *dst[1] = {rgb};
      int stride[1] = {fr->width * 3};
      sws_scale(s, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, dst, stride);
      sws_freeContext(s);
      rc = 0;
    }
  }
  av_frame_free(&fr);
  av_packet_free(&pkt);
  avcodec_free_context(&dec);
  avformat_close_input(&fmt);
  return rc;
}

/* Mean absolute difference over the interior of each quadrant (away from
 * edges and the moving bar), per quadrant; returns the largest. */
static double quadrant_error(const uint8_t *a, const uint8_t *b, int w, int h) {
  double worst = 0;
  for (int qy = 0; qy < 2; qy++)
    for (int qx = 0; qx < 2; qx++) {
      double sum = 0;
      int n = 0;
      for (int y = qy * h / 2 + 6; y < (qy + 1) * h / 2 - 4; y++)
        for (int x = qx * w / 2 + 4; x < (qx + 1) * w / 2 - 4; x++)
          for (int c = 0; c < 3; c++, n++) sum += fabs((double)a[(y * w + x) * 3 + c] - b[(y * w + x) * 3 + c]);
      if (sum / n > worst) worst = sum / n;
    }
  return worst;
}

/* Write N frames with the given options and check the file. */
static void write_and_check(const char *name, int w, int h, int async) {
  char path[4300], tmp[4400], info[1024], want[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  rdt_video_opts o;
  rdt_video_opts_init(&o);
  o.async = async;
  rdt_video *v = rdt_video_open_opts(path, w, h, FPS, &o);
  CHECK_MSG(v != NULL, "%s", rdt_error());
  if (!v) return;
  uint8_t *rgb = malloc((size_t)w * h * 3), *first = malloc((size_t)w * h * 3);
  make_frame(first, w, h, 0);
  for (int i = 0; i < N; i++) {
    make_frame(rgb, w, h, i);
    CHECK(rdt_video_frame(v, rgb) == 0);
    if (i == 0) CHECK(rdt_is_file(tmp) && !rdt_is_file(path));   /* written under PATH.tmp */
  }
  CHECK(rdt_video_frames(v) == N);
  CHECK_MSG(rdt_video_close(v) == 0, "%s", rdt_error());
  CHECK(rdt_is_file(path) && !rdt_is_file(tmp));
  int ew = (w + 1) & ~1, eh = (h + 1) & ~1;
  if (*probe(path, info, sizeof info)) {
    snprintf(want, sizeof want, "codec_name=h264\nwidth=%d\nheight=%d\npix_fmt=yuv420p\nr_frame_rate=%d/1\nnb_frames=%d\n",
             ew, eh, FPS, N);
    CHECK_MSG(!strcmp(info, want), "ffprobe says:\n%s", info);
  } else {
    fprintf(stderr, "note: ffprobe not on PATH; checked by decoding only\n");
  }
  uint8_t *dec = malloc((size_t)ew * eh * 3);
  int dw = 0, dh = 0;
  CHECK(decode_first(path, dec, &dw, &dh) == 0);
  CHECK(dw == ew && dh == eh);
  if (dw == ew && dh == eh) {
    uint8_t *crop = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++) memcpy(crop + (size_t)y * w * 3, dec + (size_t)y * ew * 3, (size_t)w * 3);
    double err = quadrant_error(crop, first, w, h);
    CHECK_MSG(err < 6, "first frame colours differ by %.2f on average", err);
    free(crop);
  }
  free(dec);
  free(rgb);
  free(first);
}

static void t_sync(void) { write_and_check("sync.mp4", W, H, 0); }
static void t_async(void) { write_and_check("async.mp4", W, H, 1); }
static void t_odd_size(void) { write_and_check("odd.mp4", 33, 17, 0); }

/* Abort leaves nothing; errors name the path. */
static void t_abort_and_errors(void) {
  char path[4300], tmp[4400];
  uint8_t rgb[W * H * 3];
  snprintf(path, sizeof path, "%s/aborted.mp4", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  rdt_video *v = rdt_video_open(path, W, H, FPS);
  CHECK(v != NULL);
  make_frame(rgb, W, H, 0);
  CHECK(rdt_video_frame(v, rgb) == 0);
  rdt_video_abort(v);
  CHECK(!rdt_is_file(path) && !rdt_is_file(tmp));
  snprintf(path, sizeof path, "%s/no/such/folder/x.mp4", dir);
  CHECK(rdt_video_open(path, W, H, FPS) == NULL);
  CHECK_MSG(strstr(rdt_error(), path) != NULL, "%s", rdt_error());
  CHECK(rdt_video_open(path, 0, H, FPS) == NULL);
  CHECK(strstr(rdt_error(), "bad video size") != NULL);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s", test_tmpdir("video"));
  RUN(t_sync);
  RUN(t_async);
  RUN(t_odd_size);
  RUN(t_abort_and_errors);
  rdt_rmtree(dir);
  return test_done();
}
