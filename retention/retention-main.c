/* mailvault-retention: disposes of what expired and no hold keeps, carries out approved erasures, and
   reports what would go (--dry-run); once, or every [retention] interval seconds. */
#include "config.h"
#include "db.h"
#include "log.h"
#include "program.h"
#include "retention.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t retention_stop;

/* SIGTERM/SIGINT: finish the batch in hand, record the run, exit. */
static void on_stop(int sig)
{
	(void)sig;
	retention_stop = 1;
}

/* Connects as the retention role. Returns NULL with *error_r. */
static PGconn *retention_connect(const struct config *cfg, const char **error_r)
{
	return db_connect(config_conninfo_for(cfg, "retention"), "mailvault-retention", "mailvault_retention", error_r);
}

int main(int argc, char **argv)
{
	/* --dry-run and --json are this program's own: the rest is the command line every daemon takes */
	bool dry_run = false, json = false, once;
	char **args = xcalloc((size_t)argc + 1, sizeof(*args));
	int nargs = 0;
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--dry-run") == 0)
			dry_run = true;
		else if (i > 0 && strcmp(argv[i], "--json") == 0)
			json = true;
		else if (i > 0 && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
			printf("usage: mailvault-retention [-c FILE] [--once] [--dry-run [--json]]\n"
			       "  -c FILE    configuration (default " CONFIG_DEFAULT_PATH ")\n"
			       "  --once     one run and exit (else a run every [retention] interval seconds)\n"
			       "  --dry-run  report what a run would remove now and what holds keep; change nothing\n"
			       "  --json     the report as one JSON object\n");
			free(args);
			return 0;
		}
		else
			args[nargs++] = argv[i];
	}
	int status;
	struct config *cfg = program_start(nargs, args, "mailvault-retention",
					   "one run and exit",
					   &once, &status);
	free(args);
	if (cfg == NULL)
		return status;
	if (json && !dry_run) {
		fprintf(stderr, "mailvault-retention: --json goes with --dry-run\n");
		config_free(&cfg);
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_stop };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	const char *err;
	PGconn *db = retention_connect(cfg, &err);
	if (db == NULL) {
		fprintf(stderr, "mailvault-retention: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	int rc = 0;
	if (dry_run) {
		if (retention_report(db, json, &err) < 0) {
			fprintf(stderr, "mailvault-retention: %s\n", err);
			rc = 1;
		}
		db_close(&db);
		config_free(&cfg);
		return rc;
	}
	for (;;) {
		struct retention_totals t;
		if (db == NULL && (db = retention_connect(cfg, &err)) == NULL) {
			log_error("%s", err);
			rc = 1;
		} else if (retention_run(cfg, db, &t, &err) < 0) {
			log_error("disposal run failed: %s", err);
			rc = 1;
			/* a lost connection is made again for the next run */
			if (db_conn_lost(db))
				db_close(&db);
		} else {
			rc = 0;
		}
		if (once || retention_stop)
			break;
		/* the signal interrupts sleep(), so a stop is seen at once */
		for (unsigned waited = 0; waited < cfg->retention_interval && !retention_stop; waited++)
			sleep(1);
		if (retention_stop)
			break;
	}
	db_close(&db);
	config_free(&cfg);
	return rc;
}
