/* mailvault.conf: a small INI file; unknown sections or keys and bad values are errors with file:line. */
#include "config.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum config_kind { CK_STRING, CK_UINT, CK_SIZE, CK_LOGLEVEL, CK_LOGTARGET, CK_DURATION };

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
	K("daemon", "max_message_bytes", CK_SIZE, max_message_bytes, 1024, CONFIG_MAX_MESSAGE_BYTES),
	K("daemon", "poll_interval", CK_UINT, poll_interval, 1, 7 * 86400),
	K("daemon", "timeout", CK_UINT, timeout, 1, 3600),
	K("daemon", "lease_seconds", CK_UINT, lease_seconds, 10, 86400),
	K("daemon", "log_level", CK_LOGLEVEL, log_level, 0, 0),
	K("daemon", "log", CK_LOGTARGET, log_syslog, 0, 0),
	K("tls", "ca_file", CK_STRING, ca_file, 0, 0),
	K("indexer", "index_path", CK_STRING, index_path, 0, 0),
	K("indexer", "shards", CK_UINT, index_shards, 1, 64),
	K("search", "session_idle", CK_UINT, session_idle, 0, 86400),
	K("database", "web_conninfo", CK_STRING, web_conninfo, 0, 0),
	K("web", "listen", CK_STRING, web_listen, 0, 0),
	K("web", "socket", CK_STRING, web_socket, 0, 0),
	K("web", "tls_cert", CK_STRING, web_tls_cert, 0, 0),
	K("web", "tls_key", CK_STRING, web_tls_key, 0, 0),
	K("web", "trusted_proxies", CK_STRING, web_trusted_proxies, 0, 0),
	K("web", "workers", CK_UINT, web_workers, 1, 256),
	K("web", "session_idle", CK_UINT, web_session_idle, 60, 7 * 86400),
	K("web", "session_max", CK_UINT, web_session_max, 60, 30 * 86400),
	K("retention", "min_age", CK_DURATION, retention_min_age, 0, 1000ULL * 365 * 86400),
	K("retention", "release_grace", CK_DURATION, retention_release_grace, 0, 1000ULL * 365 * 86400),
	K("retention", "batch", CK_UINT, retention_batch, 1, 10000),
	K("retention", "batch_ms", CK_UINT, retention_batch_ms, 10, 600000),
	K("retention", "interval", CK_UINT, retention_interval, 1, 7 * 86400),
	K("retention", "vacuum_conninfo", CK_STRING, retention_vacuum_conninfo, 0, 0),
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
	case CK_DURATION:
		if (util_parse_duration(value, &v) < 0 || v < k->min || v > k->max) {
			*why_r = "expects a duration such as 0d, 12h, 7d, 30d or 1y (units s m h d w y)";
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

/* True for a name an account or secret may have (the accounts.name CHECK of the schema). */
bool config_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 128 || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && strchr("._@+-", name[i]) == NULL)
			return false;
	return true;
}

/* Reads one key of a [secret NAME] section; NULL on success, else why not. */
static const char *config_secret_set(struct config_secret *sec, const char *key, const char *value)
{
	char **field = strcmp(key, "source") == 0 ? &sec->source : strcmp(key, "host") == 0 ? &sec->host
		     : strcmp(key, "user") == 0 ? &sec->user : NULL;
	if (field != NULL) {
		if (*value == '\0')
			return "must not be empty";
		if (field == &sec->source && strncmp(value, "file:", 5) != 0 && strncmp(value, "env:", 4) != 0 &&
		    strncmp(value, "cmd:", 4) != 0)
			return "expects file:PATH, env:NAME or cmd:COMMAND";
		if (field == &sec->source && strchr(value, ':')[1] == '\0')
			return "names no file, variable or command";
		free(*field);
		*field = xstrdup(value);
		return NULL;
	}
	if (strcmp(key, "timeout") == 0) {
		uint64_t v;
		if (util_parse_uint(value, 1, 600, &v) < 0)
			return "expects seconds from 1 to 600";
		sec->timeout = (unsigned)v;
		return NULL;
	}
	return "";
}

