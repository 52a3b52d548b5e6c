/* mailvault.conf: a small INI file; unknown sections or keys and bad values are errors with file:line. */
#include "config.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum config_kind { CK_STRING, CK_UINT, CK_SIZE, CK_LOGLEVEL, CK_LOGTARGET };

/* One known key: where it lives in struct config and how to read it. */
struct config_key {
	const char *section, *name;
	enum config_kind kind;
	size_t offset;
	uint64_t min, max;
};

#define K(sec, key, kind, field, mn, mx) { sec, key, kind, offsetof(struct config, field), mn, mx }
static const struct config_key config_keys[] = {
	K("database", "conninfo", CK_STRING, conninfo, 0, 0),
	K("database", "ingest_conninfo", CK_STRING, ingest_conninfo, 0, 0),
	K("database", "indexer_conninfo", CK_STRING, indexer_conninfo, 0, 0),
	K("database", "retention_conninfo", CK_STRING, retention_conninfo, 0, 0),
	K("daemon", "workers", CK_UINT, workers, 1, 256),
	K("daemon", "batch_messages", CK_UINT, batch_messages, 1, 100000),
	K("daemon", "batch_bytes", CK_SIZE, batch_bytes, 64 * 1024, 1024ULL * 1024 * 1024),
	K("daemon", "max_message_bytes", CK_SIZE, max_message_bytes, 1024, 2ULL * 1024 * 1024 * 1024),
	K("daemon", "poll_interval", CK_UINT, poll_interval, 1, 7 * 86400),
	K("daemon", "timeout", CK_UINT, timeout, 1, 3600),
	K("daemon", "lease_seconds", CK_UINT, lease_seconds, 10, 86400),
	K("daemon", "log_level", CK_LOGLEVEL, log_level, 0, 0),
	K("daemon", "log", CK_LOGTARGET, log_syslog, 0, 0),
	K("tls", "ca_file", CK_STRING, ca_file, 0, 0),
	K("indexer", "index_path", CK_STRING, index_path, 0, 0),
	K("indexer", "shards", CK_UINT, index_shards, 1, 64),
	K("search", "session_idle", CK_UINT, session_idle, 0, 86400),
};

/* Trims white space at both ends, in place. */
static char *config_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Stores one value into its field after checking it. */
static int config_set(struct config *cfg, const struct config_key *k, const char *value, const char **why_r)
{
	char *base = (char *)cfg + k->offset;
	uint64_t v;
	switch (k->kind) {
	case CK_STRING:
		free(*(char **)base);
		*(char **)base = xstrdup(value);
		return 0;
	case CK_UINT:
		if (util_parse_uint(value, k->min, k->max, &v) < 0) {
			*why_r = "expects a whole number in range";
			return -1;
		}
		*(unsigned *)base = (unsigned)v;
		return 0;
	case CK_SIZE:
		if (util_parse_size(value, &v) < 0 || v < k->min || v > k->max) {
			*why_r = "expects a size in range such as 512K, 16M or 1G";
			return -1;
		}
		*(uint64_t *)base = v;
		return 0;
	case CK_LOGLEVEL:
		if (log_parse_level(value, (enum log_level *)base) < 0) {
			*why_r = "expects debug, info, warn or error";
			return -1;
		}
		return 0;
	case CK_LOGTARGET:
		if (strcmp(value, "stderr") != 0 && strcmp(value, "syslog") != 0) {
			*why_r = "expects stderr or syslog";
			return -1;
		}
		*(bool *)base = strcmp(value, "syslog") == 0;
		return 0;
	}
	return -1;
}

/* Loads and checks the whole file. */
struct config *config_load(const char *path, char **error_r)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	cfg->path = xstrdup(path);
	cfg->workers = 4;
	cfg->batch_messages = 500;
	cfg->batch_bytes = 8ULL * 1024 * 1024;
	cfg->max_message_bytes = 64ULL * 1024 * 1024;
	cfg->poll_interval = 300;
	cfg->timeout = 120;
	cfg->lease_seconds = 600;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->session_idle = 300;

	char line[8192], section[64] = "";
	unsigned lineno = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			*error_r = xasprintf("%s:%u: line too long", path, lineno);
			goto fail;
		}
		char *s = config_trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			if (end == NULL || end[1] != '\0' || end - s - 1 >= (long)sizeof(section)) {
				*error_r = xasprintf("%s:%u: malformed section header", path, lineno);
				goto fail;
			}
			*end = '\0';
			snprintf(section, sizeof(section), "%s", config_trim(s + 1));
			bool known = false;
			for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
				known |= strcmp(config_keys[i].section, section) == 0;
			if (!known) {
				*error_r = xasprintf("%s:%u: unknown section [%s]", path, lineno, section);
				goto fail;
			}
			continue;
		}
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			*error_r = xasprintf("%s:%u: expected 'key = value'", path, lineno);
			goto fail;
		}
		*eq = '\0';
		char *key = config_trim(s), *value = config_trim(eq + 1);
		if (section[0] == '\0') {
			*error_r = xasprintf("%s:%u: key '%s' outside any section", path, lineno, key);
			goto fail;
		}
		const struct config_key *k = NULL;
		for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
			if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, key) == 0)
				k = &config_keys[i];
		if (k == NULL) {
			*error_r = xasprintf("%s:%u: unknown key '%s' in [%s]", path, lineno, key, section);
			goto fail;
		}
		const char *why = NULL;
		if (config_set(cfg, k, value, &why) < 0) {
			/* the value is not echoed: it could be a conninfo with a password */
			*error_r = xasprintf("%s:%u: bad value for '%s': %s", path, lineno, key, why);
			goto fail;
		}
	}
	fclose(f);
	if (cfg->conninfo == NULL) {
		*error_r = xasprintf("%s: [database] conninfo is required", path);
		config_free(&cfg);
		return NULL;
	}
	return cfg;
fail:
	fclose(f);
	config_free(&cfg);
	return NULL;
}

/* Frees every string and the struct. */
void config_free(struct config **cfg)
{
	struct config *c = *cfg;
	if (c == NULL)
		return;
	free(c->path);
	free(c->conninfo);
	free(c->ingest_conninfo);
	free(c->indexer_conninfo);
	free(c->retention_conninfo);
	free(c->ca_file);
	free(c->index_path);
	free(c);
	*cfg = NULL;
}

/* Picks the per-program conninfo when configured. */
const char *config_conninfo_for(const struct config *cfg, const char *program)
{
	const char *own = NULL;
	if (strcmp(program, "ingest") == 0)
		own = cfg->ingest_conninfo;
	else if (strcmp(program, "indexer") == 0)
		own = cfg->indexer_conninfo;
	else if (strcmp(program, "retention") == 0)
		own = cfg->retention_conninfo;
	return own ? own : cfg->conninfo;
}
