package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/issuer-oauth/issuer/internal/store"
)

// Reload reads the keys again: from the store (another instance may have
// rotated them), or from Config.Dir, where it rereads every file even if
// none seems to have changed (what a reload request to Watch does). A
// failed reload keeps the loaded keys.
func (k *Keys) Reload(ctx context.Context) error {
	k.opMu.Lock()
	defer k.opMu.Unlock()
	if k.files != nil {
		return k.reloadFiles(true)
	}
	return k.reloadStore(ctx)
}

func (k *Keys) reloadStore(ctx context.Context) error {
	stored, err := k.st.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	return k.load(stored)
}

// Maintain runs one round of key maintenance, as Watch does on every tick.
// With keys in the store it runs the rotation schedule: it adds the next
// key once the current one is within the publish lead of the end of its
// rotation period, deletes retired keys whose tokens have all expired, and
// reloads. Any number of instances may run it at once: the store adds at
// most one next key (AddNextKey), and a key deleted by another instance
// meanwhile is no error. With Config.Dir it rereads the directory when a
// file was added, removed or changed.
func (k *Keys) Maintain(ctx context.Context, log *slog.Logger) error {
	k.opMu.Lock()
	defer k.opMu.Unlock()
	if k.files != nil {
		return k.reloadFiles(false)
	}
	stored, err := k.st.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	if len(stored) == 0 {
		return errors.New("keys: the store holds no signing key")
	}
	now := k.clock()

	if next, due := k.nextDue(stored, now); due {
		sk, err := k.generate(k.cfg.Alg, next)
		if err != nil {
			return err
		}
		after, err := k.st.AddNextKey(ctx, sk, now)
		if err != nil {
			return fmt.Errorf("keys: add the next signing key: %w", err)
		}
		for _, a := range after {
			if a.ID == sk.ID {
				log.InfoContext(ctx, "next signing key published", "kid", sk.ID, "alg", sk.Alg, "not_before", sk.NotBefore)
			}
		}
		stored = after
	}

	kept := stored[:0:0]
	for i, sk := range stored {
		if i+1 < len(stored) && !now.Before(removeAt(stored[i+1].NotBefore, k.cfg.AccessTTL)) {
			err := k.st.DeleteKey(ctx, sk.ID)
			switch {
			case err == nil:
				log.InfoContext(ctx, "retired signing key removed: every token it signed has expired", "kid", sk.ID)
				continue
			case errors.Is(err, store.ErrNotFound):
				continue // another instance removed it
			default:
				return fmt.Errorf("keys: remove retired signing key %s: %w", sk.ID, err)
			}
		}
		kept = append(kept, sk)
	}
	return k.load(kept)
}

// removeAt is when a key whose successor starts signing at successor may
// leave the JWK Set: every token it signed has expired by then.
func removeAt(successor time.Time, accessTTL time.Duration) time.Time {
	return successor.Add(accessTTL + RetentionMargin)
}

// nextDue returns the NotBefore of the next scheduled key, and whether it
// must be added now: scheduled rotation is on, the current key is not an
// HS256 one, no next key is waiting, and the current key's period ends
// within the publish lead. A key that is due late (no instance ran for a
// while) still gets the full lead.
func (k *Keys) nextDue(stored []store.Key, now time.Time) (time.Time, bool) {
	if k.cfg.RotationPeriod <= 0 || k.cfg.Alg == "HS256" {
		return time.Time{}, false
	}
	var cur *store.Key
	for i := range stored {
		if stored[i].NotBefore.After(now) {
			return time.Time{}, false // a next key is waiting
		}
		cur = &stored[i]
	}
	if cur == nil || cur.Alg == "HS256" {
		return time.Time{}, false
	}
	lead := k.PublishLead()
	end := cur.NotBefore.Add(k.cfg.RotationPeriod)
	if now.Before(end.Add(-lead)) {
		return time.Time{}, false
	}
	return later(end, now.Add(lead)), true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Rotate adds a new key of the configured algorithm that signs at once
// (emergency rotation). Older keys stay published until the tokens they
// signed have expired; a next key that was waiting stays next and takes
// over at its NotBefore.
func (k *Keys) Rotate(ctx context.Context) (KeyInfo, error) {
	if k.files != nil {
		return KeyInfo{}, ErrFileKeys
	}
	k.opMu.Lock()
	defer k.opMu.Unlock()
	return k.rotate(ctx)
}

func (k *Keys) rotate(ctx context.Context) (KeyInfo, error) {
	stored, err := k.st.ListKeys(ctx)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("keys: list signing keys: %w", err)
	}
	// The new key must be strictly the newest of the keys that already
	// sign, or "current" would be ambiguous between keys that start in
	// the same millisecond; keys still waiting to sign stay after it.
	at := k.clock().UTC().Truncate(time.Millisecond)
	for _, sk := range stored {
		if !sk.NotBefore.After(at) && !sk.NotBefore.Before(at) {
			at = at.Add(time.Millisecond)
		}
	}
	sk, err := k.generate(k.cfg.Alg, at)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := k.st.AddKey(ctx, sk); err != nil {
		return KeyInfo{}, fmt.Errorf("keys: store new key: %w", err)
	}
	// When at was pushed past now (a key started in this millisecond),
	// this instance treats at as reached, so that the new key signs at once.
	k.mu.Lock()
	if k.floor.Before(sk.NotBefore) {
		k.floor = sk.NotBefore
	}
	k.mu.Unlock()
	if err := k.reloadStore(ctx); err != nil {
		return KeyInfo{}, err
	}
	return k.info(sk.ID)
}

