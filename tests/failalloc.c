/* An LD_PRELOAD allocator that fails on purpose: with PN_FAIL_ALLOC_AT=N
 * the N-th call to malloc, calloc, realloc or posix_memalign (counting
 * from the first after load) returns NULL, and every later one succeeds
 * again; with PN_FAIL_ALLOC_COUNT=1 nothing fails and the number of calls
 * is printed to stderr at exit, so a test can sweep N over a whole run.
 * The real allocator is glibc's, reached through its __libc_ names so the
 * shim needs no dlsym (which itself allocates).
 *
 * Calls made by libevent itself are neither counted nor failed: libevent
 * 2.1.12 crashes in its own out-of-memory paths (evhttp_request_new frees
 * the header lists it failed to allocate), which no caller can prevent.
 * Its allocations through libc (strdup) still count. */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <stdint.h>
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
static uintptr_t event_lo[8], event_hi[8]; /* libevent's code */
static int nevent;

static int find_libevent(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	if (!strstr(info->dlpi_name, "libevent"))
		return 0;
	for (int i = 0; i < info->dlpi_phnum && nevent < 8; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			event_lo[nevent] = info->dlpi_addr + ph->p_vaddr;
			event_hi[nevent++] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
		}
	}
	return 0;
}

/* Every library is mapped before the first constructor runs. */
static void find_code(void) __attribute__((constructor));
static void find_code(void)
{
	dl_iterate_phdr(find_libevent, NULL);
}

static int from_libevent(const void *caller)
{
	uintptr_t a = (uintptr_t)caller;
	for (int i = 0; i < nevent; i++)
		if (a >= event_lo[i] && a < event_hi[i])
			return 1;
	return 0;
}

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

static int should_fail(const void *caller)
{
	setup();
	if (from_libevent(caller))
		return 0;
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
	if (should_fail(__builtin_return_address(0))) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	if (should_fail(__builtin_return_address(0))) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	if (should_fail(__builtin_return_address(0))) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (should_fail(__builtin_return_address(0)))
		return ENOMEM;
	void *p = __libc_memalign(align, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}
