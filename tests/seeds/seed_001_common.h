/* What the examples of seed 001 share: the pyproject.toml they read (a
 * temporary file written with mkstemp, removed afterwards), the article's
 * EfficientFile as an aioc_iter with its own vtable, and the same reader
 * written as a generator.
 *
 *   class EfficientFile:
 *       def __init__(self, file_path: str):
 *           self.file_path = file_path
 *       def __iter__(self) -> 'EfficientFile':
 *           self.file = open(self.file_path, 'r')
 *           return self
 *       def __next__(self) -> str:
 *           line = self.file.readline()
 *           if not line:
 *               self.file.close()
 *               raise StopIteration
 *           return line.strip()
 */
#ifndef AIOC_SEED_001_COMMON_H
#define AIOC_SEED_001_COMMON_H

#include <ctype.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

#include "seed_plain.h"

/* ---- the file ------------------------------------------------------------ */

/* The file's text: some lines have surrounding blanks for strip() to
 * remove, one is empty (readline() returns "\n", which is not the end),
 * and the last one has no newline. */
static const char seed001_text[] =
    "[tool.poetry]\n"
    "name = \"async-deep-dive\"\n"
    "version = \"0.1.0\"   \n"
    "description = \"Iterators, generators and awaitables\"\n"
    "\n"
    "[tool.poetry.dependencies]\n"
    "    python = \"^3.12\"\n"
    "\taiohttp = \"^3.9\"";

/* What `for line in file: print(line)` prints. */
static const char *const seed001_expected[] = {
    "[tool.poetry]",
    "name = \"async-deep-dive\"",
    "version = \"0.1.0\"",
    "description = \"Iterators, generators and awaitables\"",
    "",
    "[tool.poetry.dependencies]",
    "python = \"^3.12\"",
    "aiohttp = \"^3.9\"",
};
#define SEED001_NLINES (sizeof seed001_expected / sizeof *seed001_expected)

/* Files opened and closed by the readers below, for the checks. */
static int seed001_opened, seed001_closed;

/* Writes the file under $TMPDIR (or /tmp) and stores its path in path[n].
 * Returns 0 or -errno. */
static inline int seed001_write_file(char *path, size_t n) {
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
  if ((size_t)snprintf(path, n, "%s/pyproject.toml.XXXXXX", dir) >= n)
    return -ENAMETOOLONG;
  int fd = mkstemp(path);
  if (fd < 0) return -errno;
  size_t len = sizeof seed001_text - 1, done = 0;
  while (done < len) {
    ssize_t w = write(fd, seed001_text + done, len - done);
    if (w < 0) {
      int err = -errno;
      close(fd);
      unlink(path);
      return err;
    }
    done += (size_t)w;
  }
  if (close(fd) < 0) {
    int err = -errno;
    unlink(path);
    return err;
  }
  return 0;
}

/* line.strip(): removes leading and trailing whitespace in place. */
static inline char *seed001_strip(char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
  return s;
}

/* ---- EfficientFile, an aioc_iter ---------------------------------------- */

typedef struct seed001_efficient_file {
  char *file_path;
  FILE *file; /* open between __iter__ and the end */
  char *line; /* readline()'s buffer: an item is valid until the next */
  size_t cap;
} seed001_efficient_file;

static inline void seed001_ef_close_file(seed001_efficient_file *self) {
  if (!self->file) return;
  fclose(self->file);
  self->file = NULL;
  seed001_closed++;
}

/* __next__: the next stripped line (borrowed: valid until the next call),
 * or AIOC_EXHAUSTED (StopIteration) at the end of the file, which it closes
 * first. A local file never makes it wait, so the timeout does not
 * matter. */
static inline int seed001_ef_next(void *self_, void **item, double timeout) {
  (void)timeout;
  seed001_efficient_file *self = self_;
  if (!self->file) return AIOC_EXHAUSTED;
  ssize_t n = getline(&self->line, &self->cap, self->file);
  if (n < 0) {
    int rc = ferror(self->file) ? -EIO : AIOC_EXHAUSTED;
    seed001_ef_close_file(self);
    return rc;
  }
  *item = seed001_strip(self->line);
  return 0;
}

/* close(): an iteration stopped early closes the file too (the article's
 * class would leave it open until garbage collection). */
static inline int seed001_ef_close(void *self) {
  seed001_ef_close_file(self);
  return 0;
}

static inline void seed001_ef_free(void *self_) {
  seed001_efficient_file *self = self_;
  free(self->line);
  free(self->file_path);
  free(self);
}

static const aioc_iter_vtable seed001_ef_vt = {
    seed001_ef_next, seed001_ef_close, seed001_ef_free};

/* iter(EfficientFile(file_path=path)): __init__ keeps the path, __iter__
 * opens the file; the aioc_iter owns the object. Returns 0, -errno of
 * open(), or -ENOMEM. */
static inline int seed001_efficient_file_iter(aioc_iter **out,
                                              const char *path) {
  *out = NULL;
  seed001_efficient_file *self = calloc(1, sizeof *self);
  if (!self || !(self->file_path = strdup(path))) {
    free(self);
    return -ENOMEM;
  }
  if (!(self->file = fopen(self->file_path, "r"))) {
    int err = -errno;
    seed001_ef_free(self);
    return err;
  }
  seed001_opened++;
  int rc = aioc_iter_new(out, &seed001_ef_vt, self);
  if (rc < 0) {
    seed001_ef_close_file(self);
    seed001_ef_free(self);
  }
  return rc;
}

/* ---- the same reader as a generator -------------------------------------
 *
 *   def lines(file_path):
 *       with open(file_path, 'r') as file:
 *           for line in file:
 *               yield line.strip()
 *
 * Yields borrowed lines (valid until the next request). Closing the
 * generator early makes the pending yield return AIOC_EGENEXIT: the file is
 * closed then too, the `with` block's exit. */
static inline int seed001_lines(void *arg, aioc_gen *g) {
  const char *file_path = arg;
  FILE *file = fopen(file_path, "r");
  if (!file) return aioc_error(-errno, "cannot open %s", file_path);
  seed001_opened++;
  char *line = NULL;
  size_t cap = 0;
  int rc = 0;
  while (rc == 0 && getline(&line, &cap, file) >= 0)
    rc = aioc_gen_yield(g, seed001_strip(line), NULL);
  if (rc == 0 && ferror(file)) rc = -EIO;
  fclose(file);
  seed001_closed++;
  free(line);
  return rc == AIOC_EGENEXIT ? 0 : rc;
}

/* ---- running ------------------------------------------------------------ */

/* Writes the file, runs fn(path), removes the file. Returns fn's code, or
 * the error of writing the file. */
static inline int seed001_with_file(int (*fn)(const char *path)) {
  char path[4096];
  int rc = seed001_write_file(path, sizeof path);
  if (rc < 0) {
    fprintf(stderr, "cannot write the temporary file: %s\n",
            aioc_strerror(rc));
    return rc;
  }
  rc = fn(path);
  unlink(path);
  return rc;
}

/* The checks every example of seed 001 makes after a run. */
static inline int seed001_check_files(void) {
  int fails = 0;
  SEED_CHECK(fails, seed001_opened > 0);
  SEED_CHECK(fails, seed001_closed == seed001_opened);
  return fails;
}

#endif /* AIOC_SEED_001_COMMON_H */
