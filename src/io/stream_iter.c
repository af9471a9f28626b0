/* Streams as iterators (lines, chunks) through the shared aioc_iter
 * interface. An item points into the stream's read buffer and is consumed
 * at the next call, so nothing is copied, and a next() that times out or
 * is cancelled has taken nothing. */
#include "io.h"

typedef struct siter {
  aioc_stream *s;
  size_t max;     /* lines: the limit; chunks: the chunk size */
  size_t pending; /* bytes of the last item, consumed at the next call */
  bool lines;
  aioc_bytes item;
} siter;

static int siter_next(void *self, void **item, double timeout) {
  siter *it = self;
  if (it->pending) {
    aioc__stream_consume(it->s, it->pending);
    it->pending = 0;
  }
  const char *p;
  size_t len;
  int rc = it->lines ? aioc__stream_line(it->s, it->max, timeout, &p, &len)
                     : aioc__stream_chunk(it->s, it->max, timeout, &p, &len);
  if (rc < 0) return rc;
  if (!len) return AIOC_EXHAUSTED;
  it->pending = len;
  it->item = (aioc_bytes){.data = p, .len = len};
  *item = &it->item;
  return 0;
}

static int siter_close(void *self) {
  siter *it = self;
  int rc = aioc_stream_close(it->s);
  return rc == AIOC_ECLOSED ? 0 : rc;
}

static void siter_free(void *self) {
  siter *it = self;
  aioc_stream_free(it->s);
  aioc__free(it);
}

static const aioc_iter_vtable siter_vt = {siter_next, siter_close, siter_free};

static int make(aioc_iter **out, aioc_stream *s, size_t max, bool lines) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!s) return -EINVAL;
  siter *it = aioc__calloc(1, sizeof *it);
  if (!it) return -ENOMEM;
  it->s = s;
  it->max = max;
  it->lines = lines;
  int rc = aioc_iter_new(out, &siter_vt, it);
  if (rc < 0) {
    aioc__free(it);
    return rc;
  }
  aioc__stream_set_iter_owned(s);
  return 0;
}

int aioc_stream_lines_iter(aioc_iter **out, aioc_stream *s) {
  return make(out, s, s ? aioc__stream_limit(s) : 0, true);
}

int aioc_stream_chunks_iter(aioc_iter **out, aioc_stream *s, size_t max) {
  return make(out, s, max ? max : 64 * 1024, false);
}
