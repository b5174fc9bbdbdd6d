package password

import "fmt"

// Lengths of the salt and the key of the hashes a Hasher makes, in bytes.
const (
	saltLen = 16
	keyLen  = 32
)

// Params are the Argon2id parameters of the hashes a Hasher makes.
type Params struct {
	// Memory is the memory cost m, in KiB.
	Memory uint32
	// Time is the number of passes over the memory, t.
	Time uint32
	// Threads is the degree of parallelism p (lanes).
	Threads uint8
}

// DefaultParams returns m=19 MiB, t=2, p=1, the minimum that OWASP's
// Password Storage Cheat Sheet recommends for Argon2id and the minimum a
// Hasher accepts.
func DefaultParams() Params {
	return Params{Memory: 19 << 10, Time: 2, Threads: 1}
}

// Validate reports whether p is at least DefaultParams in each field and
// within the bounds Verify accepts from a stored hash.
func (p Params) Validate() error {
	d := DefaultParams()
	if p.Memory < d.Memory || p.Time < d.Time || p.Threads < d.Threads {
		return fmt.Errorf("%w: argon2id m=%d,t=%d,p=%d below the minimum m=%d,t=%d,p=%d",
			ErrParams, p.Memory, p.Time, p.Threads, d.Memory, d.Time, d.Threads)
	}
	return checkArgon(uint64(p.Memory), uint64(p.Time), uint64(p.Threads))
}

// String returns p as in a PHC string: "m=19456,t=2,p=1".
func (p Params) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads)
}
