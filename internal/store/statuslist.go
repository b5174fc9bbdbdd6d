package store

import (
	"errors"
	"time"
)

// ErrFull means a Token Status List has no room left for the indices asked
// for; nothing was handed out, and the caller moves on to another list.
var ErrFull = errors.New("store: status list full")

// StatusLease asks LeaseStatus for a block of consecutive indices of a
// Token Status List (draft-ietf-oauth-status-list): the positions of the
// status bits of the access tokens that the caller will issue, one index per
// token.
type StatusLease struct {
	// List is the id of the list. A list comes into being with its first
	// lease.
	List string
	// N is the number of indices (at least 1).
	N int64
	// Capacity is the most indices the list may hand out: a lease that
	// would go past it fails with ErrFull.
	Capacity int64
	// Owners name whose tokens the indices are for (for example
	// "client:" + client id and "user:" + user id), so that
	// SetOwnerStatus can invalidate them all.
	Owners []string
	// Until is the latest expiry of a token that will carry one of the
	// indices. The list, and what it records of its owners, stays live
	// until the latest Until of its leases, and disappears after it.
	Until time.Time
}

// StatusList is the state of one Token Status List of one bit per token:
// 0 valid, 1 invalid.
type StatusList struct {
	ID string
	// Size is the number of indices handed out so far.
	Size int64
	// Bits holds the status of index i in bit i%8 (the least significant
	// bit first) of byte i/8, as the draft's byte array does. It may be
	// shorter than Size bits: the missing bits are 0.
	Bits []byte
	// Version changes whenever a bit changes.
	Version int64
	// ExpiresAt is when the list retires: the latest Until of its leases.
	ExpiresAt time.Time
}

// StatusRef is the entry of one access token in a Token Status List.
type StatusRef struct {
	List string    `json:"list"`
	Idx  int64     `json:"idx"`
	Exp  time.Time `json:"exp"` // the token's expiry
}

// LiveStatus returns the entries of refs that have not expired at now,
// then add: how a family keeps the entries of its live access tokens.
func LiveStatus(refs []StatusRef, now time.Time, add ...StatusRef) []StatusRef {
	var out []StatusRef
	for _, r := range refs {
		if now.Before(r.Exp) {
			out = append(out, r)
		}
	}
	return append(out, add...)
}
