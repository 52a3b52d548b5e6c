/* Unit tests of lib/secret.c and the [secret NAME] sections of lib/config.c: where a secret comes from,
   where it may go, commands without a shell and with a timeout. */
#include "config.h"
#include "secret.h"
#include "util.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/mv-test-secret.XXXXXX";

/* Writes text to dir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		abort();
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads a configuration from text; NULL with *error_r (to free) when it is refused. */
static struct config *load(const char *text, char **error_r)
{
	*error_r = NULL;
	return config_load(write_file("mailvault.conf", text), error_r);
}

/* A refused configuration's message contains want. */
static void check_refused(const char *text, const char *want)
{
	char *err;
	struct config *cfg = load(text, &err);
	CHECK(cfg == NULL);
	CHECK(err != NULL && strstr(err, want) != NULL);
	if (err == NULL || strstr(err, want) == NULL)
		fprintf(stderr, "  wanted \"%s\" in \"%s\"\n", want, err ? err : "(accepted)");
	free(err);
	config_free(&cfg);
}

/* Sections are read, checked and found by name. */
static void test_config_sections(void)
{
	char *err;
	struct config *cfg = load("[database]\nconninfo = x\n[secret jdoe]\nsource = file:/etc/pw\nhost = imap.example.com\n"
				  "user = jdoe@example.com\n[secret legal-2]\nsource = cmd:pass show legal\nhost = h\nuser = u\n"
				  "timeout = 5\n[daemon]\nworkers = 2\n", &err);
	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "  %s\n", err);
		free(err);
		return;
	}
	CHECK(cfg->nsecrets == 2);
	const struct config_secret *s = config_secret_find(cfg, "jdoe");
	CHECK(s != NULL && strcmp(s->source, "file:/etc/pw") == 0 && s->timeout == 30 && s->line == 3);
	s = config_secret_find(cfg, "legal-2");
	CHECK(s != NULL && s->timeout == 5 && strcmp(s->user, "u") == 0);
	CHECK(config_secret_find(cfg, "nobody") == NULL);
	CHECK(cfg->workers == 2);
	config_free(&cfg);

	check_refused("[database]\nconninfo = x\n[secret a]\nsource = file:/x\nhost = h\n", "[secret a] needs source, host and user");
	check_refused("[database]\nconninfo = x\n[secret a]\nsource = /x\nhost = h\nuser = u\n",
		      "bad value for 'source' in [secret a]: expects file:PATH, env:NAME or cmd:COMMAND");
	check_refused("[database]\nconninfo = x\n[secret a]\nsource = cmd:\nhost = h\nuser = u\n", "names no file, variable or command");
	check_refused("[database]\nconninfo = x\n[secret a]\npath = /x\n", "unknown key 'path' in [secret a]");
	check_refused("[database]\nconninfo = x\n[secret a b]\n", "a secret's name may use letters, digits");
	check_refused("[database]\nconninfo = x\n[secret a]\nsource = env:X\nhost = h\nuser = u\n[secret a]\n", "[secret a] is defined twice");
	check_refused("[database]\nconninfo = x\n[secret a]\ntimeout = 0\n", "expects seconds from 1 to 600");
	check_refused("[database]\nconninfo = x\n[daemon]\nmax_message_bytes = 2G\n", "bad value for 'max_message_bytes'");
	CHECK(config_name_valid("jdoe@example.com"));
	CHECK(!config_name_valid("-x"));
	CHECK(!config_name_valid("a:b"));
}

/* A secret goes only to the host (any case) and user (exactly) of its section. */
static void test_binding(void)
{
	char *err;
	struct config *cfg = load("[database]\nconninfo = x\n[secret jdoe]\nsource = env:MV_TEST_PW\nhost = imap.example.com\n"
				  "user = jdoe\n", &err);
	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	CHECK(secret_for(cfg, "jdoe", "IMAP.Example.com", "jdoe", &err) != NULL);
	CHECK(secret_for(cfg, "jdoe", "evil.example.net", "jdoe", &err) == NULL);
	CHECK(err && strstr(err, "may be sent only to imap.example.com as jdoe") && strstr(err, "refusing to send it"));
	free(err);
	CHECK(secret_for(cfg, "jdoe", "imap.example.com", "JDOE", &err) == NULL);
	free(err);
	CHECK(secret_for(cfg, "other", "imap.example.com", "jdoe", &err) == NULL);
	CHECK(err && strstr(err, "secret 'other' is not defined in"));
	free(err);
	config_free(&cfg);
}

