/* Logging: one line per event to stderr or syslog, with levels; callers never pass secrets. */
#include "log.h"
#include "util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "mailvault";
static enum log_level log_min = LOG_LEVEL_INFO;
static bool log_syslog;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* Remembers where and how much to log. */
void log_init(const char *program, enum log_level min_level, bool use_syslog)
{
	log_program = program;
	log_min = min_level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(program, LOG_PID, LOG_MAIL);
}

/* Changes the threshold at run time. */
void log_set_level(enum log_level min_level)
{
	log_min = min_level;
}

/* Maps a level name to its value. */
int log_parse_level(const char *s, enum log_level *level_r)
{
	static const char *names[] = { "debug", "info", "warn", "error" };
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/* Writes one line, whole, even from several threads. */
static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const char *names[] = { "debug", "info", "warn", "error", "fatal" };
	static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT };
	char line[4096];
	if (level < log_min)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* one event, one line: a stray newline would split it; and what a server or a message put in it
	   (folder names, replies) must not drive the terminal or the journal's reader */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	char *safe = util_term_safe(line, false);
	if (log_syslog) {
		syslog(prio[level], "%s: %s", names[level], safe);
		free(safe);
		return;
	}
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s %s[%d] %s: %s\n", stamp, log_program, (int)getpid(), names[level], safe);
	pthread_mutex_unlock(&log_lock);
	free(safe);
}

/* Logs at a level. */
void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

/* Logs and exits: for start-up errors the operator must fix. */
void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_FATAL, fmt, ap);
	va_end(ap);
	exit(1);
}
