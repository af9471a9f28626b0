/* Seed 001, example next-until-StopIteration: the same EfficientFile read
 * with explicit next() calls instead of a for loop.
 *
 *   try:
 *       while True:
 *           line = next(file)  # or file.__next__()
 *           print(line)
 *   except StopIteration:
 *       pass
 *
 * next(file) is aioc_iter_next(file, ...); StopIteration is the positive
 * AIOC_EXHAUSTED, which can never be mistaken for an error (errors are
 * negative): the `except StopIteration: pass` is the test for it, and any
 * other outcome would propagate. Plain code, no event loop.
 */
#include "seed_001_common.h"
#include "seed_001_examples.h"

static int read_file(const char *path) {
  aioc_iter *file;
  int rc = seed001_efficient_file_iter(&file, path);
  if (rc < 0) return rc;
  for (;;) {
    void *line;
    rc = aioc_iter_next(file, &line, AIOC_FOREVER); /* line = next(file) */
    if (rc != 0) break;
    seed_out("%s", (const char *)line);
  }
  if (rc == AIOC_EXHAUSTED) rc = 0; /* except StopIteration: pass */
  aioc_iter_free(file);
  return rc;
}

static int run(void) { return seed001_with_file(read_file); }

const seed_example seed_001_2_next_until_stop = {
    "next-until-StopIteration",
    "the same iterator driven by hand: next() until AIOC_EXHAUSTED, the "
    "StopIteration that is never an error",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "next-until-StopIteration", seed001_expected);
  fails += seed001_check_files();
  SEED_CHECK(fails, seed001_opened == 1);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();

  /* After StopIteration, next() keeps answering AIOC_EXHAUSTED. */
  char path[4096];
  int rc = seed001_write_file(path, sizeof path);
  SEED_CHECK(fails, rc == 0);
  if (rc == 0) {
    aioc_iter *file;
    void *line;
    size_t n = 0;
    SEED_CHECK(fails, seed001_efficient_file_iter(&file, path) == 0);
    while ((rc = aioc_iter_next(file, &line, AIOC_FOREVER)) == 0)
      n++;
    SEED_CHECK(fails, rc == AIOC_EXHAUSTED && n == SEED001_NLINES);
    SEED_CHECK(fails,
               aioc_iter_next(file, &line, AIOC_FOREVER) == AIOC_EXHAUSTED);
    aioc_iter_free(file);
    SEED_CHECK(fails, seed001_closed == seed001_opened);
    unlink(path);
  }
  return seed_verdict("seed_001_2_next_until_stop", fails);
}
#endif
