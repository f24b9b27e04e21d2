#!/usr/bin/env python3
"""A re-creation of the course's reference server for the course protocol ("V1").

This is NOT the course's code. It was written for larder's interoperability
tests from the course protocol reference (see README.md in this folder), and
it reproduces the reference server's observable behaviour as that document
describes it, DEFECTS INCLUDED, because larder's client must cope with the
real thing:

  * one request per connection, one thread per connection, no limits and no
    timeouts on the server side;
  * the request is taken from a single recv(1024): a request split over two
    writes is seen short and rejected with status 7 (MALFORMED);
  * bytes after the declared body are ignored (a fixed-size path buffer
    after a length that counts only the path works);
  * a length mismatch gets status 7 AND THEN A SECOND REPLY on the same
    connection. The reference document does not say what the second reply
    is; this re-creation falls through and handles whatever body did
    arrive (none: a registration; part of a path: a retrieval of that part),
    which is the most plausible mechanism for the defect;
  * users live in memory only: name -> (salt, SHA-256(signature || salt)),
    with a salt from the non-cryptographic `random` module;
  * a username is the 16-byte field with its trailing NUL bytes removed, so
    "bob\\0x" is a user distinct from "bob";
  * a leading "/" of a path is stripped; "../" is NOT refused;
  * files are read as TEXT (UTF-8, universal newlines): a file that is not
    valid UTF-8 fails with status 6 (OTHER), and CRLF arrives as LF;
  * an empty file gets NO reply at all: the connection is closed without a
    single block;
  * the blocks of every reply are shuffled.

Usage:
    course_server.py [--host HOST] [--port PORT] [--root DIR]

The first line on standard output is "listening on PORT" (with the port
actually bound, useful with --port 0). SIGTERM and SIGINT stop the server.
"""

import argparse
import hashlib
import os
import random
import signal
import socketserver
import string
import struct
import threading

MSG_MAX = 1024
REQUEST_HEADER = 52
BLOCK_HEADER = 80
MAX_PAYLOAD = MSG_MAX - BLOCK_HEADER  # 944

OK, USER_EXISTS, USER_MISSING, INVALID_LOGIN, BAD_REQUEST, OTHER, MALFORMED = range(1, 8)


class Users:
    """The user table: in memory only, as in the reference server."""

    def __init__(self):
        self._lock = threading.Lock()
        self._users = {}

    def register(self, name, sig):
        salt = "".join(random.choice(string.ascii_letters + string.digits) for _ in range(64))
        with self._lock:
            if name in self._users:
                return False
            self._users[name] = (salt, hashlib.sha256(sig + salt.encode()).digest())
            return True

    def check(self, name, sig):
        """Returns None for an unknown user, else whether sig matches."""
        with self._lock:
            entry = self._users.get(name)
        if entry is None:
            return None
        salt, stored = entry
        return hashlib.sha256(sig + salt.encode()).digest() == stored


def blocks(status, payload):
    """Encodes payload as shuffled blocks. An empty payload gives none."""
    total = hashlib.sha256(payload).digest()
    count = (len(payload) + MAX_PAYLOAD - 1) // MAX_PAYLOAD
    out = []
    for i in range(count):
        chunk = payload[i * MAX_PAYLOAD:(i + 1) * MAX_PAYLOAD]
        out.append(struct.pack("!IIII", len(chunk), status, i, count)
                   + hashlib.sha256(chunk).digest() + total + chunk)
    random.shuffle(out)
    return out


class Handler(socketserver.BaseRequestHandler):
    def send(self, status, payload):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        for block in blocks(status, payload):
            self.request.sendall(block)

    def handle(self):
        try:
            self.serve()
        except OSError:
            pass  # the client went away; nobody left to tell

    def serve(self):
        # The reference's defect: one recv, whatever arrived so far.
        msg = self.request.recv(MSG_MAX)
        if len(msg) < REQUEST_HEADER:
            self.send(MALFORMED, "Malformed request. Length of request does not match given length")
            return
        try:
            name = msg[:16].rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            self.send(MALFORMED, "Malformed request. Username is not valid UTF-8")
            return
        sig = msg[16:48]
        length = struct.unpack("!I", msg[48:52])[0]
        body = msg[REQUEST_HEADER:REQUEST_HEADER + length]
        if len(body) != length:
            self.send(MALFORMED, "Malformed request. Length of request does not match given length")
            # The reference's defect: no return here, so a second reply follows.
        if not name:
            self.send(BAD_REQUEST, "Invalid request. Username cannot be empty")
        elif not body:
            self.register(name, sig)
        else:
            self.retrieve(name, sig, body)

    def register(self, name, sig):
        if self.server.users.register(name, sig):
            self.send(OK, "New user %s registered." % name)
        else:
            self.send(USER_EXISTS, "Cannot register user under name '%s', already exists" % name)

    def retrieve(self, name, sig, body):
        ok = self.server.users.check(name, sig)
        if ok is None:
            self.send(USER_MISSING, "Cannot serve non-registered user '%s'" % name)
            return
        if not ok:
            self.send(INVALID_LOGIN, "Signature hashes do not match for %s." % name)
            return
        try:
            path = body.decode("utf-8")
        except UnicodeDecodeError as e:
            self.send(OTHER, str(e))
            return
        if path.startswith("/"):
            path = path[1:]
        # The reference's defect: nothing keeps the path inside the root.
        full = os.path.join(self.server.root, path)
        if not os.path.exists(full):
            self.send(BAD_REQUEST, "Requested content %s does not exist" % path)
            return
        if not os.path.isfile(full):
            self.send(BAD_REQUEST, "Request URI %s is not a file" % path)
            return
        try:
            # The reference's defect: text mode. Universal newlines turn CRLF
            # (and a lone CR) into LF; bytes that are not UTF-8 raise.
            with open(full, "r", encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            self.send(OTHER, str(e))
            return
        # The reference's defect: an empty file gives zero blocks, no reply.
        self.send(OK, text.encode("utf-8"))


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    # A connection that never sends blocks its thread for ever (the
    # reference has no timeouts); shutting down must not wait for it.
    block_on_close = False


def main():
    ap = argparse.ArgumentParser(description="Re-creation of the course's reference server (test fixture).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=23456)
    ap.add_argument("--root", default=".", help="folder to serve (default: the current one)")
    args = ap.parse_args()

    # No Python signal handler: one that raises SystemExit can fire inside
    # threading's lock juggling (Thread.start, as a connection comes in),
    # where socketserver catches the wreckage and serves on. Instead every
    # thread blocks SIGTERM and SIGINT, and the main thread waits for them.
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    server = Server((args.host, args.port), Handler)
    server.users = Users()
    server.root = args.root
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    print("listening on %d" % server.server_address[1], flush=True)
    signal.sigwait(stop)
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
