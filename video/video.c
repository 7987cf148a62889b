/* video/video.c: placeholder until the video writer lands. */
#include "video/video.h"
