/* The mailvault command line's global part, read the same way by the front end and mailvault-cli. */
#ifndef MAILVAULT_ARGS_H
#define MAILVAULT_ARGS_H

#include <stdbool.h>

struct cli_args {
	const char *cfg_path; /* -c FILE, else the default; points into argv or a constant */
	bool cfg_given;       /* -c was given */
	bool json;            /* --json, before or after the command */
	bool help, version;
	int cmd;              /* index in argv of the command; argc when there is none */
	bool bad;             /* an unknown global option */
};

/* Reads "[-c FILE] [--json] [-h|--help] [--version] COMMAND ARGS..." into *a. */
void cli_args_parse(int argc, char **argv, struct cli_args *a);

#endif
