/* Minimal unit-test support: each CHECK is one counted assertion; the runner adds up the totals. */
#ifndef MAILVAULT_UNIT_H
#define MAILVAULT_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;

/* Counts one assertion; prints the failing expression and place. */
#define CHECK(expr) do { \
	if (expr) unit_passed++; \
	else { unit_failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #expr); } \
} while (0)

/* Compares two NUL-terminated strings (either may be NULL). */
#define CHECK_STR(a, b) do { \
	const char *unit_a_ = (a), *unit_b_ = (b); \
	if (unit_a_ && unit_b_ && strcmp(unit_a_, unit_b_) == 0) unit_passed++; \
	else { unit_failed++; fprintf(stderr, "FAIL %s:%d: %s == %s (\"%s\" vs \"%s\")\n", __FILE__, __LINE__, \
		#a, #b, unit_a_ ? unit_a_ : "(null)", unit_b_ ? unit_b_ : "(null)"); } \
} while (0)

/* Prints the closing line the test runner reads and returns the exit status. */
static inline int unit_finish(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_passed, unit_failed);
	return unit_failed == 0 ? 0 : 1;
}

#endif
