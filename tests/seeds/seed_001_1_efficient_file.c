/* Seed 001, example EfficientFile: an iterator that reads a file line by
 * line without loading it into memory, consumed by a for loop.
 *
 *   file = EfficientFile(file_path='pyproject.toml')
 *
 *   for line in file:
 *       print(line)
 *
 * The class (seed_001_common.h) is an aioc_iter with its own vtable:
 * next() is __next__ (a stripped line, or AIOC_EXHAUSTED once the file is
 * read, after closing it), close() and free() release the file and the
 * object. The loop runs in plain code: a custom iterator that never waits
 * needs no event loop at all.
 */
#include "seed_001_common.h"
#include "seed_001_examples.h"

static int read_file(const char *path) {
  aioc_iter *file;
  /* file = EfficientFile(path), opened by __iter__ as the loop starts */
  int rc = seed001_efficient_file_iter(&file, path);
  if (rc < 0) return rc;
  void *line;
  while ((rc = aioc_iter_next(file, &line, AIOC_FOREVER)) == 0)
    seed_out("%s", (const char *)line);
  aioc_iter_free(file);
  return rc == AIOC_EXHAUSTED ? 0 : rc;
}

static int run(void) { return seed001_with_file(read_file); }

const seed_example seed_001_1_efficient_file = {
    "EfficientFile",
    "an aioc_iter with its own vtable reads pyproject.toml line by line "
    "(strip, close at the end); a plain for loop, no event loop",
    run};

#ifndef SEED_NO_MAIN
int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "EfficientFile", seed001_expected);
  fails += seed001_check_files();
  SEED_CHECK(fails, seed001_opened == 1);
  /* No loop was needed: none was created for the thread. */
  SEED_CHECK(fails, aioc_time() == 0);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();

  /* Stopping early (a break): freeing the iterator closes the file. */
  seed001_opened = seed001_closed = 0;
  char path[4096];
  int rc = seed001_write_file(path, sizeof path);
  SEED_CHECK(fails, rc == 0);
  if (rc == 0) {
    aioc_iter *file;
    void *line = NULL;
    SEED_CHECK(fails, seed001_efficient_file_iter(&file, path) == 0);
    SEED_CHECK(fails, aioc_iter_next(file, &line, AIOC_FOREVER) == 0);
    SEED_CHECK(fails, line && strcmp(line, seed001_expected[0]) == 0);
    SEED_CHECK(fails, seed001_closed == 0);
    aioc_iter_free(file);
    SEED_CHECK(fails, seed001_opened == 1 && seed001_closed == 1);
    unlink(path);
  }
  return seed_verdict("seed_001_1_efficient_file", fails);
}
#endif
