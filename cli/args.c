/* The mailvault command line's global options (see args.h). */
#include "args.h"
#include "config.h"

#include <string.h>

void cli_args_parse(int argc, char **argv, struct cli_args *a)
{
	memset(a, 0, sizeof(*a));
	a->cfg_path = CONFIG_DEFAULT_PATH;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			a->cfg_path = argv[++i], a->cfg_given = true;
		else if (strcmp(argv[i], "--json") == 0)
			a->json = true;
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			a->help = true;
		else if (strcmp(argv[i], "--version") == 0)
			a->version = true;
		else {
			a->bad = true;
			break;
		}
		if (a->help || a->version)
			break;
	}
	a->cmd = i;
	/* --json may also come after the subcommand */
	for (int j = i + 1; j < argc; j++)
		if (strcmp(argv[j], "--json") == 0)
			a->json = true;
}
