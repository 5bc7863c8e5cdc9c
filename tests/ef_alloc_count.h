/* Allocation counter for a test program: its malloc family forwards to
 * glibc's and counts calls while `counting` is set, so a test can show that
 * a hot path allocates nothing. Include it in exactly one file of a test
 * executable (it defines malloc, calloc, realloc and free). Under ASan,
 * which owns malloc, or off glibc, HAVE_ALLOC_COUNT is 0 and nothing is
 * counted. */
#ifndef EF_ALLOC_COUNT_H
#define EF_ALLOC_COUNT_H

#include <stddef.h>

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#define HAVE_ALLOC_COUNT 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
static volatile int counting;
static volatile long n_alloc;
void *malloc(size_t n) {
  if (counting) n_alloc++;
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t size) {
  if (counting) n_alloc++;
  return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n) {
  if (counting) n_alloc++;
  return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }
#else
#define HAVE_ALLOC_COUNT 0
static int counting;
static long n_alloc;
#endif

#endif