/* Resolves a section built from source (timeout in seconds); NULL with *error_r. */
static char *resolve(const char *source, unsigned timeout, const char **error_r)
{
	struct config_secret s = { .name = "t", .source = (char *)source, .host = "h", .user = "u", .timeout = timeout };
	return secret_resolve(&s, error_r);
}

/* file:, env: and cmd: sources, and their failures, which never show the secret. */
static void test_resolve(void)
{
	const char *err;
	char src[300];
	snprintf(src, sizeof(src), "file:%s", write_file("pw", "s3cret pass\n"));
	char *v = resolve(src, 30, &err);
	CHECK_STR(v, "s3cret pass");
	secret_free(&v);
	CHECK(v == NULL);
	snprintf(src, sizeof(src), "file:%s/none", dir);
	CHECK(resolve(src, 30, &err) == NULL && strstr(err, "cannot open the secret file"));
	snprintf(src, sizeof(src), "file:%s", write_file("empty", "\n"));
	CHECK(resolve(src, 30, &err) == NULL && strstr(err, "empty"));
	setenv("MV_TEST_PW", "from-env", 1);
	v = resolve("env:MV_TEST_PW", 30, &err);
	CHECK_STR(v, "from-env");
	secret_free(&v);
	CHECK(resolve("env:MV_TEST_NOT_SET_AT_ALL", 30, &err) == NULL && strstr(err, "not set"));
	/* cmd: words, quotes and escapes, no shell: $(...), ; and globs are plain characters */
	v = resolve("cmd:printf %s 'two words'", 30, &err);
	CHECK_STR(v, "two words");
	secret_free(&v);
	v = resolve("cmd:printf %s \"a \\\"quoted\\\" \\\\ x\"", 30, &err);
	CHECK_STR(v, "a \"quoted\" \\ x");
	secret_free(&v);
	v = resolve("cmd:printf %s%s $(touch${IFS}/tmp/mv-test-pwned) ;", 30, &err);
	CHECK_STR(v, "$(touch${IFS}/tmp/mv-test-pwned);");
	secret_free(&v);
	CHECK(access("/tmp/mv-test-pwned", F_OK) != 0);
	v = resolve("cmd:printf %s*", 30, &err);
	CHECK_STR(v, "*");
	secret_free(&v);
	CHECK(resolve("cmd:false", 30, &err) == NULL && strstr(err, "failed"));
	CHECK(resolve("cmd:/no/such/command", 30, &err) == NULL && strstr(err, "cannot be run"));
	CHECK(resolve("cmd:printf 'unterminated", 30, &err) == NULL && strstr(err, "unterminated quote"));
	/* a command that hangs is killed at its timeout, with whatever it started */
	double t0 = util_now();
	CHECK(resolve("cmd:sh -c 'sleep 30 & sleep 30'", 1, &err) == NULL && strstr(err, "timeout"));
	CHECK(util_now() - t0 < 5);
	/* splitting on its own */
	char **argv = secret_split_command("  a  'b c'\td\\ e \"f\"g ", &err);
	CHECK(argv != NULL && argv[0] && strcmp(argv[0], "a") == 0 && argv[1] && strcmp(argv[1], "b c") == 0 &&
	      argv[2] && strcmp(argv[2], "d e") == 0 && argv[3] && strcmp(argv[3], "fg") == 0 && argv[4] == NULL);
	secret_argv_free(argv);
	CHECK(secret_split_command("   ", &err) == NULL && strstr(err, "empty"));
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	test_config_sections();
	test_binding();
	test_resolve();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return unit_finish("test-secret");
}
