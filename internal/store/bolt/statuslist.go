package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/issuer-oauth/issuer/internal/store"
)

// The Token Status Lists live in three buckets, swept at their expiry:
//
//	status_lists   list id → statusRecord (JSON)
//	status_bits    list id → 8-byte big-endian exp (Unix ms), then the bits
//	status_owners  owner NUL list id → ownerRecord (JSON)
//
// The bits are in their own record so that a lease does not rewrite them.
var (
	bucketStatusLists  = []byte("status_lists")
	bucketStatusBits   = []byte("status_bits")
	bucketStatusOwners = []byte("status_owners")
)

// statusRecord is the state of a list but its bits.
type statusRecord struct {
	Next    int64     `json:"next"`
	Exp     time.Time `json:"exp"`
	Version int64     `json:"ver"`
}

// ownerRecord is the ranges leased to one owner in one list.
type ownerRecord struct {
	Exp    time.Time  `json:"exp"`
	Ranges [][2]int64 `json:"ranges"` // first, n
}

func statusOwnerKey(owner, list string) []byte { return []byte(owner + "\x00" + list) }

// statusExpiry is the expiry of a status_lists or status_owners record.
func statusExpiry(v []byte) (time.Time, error) {
	var r struct {
		Exp time.Time `json:"exp"`
	}
	err := json.Unmarshal(v, &r)
	return r.Exp, err
}

// statusBitsExpiry is the expiry of a status_bits record.
func statusBitsExpiry(v []byte) (time.Time, error) {
	if len(v) < 8 {
		return time.Time{}, errors.New("status bits record shorter than its expiry")
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(v))).UTC(), nil
}

// liveStatus reads the record of a live list; store.ErrNotFound if there
// is none, found reports whether a retired one is still on file.
func (s *Store) liveStatus(tx *bbolt.Tx, id string) (r statusRecord, onFile bool, err error) {
	switch err := get(tx.Bucket(bucketStatusLists), id, &r); {
	case errors.Is(err, store.ErrNotFound):
		return r, false, err
	case err != nil:
		return r, false, err
	case expired(r.Exp, s.now()):
		return r, true, store.ErrNotFound
	}
	return r, true, nil
}

// setBits sets the bits of idx in the bits record of list, which expires at
// exp, and returns how many changed.
func setBits(tx *bbolt.Tx, list string, exp time.Time, idx func(yield func(int64) bool)) (int, error) {
	b := tx.Bucket(bucketStatusBits)
	old := b.Get([]byte(list))
	rec := make([]byte, 8, max(len(old), 8))
	binary.BigEndian.PutUint64(rec, uint64(exp.UnixMilli()))
	if len(old) > 8 {
		rec = append(rec, old[8:]...)
	}
	changed := 0
	for i := range idx {
		byteAt := 8 + int(i/8)
		for len(rec) <= byteAt {
			rec = append(rec, 0)
		}
		mask := byte(1) << (i % 8)
		if rec[byteAt]&mask == 0 {
			rec[byteAt] |= mask
			changed++
		}
	}
	if changed == 0 {
		return 0, nil
	}
	if err := b.Put([]byte(list), rec); err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	return changed, nil
}

// LeaseStatus hands out l.N indices of list l.List in one group-committed
// transaction.
func (s *Store) LeaseStatus(ctx context.Context, l store.StatusLease) (int64, error) {
	const op = "lease status indices of list"
	if l.N < 1 || l.List == "" {
		return 0, opError(op, l.List, errors.New("a lease needs a list id and at least one index"))
	}
	var first int64
	err := s.write(ctx, op, l.List, func(tx *bbolt.Tx) error {
		r, onFile, err := s.liveStatus(tx, l.List)
		switch {
		case errors.Is(err, store.ErrNotFound) && onFile:
			return err // retired: its id is never used again
		case errors.Is(err, store.ErrNotFound):
			r = statusRecord{}
		case err != nil:
			return err
		}
		if r.Next+l.N > l.Capacity {
			return store.ErrFull
		}
		first = r.Next
		r.Next += l.N
		if l.Until.After(r.Exp) {
			r.Exp = l.Until.Truncate(time.Millisecond)
			bits := tx.Bucket(bucketStatusBits)
			if old := bits.Get([]byte(l.List)); old != nil {
				rec := bytes.Clone(old)
				binary.BigEndian.PutUint64(rec, uint64(r.Exp.UnixMilli()))
				if err := bits.Put([]byte(l.List), rec); err != nil {
					return fmt.Errorf("write: %w", err)
				}
			}
		}
		owners := tx.Bucket(bucketStatusOwners)
		for _, o := range l.Owners {
			var or ownerRecord
			if err := get(owners, string(statusOwnerKey(o, l.List)), &or); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			or.Exp = r.Exp
			or.Ranges = append(or.Ranges, [2]int64{first, l.N})
			if err := put(owners, string(statusOwnerKey(o, l.List)), or); err != nil {
				return err
			}
		}
		return put(tx.Bucket(bucketStatusLists), l.List, r)
	})
	return first, err
}

