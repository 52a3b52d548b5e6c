#!/usr/bin/python3
"""Test helper: a PostgreSQL Unix-socket proxy that cuts a connection at a chosen moment of an audit write.

  pg_cut_proxy.py LISTEN_DIR TARGET_DIR PORT

Listens on LISTEN_DIR/.s.PGSQL.PORT and passes every connection through to TARGET_DIR/.s.PGSQL.PORT,
reading the protocol's messages (type byte, 32-bit length) in both directions. A test arms one cut by
writing LISTEN_DIR/cut:
  before-execute  the next Bind of the prepared statement "audit_write" is not passed on: the connection
                  is closed before the server runs the statement (nothing written);
  after-send      the next Bind of "audit_write" and what follows it up to Sync are passed on, then the
                  connection is closed at once: the server runs the statement (or waits for the chain's
                  lock) without a client, and notices only when it answers;
  after-commit    once the server describes a result of mailvault_audit_as, nothing more is passed to the
                  client, and the connection is closed when the server says it is ready again (the
                  statement's transaction committed; the client never hears so);
  deallocate-all  before the next statement a client sends, the proxy has the server run DEALLOCATE ALL
                  on that connection and hides the answer: the client's prepared statements are gone
                  without its knowing (as behind a pooler, or after an administrator's DISCARD).
The cut is made once: the file is renamed LISTEN_DIR/cut.done. Every error the server sends to a client
is noted, its SQLSTATE a line, in LISTEN_DIR/errors. Clients must not ask for TLS or GSS encryption
(sslmode=disable gssencmode=disable): the proxy reads plain messages only.
"""
import os
import socket
import struct
import sys
import threading

listen_dir, target_dir, port = sys.argv[1], sys.argv[2], sys.argv[3]
name = ".s.PGSQL." + port
cut_file = os.path.join(listen_dir, "cut")
lock = threading.Lock()


def armed(kind):
    """True once (the cut file says kind): the file becomes cut.done."""
    with lock:
        try:
            with open(cut_file) as f:
                if f.read().strip() != kind:
                    return False
        except FileNotFoundError:
            return False
        os.rename(cut_file, cut_file + ".done")
        return True


def messages(sock, first_untyped):
    """Yields (raw bytes, type, payload) of each message read from sock until it closes."""
    buf = b""
    untyped = first_untyped
    while True:
        head = 4 if untyped else 5
        while len(buf) >= head:
            length = struct.unpack("!I", buf[head - 4:head])[0]
            total = length + (0 if untyped else 1)
            if len(buf) < total:
                break
            raw, buf = buf[:total], buf[total:]
            yield raw, (b"" if untyped else raw[:1]), raw[head:]
            untyped = False
            head = 5
        data = sock.recv(65536)
        if not data:
            return
        buf += data


def close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def client_to_server(client, server, state):
    in_sequence = False   # between an extended-protocol message and its Sync
    cut_at_sync = False
    try:
        for raw, kind, payload in messages(client, True):
            audit_bind = kind == b"B" and b"\0audit_write\0" in b"\0" + payload
            if audit_bind and armed("before-execute"):
                break
            # only between statements: a query run in the middle of Parse/Bind/Sync would disturb it
            if not in_sequence and kind in (b"P", b"B", b"Q") and armed("deallocate-all"):
                with lock:
                    state["hide"] += 1
                query = b"DEALLOCATE ALL\0"
                server.sendall(b"Q" + struct.pack("!I", len(query) + 4) + query)
            if audit_bind and armed("after-send"):
                cut_at_sync = True
            if kind in (b"P", b"B", b"D", b"E", b"C", b"H"):
                in_sequence = True
            server.sendall(raw)
            if kind == b"S":
                in_sequence = False
                if cut_at_sync:
                    break
    except OSError:
        pass
    close(client, server)


def server_to_client(server, client, state):
    swallowing = False
    try:
        for raw, kind, payload in messages(server, False):
            with lock:
                hiding = state["hide"] > 0
                if hiding and kind == b"Z":
                    state["hide"] -= 1
            if hiding and kind in (b"C", b"Z", b"E", b"N"):
                continue   # the answer to the proxy's own DEALLOCATE ALL
            if kind == b"E":
                fields = dict((f[:1], f[1:]) for f in payload.split(b"\0") if f)
                with lock, open(os.path.join(listen_dir, "errors"), "ab") as f:
                    f.write(fields.get(b"C", b"?????") + b"\n")
            if swallowing:
                if kind == b"Z":
                    break
                continue
            if kind == b"T" and b"mailvault_audit_as\0" in payload and armed("after-commit"):
                swallowing = True
                continue
            client.sendall(raw)
    except OSError:
        pass
    close(client, server)


def main():
    path = os.path.join(listen_dir, name)
    if os.path.exists(path):
        os.unlink(path)
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(64)
    while True:
        client, _ = ls.accept()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.connect(os.path.join(target_dir, name))
        except OSError:
            client.close()
            continue
        state = {"hide": 0}
        threading.Thread(target=client_to_server, args=(client, server, state), daemon=True).start()
        threading.Thread(target=server_to_client, args=(server, client, state), daemon=True).start()


if __name__ == "__main__":
    main()
