/* Logging: one line per event to stderr or syslog, with levels; callers never pass secrets. */
#ifndef MAILVAULT_LOG_H
#define MAILVAULT_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR, LOG_LEVEL_FATAL };

/* Sets the program name, the minimum level and whether to use syslog instead of stderr. */
void log_init(const char *program, enum log_level min_level, bool use_syslog);
/* Changes the minimum level (SIGHUP reload). */
void log_set_level(enum log_level min_level);
/* Parses "debug", "info", "warn", "error"; 0 on success, -1 otherwise. */
int log_parse_level(const char *s, enum log_level *level_r);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
/* Logs and exits with status 1. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
