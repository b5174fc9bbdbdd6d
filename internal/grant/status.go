package grant

import (
	"context"
	"errors"
	"time"

	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/statuslist"
	"github.com/issuer-oauth/issuer/internal/store"
)

// StatusLists gives access tokens their status-list entries and sets the
// bits of revoked ones (statuslist.Lists): see docs/status-list.md.
type StatusLists interface {
	Assign(ctx context.Context, o statuslist.Owner) (*keys.Status, store.StatusRef, error)
	Revoke(ctx context.Context, refs []store.StatusRef) error
	RevokeToken(ctx context.Context, st *keys.Status) error
}

// assignStatus returns the status claim of an access token of client c for
// is, expiring at exp, and its entry for the token's family; nothing when
// status lists are off.
func (h *Handler) assignStatus(ctx context.Context, c store.Client, is issue, exp time.Time) (*keys.Status, []store.StatusRef, error) {
	if h.cfg.StatusLists == nil {
		return nil, nil, nil
	}
	o := statuslist.Owner{ClientID: c.ID, ClientVersion: c.UpdatedAt.UnixNano()}
	if is.user != nil {
		o.UserID, o.UserVersion = is.user.ID, is.user.Generation
	}
	st, ref, err := h.cfg.StatusLists.Assign(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	ref.Exp = exp
	return st, []store.StatusRef{ref}, nil
}

// revokeFamilyStatus sets the bits of the access tokens of a family that
// has just been revoked (RFC 7009, reuse detection, its user's end).
func (h *Handler) revokeFamilyStatus(ctx context.Context, id string) error {
	if h.cfg.StatusLists == nil {
		return nil
	}
	f, err := h.st.GetFamily(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // expired: so have its access tokens
	}
	if err != nil {
		return err
	}
	return h.cfg.StatusLists.Revoke(ctx, f.Status)
}

// endFamily revokes a family and the access tokens it issued; a family
// that is gone already is no error.
func (h *Handler) endFamily(ctx context.Context, id string) error {
	if err := h.st.RevokeFamily(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	return h.revokeFamilyStatus(ctx, id)
}
