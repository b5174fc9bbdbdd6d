package password

import "errors"

var (
	// ErrBusy is returned when a computation waited too long for its turn;
	// the request should be answered with temporarily_unavailable.
	ErrBusy = errors.New("password: every hashing slot is busy")

	// ErrUnknownFormat is returned for a stored hash in a format that
	// Verify does not know.
	ErrUnknownFormat = errors.New("password: unknown hash format")

	// ErrMalformed is returned for a stored hash in a known format that does
	// not parse.
	ErrMalformed = errors.New("password: malformed hash")

	// ErrParams is returned for hash parameters outside the accepted
	// bounds: a stored hash that would cost too much to verify, or a
	// configuration below the minimum.
	ErrParams = errors.New("password: hash parameters out of bounds")
)
