#!/usr/bin/env bash
# The scripted IMAP server the quirk tests rely on (tests/lib/scripted_imapd.py), checked on its own with
# Python's imaplib over TLS: logins, LIST, STATUS quoting, EXAMINE, UID FETCH ranges, each quirk, the rules.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
exec "$MV_PYTHON" "$MV_ROOT/tests/lib/scripted_imapd_selftest.py"
