/* Seed 001, example file-lines-generator: "The inclusion of yield within
 * generator functions eliminates the need for manual implementation of the
 * iterator protocol." EfficientFile written as a generator:
 *
 *   def lines(file_path):
 *       with open(file_path, 'r') as file:
 *           for line in file:
 *               yield line.strip()
 *
 *   gen = lines('pyproject.toml')
 *   for line in gen:
 *       print(line)
 *
 * The body (seed001_lines in seed_001_common.h) keeps its locals (the
 * FILE, the line buffer) across yields on its own stack. The consumer is
 * plain synchronous code: main() calls aioc_gen_next() without creating a
 * loop; the library runs the thread's loop (made on first use) underneath
 * until the next line is there. The loop is closed at the end.
 */
#include "seed_001_common.h"
#include "seed_001_examples.h"

static int read_file(const char *path) {
  aioc_gen *gen;
  int rc = aioc_gen_new(&gen, seed001_lines, (void *)path, NULL);
  if (rc < 0) return rc;
  void *line;
  while ((rc = aioc_gen_next(gen, &line, AIOC_FOREVER)) == 0)
    seed_out("%s", (const char *)line);
  aioc_gen_free(gen);
  return rc == AIOC_EXHAUSTED ? 0 : rc;
}

static int run(void) {
  int rc = seed001_with_file(read_file);
  int crc = seed_plain_close_implicit();
  return rc < 0 ? rc : crc;
}

const seed_example seed_001_3_file_generator = {
    "file-lines-generator",
    "the same reader as a generator, consumed with aioc_gen_next() from "
    "plain code: the thread's loop runs underneath",
    run};

#ifndef SEED_NO_MAIN
/* A consumer that stops after two lines: freeing the generator closes it,
 * the pending yield returns AIOC_EGENEXIT and the body closes the file. */
static int read_two(const char *path) {
  aioc_gen *gen;
  int rc = aioc_gen_new(&gen, seed001_lines, (void *)path, NULL);
  if (rc < 0) return rc;
  void *line;
  for (int i = 0; i < 2 && rc == 0; i++)
    rc = aioc_gen_next(gen, &line, AIOC_FOREVER);
  int open_before = seed001_opened - seed001_closed;
  aioc_gen_free(gen);
  if (rc == 0 && open_before != 1) rc = -EPROTO;
  return rc;
}

int main(int argc, char **argv) {
  if (!seed_is_check(argc, argv)) return run() == 0 ? 0 : 1;
  int fails = 0;
  seed_capture_begin();
  SEED_CHECK(fails, run() == 0);
  SEED_EXPECT(fails, "file-lines-generator", seed001_expected);
  fails += seed001_check_files();
  SEED_CHECK(fails, seed001_opened == 1);
  SEED_CHECK(fails, seed_reports() == 0);
  seed_capture_end();

  seed001_opened = seed001_closed = 0;
  SEED_CHECK(fails, seed001_with_file(read_two) == 0);
  SEED_CHECK(fails, seed001_opened == 1 && seed001_closed == 1);
  SEED_CHECK(fails, seed_plain_close_implicit() == 0);
  return seed_verdict("seed_001_3_file_generator", fails);
}
#endif