// SetStatus sets bits of a live list in one group-committed transaction.
func (s *Store) SetStatus(ctx context.Context, list string, idx []int64) error {
	const op = "set status in list"
	for _, i := range idx {
		if i < 0 {
			return opError(op, list, fmt.Errorf("negative index %d", i))
		}
	}
	return s.write(ctx, op, list, func(tx *bbolt.Tx) error {
		r, _, err := s.liveStatus(tx, list)
		if err != nil {
			return err
		}
		n, err := setBits(tx, list, r.Exp, func(yield func(int64) bool) {
			for _, i := range idx {
				if !yield(i) {
					return
				}
			}
		})
		if err != nil || n == 0 {
			return err
		}
		r.Version++
		return put(tx.Bucket(bucketStatusLists), list, r)
	})
}

// SetOwnerStatus sets the owner's bits in every live list in one
// transaction.
func (s *Store) SetOwnerStatus(ctx context.Context, owner string) (int, error) {
	const op = "set status of owner"
	var total int
	err := s.update(ctx, op, owner, func(tx *bbolt.Tx) error {
		total = 0
		prefix := statusOwnerKey(owner, "")
		c := tx.Bucket(bucketStatusOwners).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			list := string(k[len(prefix):])
			r, _, err := s.liveStatus(tx, list)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			var or ownerRecord
			if err := json.Unmarshal(v, &or); err != nil {
				return fmt.Errorf("decode %q: %w", k, err)
			}
			n, err := setBits(tx, list, r.Exp, func(yield func(int64) bool) {
				for _, rg := range or.Ranges {
					for i := rg[0]; i < rg[0]+rg[1]; i++ {
						if !yield(i) {
							return
						}
					}
				}
			})
			if err != nil {
				return err
			}
			if n > 0 {
				r.Version++
				if err := put(tx.Bucket(bucketStatusLists), list, r); err != nil {
					return err
				}
			}
			total += n
		}
		return nil
	})
	return total, err
}

// GetStatusList reads a live list.
func (s *Store) GetStatusList(ctx context.Context, id string) (store.StatusList, error) {
	var out store.StatusList
	err := s.view(ctx, "get status list", id, func(tx *bbolt.Tx) error {
		r, _, err := s.liveStatus(tx, id)
		if err != nil {
			return err
		}
		out = store.StatusList{ID: id, Size: r.Next, Version: r.Version, ExpiresAt: r.Exp}
		if v := tx.Bucket(bucketStatusBits).Get([]byte(id)); len(v) > 8 {
			out.Bits = bytes.Clone(v[8:])
		}
		return nil
	})
	return out, err
}

// ListStatusLists returns the live lists ordered by id.
func (s *Store) ListStatusLists(ctx context.Context) ([]store.StatusList, error) {
	var out []store.StatusList
	err := s.view(ctx, "list status lists", "", func(tx *bbolt.Tx) error {
		out = out[:0]
		now := s.now()
		return tx.Bucket(bucketStatusLists).ForEach(func(k, v []byte) error {
			var r statusRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode %q: %w", k, err)
			}
			if !expired(r.Exp, now) {
				out = append(out, store.StatusList{ID: string(k), Size: r.Next, Version: r.Version, ExpiresAt: r.Exp})
			}
			return nil
		})
	})
	return out, err
}
