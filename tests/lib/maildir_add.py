#!/usr/bin/python3
"""Test harness: fast bulk copy of message files into Dovecot maildirs (LAYOUT=fs), used by dovecot.sh.

  maildir_add.py add MAILROOT FOLDER UID:GID      file names on stdin, NUL-separated
  maildir_add.py enron DOVECOTDIR CORPUS_ROOT MAX_USERS MAX_PER_FOLDER UID:GID

Everything created is given to UID:GID (the user Dovecot's mail processes run as).

Messages land in FOLDER/cur/ as "<sec>.M<usec>P<pid>Q<n>.mvtest:2," (no flags). They are written to tmp/
and renamed into cur/ so a running Dovecot never sees half a file. The names carry increasing
timestamps, so Dovecot gives the files UIDs in the order they were given (it sorts new files by name time).
"""

import os
import sys
import time

_seq = [0]
_start_us = time.time_ns() // 1000
_host = "mvtest"
_owner = [-1, -1]


def folder_path(mailroot, folder):
    """Path of FOLDER's maildir under the user's maildir root (INBOX is the root)."""
    if folder == "INBOX" or folder == "":
        return mailroot
    parts = folder.split("/")
    for p in parts:
        if p in ("", ".", "..", "cur", "new", "tmp"):
            raise SystemExit("maildir_add: bad folder name %r" % folder)
    return os.path.join(mailroot, *parts)


def make_dirs(path):
    """Like os.makedirs, giving every folder it creates to the mail user."""
    if os.path.isdir(path):
        return
    make_dirs(os.path.dirname(path))
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return
    os.chown(path, *_owner)


def make_maildir(path):
    """Creates PATH as a maildir (cur, new, tmp), with its parents."""
    for sub in ("cur", "new", "tmp"):
        make_dirs(os.path.join(path, sub))


def add_files(path, files):
    """Copies FILES into the maildir at PATH; returns how many."""
    make_maildir(path)
    tmp = os.path.join(path, "tmp")
    cur = os.path.join(path, "cur")
    pid = os.getpid()
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        us = _start_us + _seq[0]
        name = "%d.M%06dP%dQ%d.%s" % (us // 1000000, us % 1000000, pid, _seq[0], _host)
        _seq[0] += 1
        t = os.path.join(tmp, name)
        with open(t, "wb") as out:
            out.write(data)
            os.fchown(out.fileno(), *_owner)
        os.rename(t, os.path.join(cur, name + ":2,"))
        n += 1
    return n


def numeric_key(name):
    """Sorts Enron's numbered files by number, anything else after them by name."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def enron(dovecot_dir, root, max_users, max_per_folder):
    """Loads the Enron corpus: one user per custodian, inbox -> INBOX, inbox/x/y -> x/y."""
    mdir = os.path.join(root, "maildir")
    if not os.path.isdir(mdir):
        mdir = root
    users = sorted(u for u in os.listdir(mdir) if os.path.isdir(os.path.join(mdir, u, "inbox")))
    if not users:
        raise SystemExit("enron_load: no <user>/inbox folders under %s" % mdir)
    if max_users > 0:
        users = users[:max_users]
    passwd = os.path.join(dovecot_dir, "users")
    existing = []
    if os.path.exists(passwd):
        with open(passwd) as fh:
            existing = [line for line in fh if line.split(":", 1)[0] not in set(users)]
    rows = []
    for user in users:
        password = "pw-" + user
        inbox = os.path.join(mdir, user, "inbox")
        mailroot = os.path.join(dovecot_dir, "mail", user)
        nfolders = nmsgs = 0
        for dirpath, dirnames, filenames in os.walk(inbox):
            dirnames.sort()
            rel = os.path.relpath(dirpath, inbox)
            folder = "INBOX" if rel == "." else rel.replace(os.sep, "/")
            files = sorted((f for f in filenames if not f.startswith(".")), key=numeric_key)
            if max_per_folder > 0:
                files = files[:max_per_folder]
            nmsgs += add_files(folder_path(mailroot, folder), [os.path.join(dirpath, f) for f in files])
            nfolders += 1
        rows.append((user, password, nfolders, nmsgs))
        existing.append("%s:{PLAIN}%s::::::\n" % (user, password))
    tmp = passwd + ".new"
    with open(tmp, "w") as fh:
        fh.writelines(existing)
    os.chmod(tmp, 0o600)
    os.rename(tmp, passwd)
    with open(os.path.join(dovecot_dir, "users.tsv"), "w") as fh:
        for r in rows:
            fh.write("%s\t%s\t%d\t%d\n" % r)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "add":
        _owner[:] = [int(x) for x in sys.argv[4].split(":")]
        data = sys.stdin.buffer.read()
        files = [os.fsdecode(f) for f in data.split(b"\0") if f]
        add_files(folder_path(sys.argv[2], sys.argv[3]), files)
    elif len(sys.argv) == 7 and sys.argv[1] == "enron":
        _owner[:] = [int(x) for x in sys.argv[6].split(":")]
        enron(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        sys.exit("maildir_add: %s" % e)