/* The secret section called name, or NULL. */
const struct config_secret *config_secret_find(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nsecrets; i++)
		if (strcmp(cfg->secrets[i].name, name) == 0)
			return &cfg->secrets[i];
	return NULL;
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
	cfg->session_idle = 0;
	cfg->web_workers = 8;
	cfg->web_session_idle = 1800;
	cfg->web_session_max = 12 * 3600;
	cfg->retention_min_age = 7 * 86400;
	cfg->retention_release_grace = 30 * 86400;
	cfg->retention_batch = 500;
	cfg->retention_batch_ms = 500;
	cfg->retention_interval = 3600;

	char line[8192], section[160] = "";
	unsigned lineno = 0;
	struct config_secret *sec = NULL; /* the [secret NAME] section being read */
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
			sec = NULL;
			if (strncmp(section, "secret", 6) == 0 && (section[6] == ' ' || section[6] == '\t')) {
				const char *name = config_trim(section + 7);
				if (!config_name_valid(name)) {
					*error_r = xasprintf("%s:%u: a secret's name may use letters, digits and . _ @ + - "
							     "([secret NAME])", path, lineno);
					goto fail;
				}
				if (config_secret_find(cfg, name) != NULL) {
					*error_r = xasprintf("%s:%u: [secret %s] is defined twice", path, lineno, name);
					goto fail;
				}
				cfg->secrets = xrealloc(cfg->secrets, (cfg->nsecrets + 1) * sizeof(*cfg->secrets));
				sec = &cfg->secrets[cfg->nsecrets++];
				*sec = (struct config_secret){ .name = xstrdup(name), .timeout = 30, .line = lineno };
				continue;
			}
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
		if (sec != NULL) {
			const char *why = config_secret_set(sec, key, value);
			if (why != NULL && *why == '\0') {
				*error_r = xasprintf("%s:%u: unknown key '%s' in [secret %s] (source, host, user, timeout)",
						     path, lineno, key, sec->name);
				goto fail;
			}
			if (why != NULL) {
				/* the value is not echoed: it says where a secret lives */
				*error_r = xasprintf("%s:%u: bad value for '%s' in [secret %s]: %s", path, lineno, key,
						     sec->name, why);
				goto fail;
			}
			continue;
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
		if (strcmp(section, "search") == 0 && strcmp(key, "session_idle") == 0)
			cfg->search_session_idle_line = lineno; /* read, and warned about: it does nothing now */
		if (config_set(cfg, k, value, &why) < 0) {
			/* the value is not echoed: it could be a conninfo with a password */
			*error_r = xasprintf("%s:%u: bad value for '%s': %s", path, lineno, key, why);
			goto fail;
		}
	}
	fclose(f);
	for (size_t i = 0; i < cfg->nsecrets; i++) {
		struct config_secret *c = &cfg->secrets[i];
		if (c->source == NULL || c->host == NULL || c->user == NULL) {
			*error_r = xasprintf("%s:%u: [secret %s] needs source, host and user (the one server and login "
					     "it may be sent to)", path, c->line, c->name);
			config_free(&cfg);
			return NULL;
		}
	}
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
	free(c->web_conninfo);
	free(c->web_listen);
	free(c->web_socket);
	free(c->web_tls_cert);
	free(c->web_tls_key);
	free(c->web_trusted_proxies);
	free(c->retention_vacuum_conninfo);
	for (size_t i = 0; i < c->nsecrets; i++) {
		free(c->secrets[i].name);
		free(c->secrets[i].source);
		free(c->secrets[i].host);
		free(c->secrets[i].user);
	}
	free(c->secrets);
	free(c);
	*cfg = NULL;
}

/* Days when the duration is whole days (as an administrator wrote it), else seconds. */
const char *config_interval_text(uint64_t seconds, char *buf, size_t size)
{
	if (seconds % 86400 == 0)
		snprintf(buf, size, "%llu days", (unsigned long long)(seconds / 86400));
	else
		snprintf(buf, size, "%llu seconds", (unsigned long long)seconds);
	return buf;
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
	else if (strcmp(program, "web") == 0)
		own = cfg->web_conninfo;
	return own ? own : cfg->conninfo;
}
