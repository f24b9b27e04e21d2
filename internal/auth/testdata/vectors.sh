#!/usr/bin/env bash
# Makes the known vectors of vectors_test.go with implementations independent
# of larder's: Python's standard library (hashlib, hmac, base64), Debian's
# python3-bcrypt and python3-passlib, and the reference C implementation of
# Argon2 (Debian package argon2), which reads the secret as raw bytes from
# standard input and takes the salt as the bytes of its first argument.
#
#	apt-get install -y argon2 python3-bcrypt python3-passlib
#	bash internal/auth/testdata/vectors.sh
#
# The signature is the course client's for "hunter2": SHA-256 of the
# password followed by the course client's fixed 64-character salt. Pepper
# p1 is the bytes 0..31, pepper p2 the bytes 32..63. Imported bcrypt and
# PBKDF2 hashes take the signature as 64 lowercase hex characters.
set -euo pipefail
py=/usr/bin/python3 # Debian's, which has the python3-* packages
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# sig, hexsig and the HMACs, as Python computes them.
$py - <<'PY' >"$tmp/vectors.env"
import hashlib, hmac
sig = hashlib.sha256(b"hunter2" + (b"0123456789" * 7)[:64]).digest()
p1, p2 = bytes(range(32)), bytes(range(32, 64))
print("SIGHEX=" + sig.hex())
print("HMAC_P1_SIG=" + hmac.new(p1, sig, hashlib.sha256).hexdigest())
print("HMAC_P2_SIG=" + hmac.new(p2, sig, hashlib.sha256).hexdigest())
PY
. "$tmp/vectors.env"
unhex() { $py -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$1"; }

echo "== argon2id, pepper p1: argon2id(HMAC-SHA256(p1, sig)), argon2 CLI"
unhex "$HMAC_P1_SIG" | argon2 larder-salt-0002 -id -t 2 -k 256 -p 1 -l 32 -e
echo "== argon2id, pepper p2, two lanes"
unhex "$HMAC_P2_SIG" | argon2 larder-salt-0003 -id -t 1 -k 512 -p 2 -l 32 -e

echo "== bcrypt of the hex signature, python3-bcrypt"
$py - "$SIGHEX" <<'PY'
import sys, bcrypt
pw = sys.argv[1].encode()
for prefix, cost in (("2b", 4), ("2b", 5), ("2a", 4), ("2y", 4)):
    # A fixed salt, so that the script is repeatable: 22 characters of
    # bcrypt's base64, the last one canonical (its low 4 bits zero).
    salt = ("$%s$%02d$" % (prefix, cost)).encode() + b"larderBcryptVectorSal."
    print(bcrypt.hashpw(pw, salt).decode())
PY

echo "== PBKDF2-HMAC-SHA256 of the hex signature, hashlib, PHC form"
$py - "$SIGHEX" <<'PY'
import sys, hashlib, base64
pw = sys.argv[1].encode()
b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
for salt, i, l, show_l in ((b"larder-pbkdf2-01", 1000, 32, False), (b"larder-pbkdf2-02", 2000, 64, True), (b"larder-pbkdf2-03", 1500, 32, True)):
    dk = hashlib.pbkdf2_hmac("sha256", pw, salt, i, l)
    params = "i=%d" % i + (",l=%d" % l if show_l else "")
    print("$pbkdf2-sha256$%s$%s$%s" % (params, b64(salt), b64(dk)))
PY

echo "== PBKDF2-HMAC-SHA256 of the hex signature, passlib's form"
$py - "$SIGHEX" <<'PY'
import sys
from passlib.hash import pbkdf2_sha256
print(pbkdf2_sha256.using(rounds=1000, salt=b"larder-passlib-1").hash(sys.argv[1]))
PY

echo "== course-sha256: SHA-256(raw signature || server salt), hashlib"
$py - "$SIGHEX" <<'PY'
import sys, hashlib, base64
sig = bytes.fromhex(sys.argv[1])
b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
for salt in (b"course-salt-0001", bytes(range(200, 232)), b"x"):
    print("$course-sha256$%s$%s" % (b64(salt), b64(hashlib.sha256(sig + salt).digest())))
PY

echo "== wrapped: argon2id(HMAC-SHA256(p1, inner digest)), argon2 CLI"
# The inner digests, recomputed here from the vectors above: bcrypt's 23
# bytes decoded from its 31-character hash; PBKDF2's and course-sha256's
# raw digests.
$py - "$SIGHEX" <<'PY' >"$tmp/wrap.env"
import sys, hashlib, hmac, base64, bcrypt
sig = bytes.fromhex(sys.argv[1]); pw = sys.argv[1].encode()
p1 = bytes(range(32))
bc = bcrypt.hashpw(pw, b"$2b$04$larderBcryptVectorSal.").decode()
std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
bca = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
h31 = bc[29:].translate(str.maketrans(bca, std))
d_bcrypt = base64.b64decode(h31 + "=")
assert len(d_bcrypt) == 23
d_pbkdf2 = hashlib.pbkdf2_hmac("sha256", pw, b"larder-pbkdf2-01", 1000, 32)
d_course = hashlib.sha256(sig + b"course-salt-0001").digest()
for name, d in (("BCRYPT", d_bcrypt), ("PBKDF2", d_pbkdf2), ("COURSE", d_course)):
    print("W_%s=%s" % (name, hmac.new(p1, d, hashlib.sha256).hexdigest()))
PY
. "$tmp/wrap.env"
for v in W_BCRYPT W_PBKDF2 W_COURSE; do
  echo "-- $v"
  unhex "${!v}" | argon2 larder-wrap-salt -id -t 2 -k 256 -p 1 -l 32 -e
done
