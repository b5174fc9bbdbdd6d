package grant

import (
	"errors"
	"net/http"

	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/verify"
)

// DPoP at the token endpoint (RFC 9449 §5): a request may carry one DPoP
// proof header; its key's thumbprint becomes the cnf.jkt of the access
// token, and the response's token_type is DPoP. The proof checks of §4.3
// are verify.CheckDPoPProof's, the same that resource APIs run.

// dpopReplayPrefix namespaces the jtis of DPoP proofs in the store's
// single-use records (Store.UseOnce); the rest is the key's thumbprint
// and the jti, at most verify.MaxDPoPJTILen bytes.
const dpopReplayPrefix = "dpop:"

func errInvalidDPoPProof(desc string) *Error {
	return &Error{Code: "invalid_dpop_proof", Description: desc, Status: http.StatusBadRequest}
}

// errUseDPoPNonce asks for a proof with the nonce of the DPoP-Nonce
// header, which ServeHTTP sets on every response when nonces are on (RFC
// 9449 §8).
var errUseDPoPNonce = &Error{Code: "use_dpop_nonce", Description: "the DPoP proof must carry the nonce of the DPoP-Nonce response header", Status: http.StatusBadRequest}

// dpopKey checks the DPoP proof of a token request of client c, and
// returns the thumbprint of its key: "" when the request has no proof and
// the client need not send one. The proof's jti is used up only once
// everything else about the proof has been verified, so that a forged
// proof cannot use up a real one's, and before the grant runs, so that a
// replayed proof consumes no refresh token.
func (h *Handler) dpopKey(r *http.Request, c store.Client) (string, error) {
	vals := r.Header.Values("DPoP")
	switch {
	case len(vals) > 1:
		return "", errInvalidDPoPProof("the request carries more than one DPoP header")
	case len(vals) == 0 && c.DPoPBound:
		return "", errInvalidDPoPProof("the client's access tokens are DPoP-bound (dpop_bound_access_tokens): send a DPoP proof")
	case len(vals) == 0:
		return "", nil
	}
	now := h.cfg.Now()
	p, err := verify.CheckDPoPProof(vals[0], verify.ProofCheck{
		Method: http.MethodPost,
		URL:    h.cfg.TokenURL,
		Now:    now,
		MaxAge: h.cfg.DPoPMaxAge,
		// A client's clock may run ahead as far as another instance's.
		Leeway: keys.MaxClockSkew,
	})
	if err != nil {
		h.log.InfoContext(r.Context(), "DPoP proof refused", "client_id", c.ID, "err", err)
		return "", errInvalidDPoPProof("the DPoP proof is invalid (RFC 9449 §4.3: typ dpop+jwt, an asymmetric alg, a public jwk, htm POST, htu the token endpoint, a recent iat, a jti, a valid signature)")
	}
	if n := h.cfg.DPoPNonces; n != nil && !n.Valid(p.Nonce, now) {
		return "", errUseDPoPNonce
	}
	err = h.st.UseOnce(r.Context(), dpopReplayPrefix+p.ReplayID(), p.Until)
	switch {
	case errors.Is(err, store.ErrReplayed):
		h.log.WarnContext(r.Context(), "DPoP proof replayed", "client_id", c.ID, "jti", p.ID)
		return "", errInvalidDPoPProof("the DPoP proof was already used; make a new proof for every request")
	case err != nil:
		return "", err
	}
	return p.JKT, nil
}
