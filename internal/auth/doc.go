// Package auth registers and authenticates larder's users, and stores their
// password hashes as OWASP's Password Storage Cheat Sheet recommends.
//
// Clients never send a password. Over the course protocol they send a
// signature derived from it, SHA-256(password ‖ client salt), with every
// request; over LNP/1 a channel-bound proof (see LNP/1 credentials). The server stores a
// slow hash of the signature: argon2id over HMAC-SHA256(pepper, signature)
// with a random per-user salt, as a PHC string that records the algorithm,
// its parameters and the pepper's ID. The pepper is a secret key kept in a
// file apart from the database (Peppers, LoadPeppers). Hashes are computed
// in a bounded pool (Hasher), and successful checks are remembered for a few
// minutes (Cache) so that the slow hash does not run on every request.
//
// # LNP/1 credentials
//
// LNP/1's channel-bound login (docs/PROTOCOL.md, "Logging in") needs a
// second credential per account, larder.User.LNPCredential, made by the
// client from the password (not from the signature) with argon2id at the
// policy and a salt of its own. The server keeps only SCRAM's StoredKey
// and ServerKey, sealed with AES-256-GCM under a key derived from the
// current pepper (lnpcred.go):
//
//	$lnp-scram$v=1$m=DEC,t=DEC,p=DEC[,keyid=B64]$B64(salt)$B64(sealed)
//
// StartLNP and FinishLNP check a proof with a few HMACs; EnrollLNP stores
// a credential; LoginSignature is the course signature's login over LNP/1,
// taken only from an account without a credential. A name without one
// gets a challenge with a salt derived from the mock key (SetMockKey), so
// that neither the answer nor its time tells which names exist.
//
// # Policy and upgrades
//
// A Hasher's parameters and current pepper are the policy: Hash makes
// hashes by it. Verify accepts every stored format below, so accounts
// imported from other systems and hashes made under an older policy keep
// working. After a successful check, NeedsRehash tells whether the stored
// hash differs from the policy, and the caller replaces it with a fresh
// Hash of the signature it has just checked. Wrap protects a weak stored
// hash at once, without the signature, by hashing its digest again with
// argon2id; the account is unwrapped at its next login. Calibrate proposes
// parameters for the machine.
//
// # Stored formats
//
// B64 is the PHC string format's base64: the standard alphabet without
// padding, unused bits zero. DEC is a decimal without sign or leading zero.
// Every format is parsed strictly, so a hash has exactly one encoding.
//
//	argon2id, made by Hash; keyid is the B64 of the pepper's ID:
//	    $argon2id$v=19$m=DEC,t=DEC,p=DEC[,keyid=B64]$B64(salt)$B64(hash)
//	    salt 8 to 48 bytes, hash 12 to 64 (Hash makes 16 and 32); the input
//	    is HMAC-SHA256(pepper, signature), or the signature without a keyid
//	bcrypt, imported; CC is the cost, 04 to 31; bcrypt's own base64:
//	    $2a$CC$<22 salt characters><31 hash characters>   (also $2b$, $2y$)
//	PBKDF2-HMAC-SHA256, imported, in the PHC form (l defaults to 32):
//	    $pbkdf2-sha256$i=DEC[,l=DEC]$B64(salt)$B64(hash)
//	    salt 1 to 64 bytes, hash l bytes, 12 to 64
//	or in passlib's pbkdf2_sha256 form, AB64 being B64 with '.' for '+':
//	    $pbkdf2-sha256$DEC$AB64(salt)$AB64(hash)
//	    salt 1 to 64 bytes, hash 32
//	course-sha256, imported from the course's reference server, which
//	stores SHA-256(raw signature ‖ server salt):
//	    $course-sha256$B64(salt)$B64(hash)
//	    salt 1 to 64 bytes, hash 32
//	wrapped, made by Wrap (wrap.go): the stub is the inner hash without
//	its last "$..." field (bcrypt: its first 29 characters), the outer hash
//	is argon2id over HMAC-SHA256(pepper, inner digest):
//	    $wrap$B64(stub)$argon2id$v=19$m=DEC,t=DEC,p=DEC[,keyid=B64]$B64(salt)$B64(hash)
//
// # The input of imported hashes
//
// Imported bcrypt and PBKDF2 hashes are hashes of the signature written as
// 64 lowercase hexadecimal characters, not of its 32 raw bytes: a raw digest
// holds NUL bytes, which C bcrypt and pyca/bcrypt refuse or stop at, and 64
// characters fit within bcrypt's 72-byte limit. A system that exports
// accounts to larder must have hashed exactly that string. course-sha256
// hashes take the raw signature, as the course's server does.
//
// # Limits
//
// A stored hash is a row of a database that may be corrupted or hostile, so
// Verify refuses (EINTERNAL) to compute one that asks for more than a few
// seconds of work: argon2id with more than 256 MiB or 16 passes (or the
// policy's own, if higher), bcrypt above cost 16, PBKDF2 above 10,000,000
// iterations. Those limits also apply to both halves of a wrapped hash.
package auth
