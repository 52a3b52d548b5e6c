/* Polls one account: its secret, a connection, the folder list, then each selected folder in turn. */
#include "poller.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "secret.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Connections opened again in one poll after a folder broke the previous one, at most. */
#define ACCOUNT_MAX_RECONNECTS 3

/* Frees an account's strings. */
void account_free(struct account *a)
{
	FREE(a->name);
	FREE(a->host);
	FREE(a->username);
	FREE(a->secret_name);
	FREE(a->ca_file);
	for (char **p = a->include; p && *p; p++)
		free(*p);
	for (char **p = a->exclude; p && *p; p++)
		free(*p);
	FREE(a->include);
	FREE(a->exclude);
}

/* Opens an authenticated connection for the account; NULL with *error_r (malloc'd). */
static struct imap_conn *account_connect(struct poll_ctx *ctx, const struct account *a, const char *secret,
					 char **error_r)
{
	struct imap_conn_settings s = {
		.host = a->host, .port = a->port, .tls = a->tls,
		.ca_file = a->ca_file ? a->ca_file : ctx->cfg->ca_file,
		.username = a->username, .secret = secret, .auth = a->auth,
		.timeout_secs = ctx->cfg->timeout,
		.max_literal = ctx->cfg->max_message_bytes,
	};
	struct imap_open_failure failure;
	struct imap_conn *conn = imap_conn_open(&s, error_r, &failure);
	if (conn == NULL && failure.backoff_ms > ctx->backoff_ms)
		ctx->backoff_ms = failure.backoff_ms;
	return conn;
}

/* Polls the account end to end: one folder's failure is recorded on that folder and the others go on,
   over a new connection if the failure broke the old one. */
enum poll_outcome account_poll(struct poll_ctx *ctx, const struct account *a, char **error_r)
{
	const char *serr;
	char *cerr = NULL;
	ctx->backoff_ms = 0;
	ctx->account_fatal = false;
	/* the secret goes only where its [secret NAME] entry says it may */
	const struct config_secret *entry = secret_for(ctx->cfg, a->secret_name, a->host, a->username, &cerr);
	if (entry == NULL) {
		*error_r = cerr;
		return POLL_FAILED;
	}
	char *secret = secret_resolve(entry, &serr);
	if (secret == NULL) {
		*error_r = xasprintf("secret '%s' (%.*s): %s", entry->name, (int)strcspn(entry->source, ":"), entry->source,
				     serr);
		return POLL_FAILED;
	}
	struct imap_conn *conn = account_connect(ctx, a, secret, &cerr);
	if (conn == NULL) {
		secret_free(&secret);
		*error_r = cerr;
		return POLL_FAILED;
	}

	struct folder_list fl = { 0 };
	enum poll_outcome outcome = POLL_OK;
	char *ferr = NULL;
	struct buf errors = { 0 };
	size_t synced = 0, unchanged = 0, failed = 0, reconnects = 0;
	if (folders_list(ctx, conn, a, &fl, &ferr) < 0) {
		*error_r = ferr;
		ctx->backoff_ms = imap_conn_backoff_ms(conn);
		outcome = POLL_FAILED;
		goto out;
	}
	if (fl.problem != NULL) {
		log_warn("account %s: %s", a->name, fl.problem);
		buf_printf(&errors, "%s", fl.problem);
		outcome = POLL_PARTIAL;
	}
	for (size_t i = 0; i < fl.count && !*ctx->stop; i++) {
		struct folder *f = &fl.items[i];
		if (!f->selected)
			continue;
		if (folder_unchanged(f)) {
			unchanged++;
			continue;
		}
		if (conn == NULL) {
			/* the previous folder broke the connection: a new one for the rest */
			if (reconnects++ == ACCOUNT_MAX_RECONNECTS || (conn = account_connect(ctx, a, secret, &cerr)) == NULL) {
				buf_printf(&errors, "%sthe remaining folders wait for the next poll: %s", errors.len ? "; " : "",
					   cerr ? cerr : "the connection broke too often");
				FREE(cerr);
				outcome = POLL_PARTIAL;
				break;
			}
			log_info("account %s: connected again to go on with the next folders", a->name);
		}
		if (folder_sync(ctx, conn, a, f, &ferr) < 0) {
			log_warn("account %s: folder %s: %s", a->name, f->name, ferr);
			if (ctx->account_fatal) {
				*error_r = xasprintf("folder %s: %s", f->name, ferr);
				FREE(ferr);
				outcome = POLL_FAILED;
				break;
			}
			folder_record_result(ctx, f, ferr);
			buf_printf(&errors, "%sfolder %s: %s", errors.len ? "; " : "", f->name, ferr);
			FREE(ferr);
			failed++;
			outcome = POLL_PARTIAL;
			if (imap_conn_broken(conn)) {
				ctx->backoff_ms = imap_conn_backoff_ms(conn);
				imap_conn_close(&conn);
			}
			continue;
		}
		if (f->db_failed)
			folder_record_result(ctx, f, NULL);
		synced++;
	}
	log_info("account %s: %zu folder%s synced, %zu unchanged, %zu failed%s", a->name, synced, synced == 1 ? "" : "s",
		 unchanged, failed, *ctx->stop ? " (stopping)" : "");
	if (conn != NULL && imap_conn_backoff_ms(conn) > ctx->backoff_ms)
		ctx->backoff_ms = imap_conn_backoff_ms(conn);
	if (outcome == POLL_PARTIAL)
		*error_r = failed == 0 ? xstrdup((char *)errors.data)
			   : xasprintf("%zu folder%s failed: %s", failed, failed == 1 ? "" : "s", (char *)errors.data);
out:
	buf_free(&errors);
	folders_free(&fl);
	secret_free(&secret);
	imap_conn_close(&conn);
	return outcome;
}
