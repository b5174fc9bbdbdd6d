// Package password hashes users' passwords and verifies them, bounding how
// many hash computations run at once.
//
// New hashes are Argon2id (RFC 9106) in the PHC string format,
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// with the salt (16 bytes) and the key (32 bytes) in standard base64
// without padding. The parameters are written into the hash, so raising
// them later leaves existing hashes valid: Verify reports that such a hash
// needs rehashing, and the caller replaces it after the next successful
// login. The default, m=19 MiB (19456 KiB), t=2 and p=1, is also the minimum
// that a Hasher accepts.
//
// Verify also checks the hashes that Django writes, so that users moved from
// a Django site log in with their old passwords:
//
//	pbkdf2_sha256$<iterations>$<salt>$<key>     PBKDF2-HMAC-SHA256 (RFC 8018), key in padded base64
//	pbkdf2_sha1$<iterations>$<salt>$<key>       PBKDF2-HMAC-SHA1
//	argon2$argon2id$v=19$m=…,t=…,p=…$<salt>$<key>  Argon2id (or Argon2i) in PHC form after "argon2"
//	bcrypt_sha256$$2b$<cost>$<salt and hash>    bcrypt of the hex SHA-256 of the password
//
// A Django password starting with "!" (set_unusable_password) and an empty
// one never verify. Every Django hash needs rehashing, and so does an Argon2i
// PHC string ("$argon2i$…"), which Verify also reads.
//
// # Bounds on stored hashes
//
// A stored hash carries its own cost, and imported hashes come from
// elsewhere, so Verify refuses (with ErrParams) costs that would let one
// login attempt hold a core for more than about two seconds or take more
// than 256 MiB: Argon2 memory above 256 MiB, time above 10 passes, more than
// 16 lanes, or memory × time above 1 GiB; PBKDF2 above 10,000,000
// iterations; bcrypt above cost 15. Django's defaults are well inside
// (Argon2 m=100 MiB, t=2, p=8; PBKDF2 260,000 iterations in Django 3.2 and
// 1,000,000 in 5.2; bcrypt cost 12). A hash string longer than 1024 bytes is
// malformed.
//
// # Concurrency and timing
//
// A Hasher runs at most Config.Concurrency hash computations at once (each
// Argon2 computation holds its memory until it ends); a caller that waits
// more than two seconds for a turn gets ErrBusy, which the token endpoint
// answers with temporarily_unavailable.
//
// Verify computes one hash whatever it is given: for an unusable or
// malformed stored hash, one at the target parameters, and DummyVerify does
// the same for a user that does not exist, so that an unknown username
// costs the same time as a known one whose hash is current. A hash at
// another cost (a user not yet moved from Django) takes its own time until
// it is replaced.
//
// Errors never contain a password or a hash.
package password
