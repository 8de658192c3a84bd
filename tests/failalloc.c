/* An LD_PRELOAD allocator that fails on purpose: with PN_FAIL_ALLOC_AT=N
 * the N-th call to malloc, calloc, realloc or posix_memalign (counting
 * from the first after load) returns NULL, and every later one succeeds
 * again; with PN_FAIL_ALLOC_COUNT=1 nothing fails and the number of calls
 * is printed to stderr at exit, so a test can sweep N over a whole run.
 * The real allocator is glibc's, reached through its __libc_ names so the
 * shim needs no dlsym (which itself allocates). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static unsigned long calls, fail_at;
static int counting, ready;

static void setup(void)
{
	if (ready)
		return;
	ready = 1;
	const char *at = getenv("PN_FAIL_ALLOC_AT");
	const char *count = getenv("PN_FAIL_ALLOC_COUNT");
	fail_at = at ? strtoul(at, NULL, 10) : 0;
	counting = count && *count == '1';
}

static int should_fail(void)
{
	setup();
	calls++;
	return fail_at && calls == fail_at;
}

static void report(void) __attribute__((destructor));
static void report(void)
{
	if (counting) {
		char buf[64];
		int n = snprintf(buf, sizeof buf, "failalloc: %lu calls\n", calls);
		if (write(2, buf, (size_t)n) < 0)
			return;
	}
}

void *malloc(size_t n)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (should_fail())
		return ENOMEM;
	void *p = __libc_memalign(align, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}
