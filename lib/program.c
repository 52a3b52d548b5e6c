/* Start-up shared by the daemons: the command line every one takes, the configuration, logging. */
#include "program.h"
#include "log.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

/* Prints the usage text the daemons share. */
static void program_usage(FILE *out, const char *name, const char *once_help)
{
	fprintf(out, "usage: %s [-c FILE] [--once]\n"
		"  -c FILE   configuration (default " CONFIG_DEFAULT_PATH ")\n"
		"  --once    %s\n", name, once_help);
}

/* Parses the command line, loads the configuration and starts logging. */
struct config *program_start(int argc, char **argv, const char *name, const char *once_help, bool *once_r,
			     int *exit_r)
{
	const char *cfg_path = CONFIG_DEFAULT_PATH;
	static const struct option opts[] = {
		{ "once", no_argument, NULL, 'o' }, { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 } };
	int c;
	*once_r = false;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cfg_path = optarg; break;
		case 'o': *once_r = true; break;
		case 'h': program_usage(stdout, name, once_help); *exit_r = 0; return NULL;
		case 'V': printf("%s %s\n", name, MAILVAULT_VERSION); *exit_r = 0; return NULL;
		default: program_usage(stderr, name, once_help); *exit_r = 2; return NULL;
		}
	}
	if (optind != argc) {
		program_usage(stderr, name, once_help);
		*exit_r = 2;
		return NULL;
	}
	char *err;
	struct config *cfg = config_load(cfg_path, &err);
	if (cfg == NULL) {
		fprintf(stderr, "%s: %s\n", name, err);
		free(err);
		*exit_r = 1;
		return NULL;
	}
	log_init(name, cfg->log_level, cfg->log_syslog);
	return cfg;
}