// Schedule adds a key of the configured algorithm that starts signing at
// notBefore, which must be at least the publish lead from now: a routine
// rotation by hand, for HS256 keys (whose secret resource APIs must have
// before it signs) or when scheduled rotation is off. It fails with
// ErrNextPending when a next key is already waiting.
func (k *Keys) Schedule(ctx context.Context, notBefore time.Time) (KeyInfo, error) {
	if k.files != nil {
		return KeyInfo{}, ErrFileKeys
	}
	k.opMu.Lock()
	defer k.opMu.Unlock()
	now := k.clock()
	if notBefore.Before(now.Add(k.PublishLead())) {
		return KeyInfo{}, ErrTooSoon
	}
	sk, err := k.generate(k.cfg.Alg, notBefore)
	if err != nil {
		return KeyInfo{}, err
	}
	after, err := k.st.AddNextKey(ctx, sk, now)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("keys: store the next key: %w", err)
	}
	if err := k.load(after); err != nil {
		return KeyInfo{}, err
	}
	if _, ok := k.loaded().byKid[sk.ID]; !ok {
		return KeyInfo{}, ErrNextPending
	}
	return k.info(sk.ID)
}

// Revoke removes the key kid at once: it leaves the JWK Set, and every
// token it signed stops being valid here (introspection, revocation) at
// once and for resource APIs once their cached JWK Set expires. When kid
// is the current key, a new key is added first and signs at once. It
// returns the revoked key and the key that signs afterwards;
// ErrUnknownKey when there is no such key.
func (k *Keys) Revoke(ctx context.Context, kid string) (revoked, current KeyInfo, err error) {
	if k.files != nil {
		return KeyInfo{}, KeyInfo{}, ErrFileKeys
	}
	k.opMu.Lock()
	defer k.opMu.Unlock()
	if err := k.reloadStore(ctx); err != nil {
		return KeyInfo{}, KeyInfo{}, err
	}
	if revoked, err = k.info(kid); err != nil {
		return KeyInfo{}, KeyInfo{}, err
	}
	if revoked.State == StateCurrent {
		if _, err := k.rotate(ctx); err != nil {
			return KeyInfo{}, KeyInfo{}, err
		}
	}
	if err := k.st.DeleteKey(ctx, kid); err != nil && !errors.Is(err, store.ErrNotFound) {
		return KeyInfo{}, KeyInfo{}, fmt.Errorf("keys: delete key %s: %w", kid, err)
	}
	if err := k.reloadStore(ctx); err != nil {
		return KeyInfo{}, KeyInfo{}, err
	}
	current, err = k.info(k.current().kid)
	return revoked, current, err
}

// info is the KeyInfo of kid now.
func (k *Keys) info(kid string) (KeyInfo, error) {
	for _, in := range k.List() {
		if in.ID == kid {
			return in, nil
		}
	}
	return KeyInfo{}, ErrUnknownKey
}

// Watch keeps the keys up to date until ctx ends: it runs Maintain every
// interval (and once at the start), and runs Reload at once whenever
// changes fires (a store that tells of key changes made by other
// instances) and whenever reload fires (an operator's request: with
// Config.Dir, the files are reread). Either channel may be nil. A failed
// round keeps the keys it had and is logged.
func (k *Keys) Watch(ctx context.Context, interval time.Duration, changes, reload <-chan struct{}, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	before, set := k.current().kid, kidsOf(k.loaded())
	run := func(what string, f func() error) {
		if err := f(); err != nil {
			if ctx.Err() == nil {
				log.WarnContext(ctx, what+" failed; keeping the loaded signing keys", "err", err)
			}
			return
		}
		if now := kidsOf(k.loaded()); now != set {
			log.InfoContext(ctx, "signing keys changed", "kids", now)
			set = now
		}
		if cur := k.current().kid; cur != before {
			log.InfoContext(ctx, "signing key changed", "kid", cur)
			before = cur
		}
	}
	maintain := func() error { return k.Maintain(ctx, log) }
	reloadNow := func() error { return k.Reload(ctx) }
	run("key maintenance", maintain)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			run("key maintenance", maintain)
		case <-changes:
			run("reloading signing keys", reloadNow)
		case <-reload:
			log.InfoContext(ctx, "reloading signing keys on request")
			run("reloading signing keys", reloadNow)
		}
	}
}

// kidsOf lists the kids of st, for the log.
func kidsOf(st *state) string {
	kids := make([]string, len(st.entries))
	for i, e := range st.entries {
		kids[i] = e.kid
	}
	return strings.Join(kids, ",")
}
