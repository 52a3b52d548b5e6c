#!/usr/bin/env python3
"""A small RFC 3161 time-stamp authority for the tests: HTTP on 127.0.0.1 only, each POSTed
application/timestamp-query answered by `openssl ts -reply` with the test's throwaway TSA certificate.

Usage: tsa_server.py --dir DIR --cert TSA.pem --key TSA.key --chain CA.pem --port-file FILE

It listens on a free port (port 0) and writes the port to --port-file once it accepts connections.
DIR holds its openssl configuration, serial file and a log with one line per request (requests.log).
The file DIR/mode, read at each request, makes it misbehave on purpose:
  granted  (or no file)  a proper reply
  replay                 the previous reply again (another anchor's imprint and nonce)
  other-nonce            a proper reply to the same imprint with a nonce of its own (not the request's)
  garbage                bytes that are no TimeStampResp
Python 3 standard library only.
"""
import argparse
import http.server
import os
import subprocess
import tempfile

MAX_QUERY = 64 * 1024
SHA256_OID = bytes.fromhex("0609608648016503040201")  # DER of OBJECT IDENTIFIER 2.16.840.1.101.3.4.2.1


def write_config(d, cert, key, chain):
    conf = os.path.join(d, "tsa.cnf")
    with open(conf, "w") as f:
        f.write(f"""# written by tests/lib/tsa_server.py
[ tsa ]
default_tsa = tsa_test
[ tsa_test ]
dir = {d}
serial = {d}/serial
crypto_device = builtin
signer_cert = {cert}
certs = {chain}
signer_key = {key}
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
""")
    serial = os.path.join(d, "serial")
    if not os.path.exists(serial):
        with open(serial, "w") as f:
            f.write("01\n")
    return conf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--chain", required=True)
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()
    d = os.path.abspath(a.dir)
    os.makedirs(d, exist_ok=True)
    conf = write_config(d, os.path.abspath(a.cert), os.path.abspath(a.key), os.path.abspath(a.chain))
    log = os.path.join(d, "requests.log")
    last = {"reply": None}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # the request log below says what the tests need
            pass

        def answer(self, code, ctype, body):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            try:
                n = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                n = -1
            ctype = self.headers.get("Content-Type", "")
            try:
                mode = open(os.path.join(d, "mode")).read().strip() or "granted"
            except FileNotFoundError:
                mode = "granted"
            with open(log, "a") as f:
                f.write(f"POST {self.path} {ctype} {n} {mode}\n")
            if n <= 0 or n > MAX_QUERY or ctype != "application/timestamp-query":
                self.answer(400, "text/plain", b"not a time-stamp query\n")
                return
            query = self.rfile.read(n)
            if mode == "garbage":
                self.answer(200, "application/timestamp-reply", b"this is not a TimeStampResp\n")
                return
            if mode == "replay" and last["reply"] is not None:
                self.answer(200, "application/timestamp-reply", last["reply"])
                return
            with tempfile.TemporaryDirectory(dir=d) as tmp:
                q, r = os.path.join(tmp, "q.tsq"), os.path.join(tmp, "r.tsr")
                with open(q, "wb") as f:
                    f.write(query)
                if mode == "other-nonce":
                    # the same SHA-256 imprint (OCTET STRING 04 20 after the algorithm), asked again with a new nonce
                    at = query.find(SHA256_OID)
                    at = query.find(b"\x04\x20", at) if at >= 0 else -1
                    if at < 0:
                        self.answer(400, "text/plain", b"not a SHA-256 query\n")
                        return
                    subprocess.run(["openssl", "ts", "-query", "-sha256", "-digest", query[at + 2:at + 34].hex(), "-cert",
                                    "-out", q], check=True, capture_output=True, timeout=30)
                p = subprocess.run(["openssl", "ts", "-reply", "-config", conf, "-queryfile", q, "-out", r],
                                   capture_output=True, timeout=30)
                if p.returncode != 0 or not os.path.exists(r):
                    with open(log, "a") as f:
                        f.write("openssl ts -reply failed: " + p.stderr.decode(errors="replace") + "\n")
                    self.answer(500, "text/plain", b"openssl ts -reply failed\n")
                    return
                reply = open(r, "rb").read()
            last["reply"] = reply
            self.answer(200, "application/timestamp-reply", reply)

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{srv.server_address[1]}\n")
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
