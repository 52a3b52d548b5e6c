#!/usr/bin/python3
"""Test harness: the STARTTLS port of the private Dovecot, relayed so that Dovecot enforces TLS.

Dovecot treats a connection whose remote address equals its local address as "secured" and then allows
plaintext LOGIN and hides LOGINDISABLED. On a test machine everything is 127.0.0.1 -> 127.0.0.1, so the
STARTTLS port would never require STARTTLS. This relay listens on 127.0.0.1:LISTEN and passes every
connection to Dovecot's haproxy-enabled listener on 127.0.0.1:TARGET, opening it with a PROXY protocol v1
line that labels the server side 127.0.0.2 (a label only: nothing binds to or connects to that address).
Dovecot then sees distinct addresses and behaves as with a remote client: STARTTLS required.

  starttls_relay.py LISTEN_PORT TARGET_PORT PIDFILE

Writes PIDFILE once listening; exits on SIGTERM. Bytes are relayed unchanged in both directions.
"""

import asyncio
import os
import signal
import sys

LABEL_LOCAL = "127.0.0.2"
BUF = 256 * 1024


async def pipe(reader, writer):
    """Copies reader to writer until EOF, then half-closes writer."""
    try:
        while True:
            data = await reader.read(BUF)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def handle(c_reader, c_writer, target, listen_port):
    """Relays one client connection to Dovecot."""
    peer = c_writer.get_extra_info("peername")
    try:
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        c_writer.close()
        return
    s_writer.write(("PROXY TCP4 %s %s %d %d\r\n" % (peer[0], LABEL_LOCAL, peer[1], listen_port)).encode())
    await asyncio.gather(pipe(c_reader, s_writer), pipe(s_reader, c_writer))
    for w in (c_writer, s_writer):
        w.close()


async def main(listen_port, target, pidfile):
    server = await asyncio.start_server(lambda r, w: handle(r, w, target, listen_port), "127.0.0.1",
                                        listen_port, reuse_address=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    tmp = pidfile + ".new"
    with open(tmp, "w") as fh:
        fh.write("%d\n" % os.getpid())
    os.rename(tmp, pidfile)
    await stop
    server.close()
    try:
        os.unlink(pidfile)
    except OSError:
        pass


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
