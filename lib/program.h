/* Start-up shared by the daemons: the command line every one takes, the configuration, logging. */
#ifndef MAILVAULT_PROGRAM_H
#define MAILVAULT_PROGRAM_H

#include <stdbool.h>
#include "config.h"

/* Reads "-c FILE [--once] [--help] [--version]", loads the configuration and starts logging as name.
   once_help describes --once in the usage text. Returns the configuration (free with config_free), or
   NULL with *exit_r the status to exit with: 0 after --help or --version, 1 for a configuration error
   (already printed), 2 for a usage error. */
struct config *program_start(int argc, char **argv, const char *name, const char *once_help, bool *once_r,
			     int *exit_r);

#endif
