/* The schema migrations embedded in the mailvault binary (generated from sql/ by sql/embed.sh). */
#ifndef MAILVAULT_MIGRATIONS_H
#define MAILVAULT_MIGRATIONS_H

struct migration {
	int version;
	const char *name;
	const char *sql;
};

/* Ordered by version; the last entry has name NULL. */
extern const struct migration migrations[];

#endif
