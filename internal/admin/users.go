package admin

// The users of the password grant (RFC 6749 §4.3): create, list, get,
// update, set-password, unlock, delete and the import of a Django dump
// (docs/admin.md). A password travels only in a request body
// and in the one answer that generated it; it is never logged, never put
// in an error, and never read from the URL.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/password"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/userimport"
)

// PasswordHasher hashes new passwords (password.Hasher). Hash fails with
// password.ErrBusy when no computation slot is free in time.
type PasswordHasher interface {
	Hash(ctx context.Context, password string) (string, error)
}

// Lockouts tells and clears the password lockouts of usernames.
type Lockouts interface {
	// LockedUntil returns when the username's lockout ends; zero when it
	// is not locked.
	LockedUntil(ctx context.Context, username string) (time.Time, error)
	// Unlock clears the username's lockout and its count of failures.
	Unlock(ctx context.Context, username string) error
}

// noLockouts is Lockouts when there are none: nothing is ever locked.
type noLockouts struct{}

func (noLockouts) LockedUntil(context.Context, string) (time.Time, error) { return time.Time{}, nil }
func (noLockouts) Unlock(context.Context, string) error                   { return nil }

// defaultPasswords is the PasswordHasher of a Config without one.
func defaultPasswords() *password.Hasher {
	h, err := password.New(password.Config{})
	if err != nil { // the defaults are valid by definition
		panic(fmt.Sprintf("admin: the default password hasher: %v", err))
	}
	return h
}

// Limits of a user (docs/admin.md).
const (
	maxUsernameLen   = userimport.MaxUsernameLen // Django's, so that every Django user fits
	minPasswordLen   = 8
	maxPasswordLen   = 1024
	maxClaims        = 20
	maxClaimNameLen  = 64
	maxClaimValueLen = 256
	// generatedPasswordBytes is the entropy of a generated password:
	// 192 bits, 32 base64url characters.
	generatedPasswordBytes = 24
)

func (h *Handler) userRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /admin/users", h.createUser)
	mux.HandleFunc("GET /admin/users", h.listUsers)
	mux.HandleFunc("POST /admin/users/import", h.importUsers)
	mux.HandleFunc("GET /admin/users/{username}", h.getUser)
	mux.HandleFunc("PUT /admin/users/{username}", h.updateUser)
	mux.HandleFunc("DELETE /admin/users/{username}", h.deleteUser)
	mux.HandleFunc("POST /admin/users/{username}/password", h.setUserPassword)
	mux.HandleFunc("POST /admin/users/{username}/unlock", h.unlockUser)
}

// profile is a user's validated profile: what PUT replaces.
type profile struct {
	disabled bool
	scopes   []string // nil: limited by the client alone
	claims   map[string]string
}

// checkUsername says what is wrong with a username, or returns nil. The
// answer never quotes it.
func checkUsername(s string) error {
	switch {
	case s == "":
		return errors.New("username is required")
	case utf8.RuneCountInString(s) > maxUsernameLen:
		return fmt.Errorf("username is longer than %d characters", maxUsernameLen)
	case !printable(s, false):
		return errors.New("username must be printable characters without whitespace")
	case s == "." || s == "..":
		return errors.New(`username cannot be "." or "..", which no URL path can carry`)
	}
	return nil
}

// checkPassword says what is wrong with a new password, without quoting it.
func checkPassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < minPasswordLen || n > maxPasswordLen {
		return fmt.Errorf("password must be %d to %d characters; omit it to have one generated", minPasswordLen, maxPasswordLen)
	}
	return nil
}

// checkClaims returns what is wrong with a user's claims, in name order.
func checkClaims(claims map[string]string) []string {
	var problems []string
	if len(claims) > maxClaims {
		problems = append(problems, fmt.Sprintf("claims: at most %d, not %d", maxClaims, len(claims)))
	}
	total := 0
	for _, name := range slices.Sorted(maps.Keys(claims)) {
		total += encodedLen(name) + encodedLen(claims[name])
		switch n := utf8.RuneCountInString(name); {
		case n == 0 || n > maxClaimNameLen || !printable(name, false):
			problems = append(problems, fmt.Sprintf("claims: the name %q must be 1 to %d printable characters without whitespace", name, maxClaimNameLen))
		case oauth.ReservedClaim(name):
			problems = append(problems, fmt.Sprintf("claims: %q is set by the issuer itself", name))
		}
		if v := claims[name]; utf8.RuneCountInString(v) > maxClaimValueLen || strings.ContainsFunc(v, unicode.IsControl) {
			problems = append(problems, fmt.Sprintf("claims: the value of %q must be at most %d characters, without control characters", name, maxClaimValueLen))
		}
	}
	if total > maxClaimsBytes {
		problems = append(problems, fmt.Sprintf("claims: %d bytes of names and values together, over %d (every access token of the user carries them)", total, maxClaimsBytes))
	}
	return problems
}

// checkProfile validates the profile fields of req.
func checkProfile(req adminapi.UserRequest) (profile, []string) {
	p := profile{disabled: req.Disabled}
	problems := checkClaims(req.Claims)
	if len(req.Claims) > 0 {
		p.claims = maps.Clone(req.Claims)
	}
	if req.Scope != nil {
		scopes, bad := checkScope(*req.Scope)
		problems = append(problems, bad...)
		p.scopes = append([]string{}, scopes...) // "" allows no scope: empty, not nil
	}
	return p, problems
}

// invalid answers 400 invalid_request listing the problems.
func invalid(w http.ResponseWriter, problems ...string) {
	writeError(w, http.StatusBadRequest, "invalid_request", strings.Join(problems, "; "))
}

// readUserRequest decodes a UserRequest body. empty reports a body of
// nothing but whitespace (and then req is zero). Unknown fields are
// refused, so that a misspelt field is not silently dropped. The errors
// never quote the body, which may hold a password.
func (h *Handler) readUserRequest(w http.ResponseWriter, r *http.Request) (req adminapi.UserRequest, empty, ok bool) {
	body, ok := h.readBody(w, r)
	if !ok {
		return req, false, false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return req, true, true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil && dec.More() {
		err = errors.New("data after the object")
	}
	if err != nil {
		invalid(w, "the body must be one JSON object with the fields username, password, disabled, scope and claims: "+jsonProblem(err))
		return req, false, false
	}
	return req, false, true
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("%s is a JSON %s, not a %s", typ.Field, typ.Value, typ.Type)
	case errors.As(err, &typ):
		return "not an object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ") // names the field, never a value
	}
	return err.Error()
}

// userInfo is u in the wire format. locked is its lockout's end (zero:
// not locked), pw a password generated for it.
func userInfo(u store.User, locked time.Time, pw string) adminapi.UserInfo {
	info := adminapi.UserInfo{
		UserID:      u.ID,
		Username:    u.Username,
		Disabled:    u.Disabled,
		Claims:      map[string]string{},
		CreatedAt:   u.CreatedAt.UTC(),
		UpdatedAt:   u.UpdatedAt.UTC(),
		LockedUntil: locked.UTC(),
		Password:    pw,
	}
	maps.Copy(info.Claims, u.Claims)
	if u.Scopes != nil {
		s := strings.Join(u.Scopes, " ")
		info.Scope = &s
	}
	return info
}

// lockedUntil returns when the username's lockout ends, zero when it is
// not locked (or no longer).
func (h *Handler) lockedUntil(ctx context.Context, username string) (time.Time, error) {
	t, err := h.lockouts.LockedUntil(ctx, username)
	if err != nil || !t.After(h.cfg.Now()) {
		return time.Time{}, err
	}
	return t, nil
}

// answerUser answers status with u, its lockout and pw. A failure to read
// the lockout is an error answer; after a write (written true) it is
// logged and the answer goes out without locked_until, since it may hold
// the only copy of a generated password and the write has happened.
func (h *Handler) answerUser(w http.ResponseWriter, r *http.Request, status int, u store.User, pw string, written bool) {
	locked, err := h.lockedUntil(r.Context(), u.Username)
	if err != nil {
		if !written {
			h.lockoutError(w, r, err)
			return
		}
		h.log.WarnContext(r.Context(), "user lockout unknown", "user_id", u.ID, "err", err)
	}
	writeJSON(w, status, userInfo(u, locked, pw))
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	req, empty, ok := h.readUserRequest(w, r)
	if !ok {
		return
	}
	if empty {
		invalid(w, `the body must be a JSON object such as {"username":"alice"}`)
		return
	}
	var problems []string
	if err := checkUsername(req.Username); err != nil {
		problems = append(problems, err.Error())
	}
	if req.Password != nil {
		if err := checkPassword(*req.Password); err != nil {
			problems = append(problems, err.Error())
		}
	}
	p, more := checkProfile(req)
	if problems = append(problems, more...); len(problems) > 0 {
		invalid(w, problems...)
		return
	}
	hash, generated, ok := h.hashPassword(w, r, req.Password)
	if !ok {
		return
	}
	now := h.cfg.Now().UTC().Truncate(time.Millisecond)
	u := store.User{ID: newID(), Username: req.Username, PasswordHash: hash, Disabled: p.disabled, Scopes: p.scopes, Claims: p.claims,
		CreatedAt: now, UpdatedAt: now}
	if err := h.st.CreateUser(r.Context(), u); err != nil {
		h.userError(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "user created", "user_id", u.ID, "username", u.Username, "password_generated", generated != "")
	h.answerUser(w, r, http.StatusCreated, u, generated, true)
}

// hashPassword hashes the password given, or without one a new random
// password, which it also returns as generated; or it answers the error.
func (h *Handler) hashPassword(w http.ResponseWriter, r *http.Request, given *string) (hash, generated string, ok bool) {
	pw := ""
	if given != nil {
		pw = *given
	} else {
		pw = secret.Random(generatedPasswordBytes)
		generated = pw
	}
	hash, err := h.passwords.Hash(r.Context(), pw)
	if err != nil {
		h.userError(w, r, err)
		return "", "", false
	}
	return hash, generated, true
}

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) {
	us, err := h.st.ListUsers(r.Context())
	if err != nil {
		h.userError(w, r, err)
		return
	}
	out := adminapi.UserList{Users: make([]adminapi.UserInfo, 0, len(us))}
	for _, u := range us {
		locked, err := h.lockedUntil(r.Context(), u.Username)
		if err != nil {
			h.lockoutError(w, r, err)
			return
		}
		out.Users = append(out.Users, userInfo(u, locked, ""))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := h.st.GetUser(r.Context(), r.PathValue("username"))
	if err != nil {
		h.userError(w, r, err)
		return
	}
	h.answerUser(w, r, http.StatusOK, u, "", false)
}

// updateUser replaces the user's profile: disabled, scope and claims. The
// password has its own call, so that a profile edit cannot change it by
// mistake and a password change always ends the user's refresh tokens.
func (h *Handler) updateUser(w http.ResponseWriter, r *http.Request) {
	username := r.PathValue("username")
	req, empty, ok := h.readUserRequest(w, r)
	if !ok {
		return
	}
	if empty {
		invalid(w, `the body must be the user's profile as a JSON object, such as {"disabled":false,"scope":"read","claims":{}}`)
		return
	}
	var problems []string
	if req.Password != nil {
		problems = append(problems, "the password cannot be changed with PUT: use POST /admin/users/{username}/password (issuer users set-password)")
	}
	if req.Username != "" && req.Username != username {
		problems = append(problems, "username cannot be changed: create a user under the new name and delete this one")
	}
	p, more := checkProfile(req)
	if problems = append(problems, more...); len(problems) > 0 {
		invalid(w, problems...)
		return
	}
	u, err := h.st.UpdateUser(r.Context(), store.User{Username: username, Disabled: p.disabled, Scopes: p.scopes, Claims: p.claims})
	if err == nil && u.Disabled {
		err = h.revokeUserStatus(r.Context(), u.ID)
	}
	if err != nil {
		h.userError(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "user updated", "user_id", u.ID, "username", u.Username, "disabled", u.Disabled)
	h.answerUser(w, r, http.StatusOK, u, "", true)
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	username := r.PathValue("username")
	u, err := h.st.GetUser(r.Context(), username)
	if err == nil {
		err = h.st.DeleteUser(r.Context(), username)
	}
	if err == nil {
		err = h.revokeUserStatus(r.Context(), u.ID)
	}
	if err != nil {
		h.userError(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "user deleted", "username", username)
	w.WriteHeader(http.StatusNoContent)
}

// setUserPassword sets the password given as {"password":…}, or with an
// empty body a generated one. Either ends the user's refresh tokens.
func (h *Handler) setUserPassword(w http.ResponseWriter, r *http.Request) {
	username := r.PathValue("username")
	req, _, ok := h.readUserRequest(w, r)
	if !ok {
		return
	}
	var problems []string
	if (req.Username != "" && req.Username != username) || req.Disabled || req.Scope != nil || req.Claims != nil {
		problems = append(problems, `this call takes only {"password":…} (or nothing, to generate one); change disabled, scope and claims with PUT /admin/users/{username}`)
	}
	if req.Password != nil {
		if err := checkPassword(*req.Password); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		invalid(w, problems...)
		return
	}
	hash, generated, ok := h.hashPassword(w, r, req.Password)
	if !ok {
		return
	}
	u, err := h.st.SetUserPassword(r.Context(), username, hash)
	if err == nil {
		err = h.revokeUserStatus(r.Context(), u.ID)
	}
	if err != nil {
		h.userError(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "user password set", "user_id", u.ID, "username", u.Username, "password_generated", generated != "")
	h.answerUser(w, r, http.StatusOK, u, generated, true)
}

// unlockUser clears the user's lockout after failed logins.
func (h *Handler) unlockUser(w http.ResponseWriter, r *http.Request) {
	u, err := h.st.GetUser(r.Context(), r.PathValue("username"))
	if err != nil {
		h.userError(w, r, err)
		return
	}
	if err := h.lockouts.Unlock(r.Context(), u.Username); err != nil {
		h.lockoutError(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "user unlocked", "user_id", u.ID, "username", u.Username)
	writeJSON(w, http.StatusOK, userInfo(u, time.Time{}, ""))
}

// importUsers imports the JSON of Django's `manage.py dumpdata auth.user`
// (package userimport), or of the custom user model named by the query
// parameter model, idempotently by username. A new user is created
// with its Django hash as it is (replaced by Argon2id at its first
// login), disabled when inactive in Django. An existing user gets the
// dump's hash when it differs (which ends its refresh tokens), its
// disabled state, and the claims that come from Django (email,
// given_name, family_name); its scope and other claims stay. A user
// already as in the dump is skipped.
//
// A record that cannot be imported is reported and the others go on. A
// store failure stops the import; since it is idempotent, running it
// again finishes it.
func (h *Handler) importUsers(w http.ResponseWriter, r *http.Request) {
	model := r.URL.Query().Get("model")
	if model == "" {
		model = userimport.DefaultModel
	}
	if !modelLabel.MatchString(model) {
		invalid(w, "model must be the label of a Django user model, app_label.model_name, such as accounts.user")
		return
	}
	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxImportBytes)
	res, err := userimport.ParseDjango(body, userimport.Options{Model: model, MaxBytes: h.cfg.MaxImportBytes})
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.Is(err, userimport.ErrTooLarge), errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request",
				fmt.Sprintf("the dump is larger than the limit of %d bytes: split it, e.g. with dumpdata --pks", h.cfg.MaxImportBytes))
		case errors.Is(err, userimport.ErrFormat), errors.Is(err, userimport.ErrTooManyRecords):
			invalid(w, "the body must be the JSON output of manage.py dumpdata "+model+": "+importProblem(err))
		default:
			invalid(w, "the request body could not be read")
		}
		return
	}
	if len(res.Users) == 0 && len(res.Errors) == 0 && res.Skipped > 0 {
		// Every record is of another model: most likely a custom user
		// model (AUTH_USER_MODEL) dumped under its own label.
		invalid(w, fmt.Sprintf("the dump has no %s record, only %d of other models; for a custom user model give its label: "+
			"?model=app_label.model_name (issuer users import --model)", model, res.Skipped))
		return
	}
	out := adminapi.ImportResult{Skipped: res.Skipped, Errors: []adminapi.ImportError{}}
	for _, e := range res.Errors {
		out.Errors = append(out.Errors, adminapi.ImportError{Index: e.Index, PK: e.PK, Error: importProblem(e.Err)})
	}
	now := h.cfg.Now().UTC().Truncate(time.Millisecond)
	for _, u := range res.Users {
		outcome, err := h.importUser(r.Context(), u, now)
		var rec recordError
		switch {
		case errors.As(err, &rec):
			out.Errors = append(out.Errors, adminapi.ImportError{Index: u.Index, PK: u.PK, Error: string(rec)})
		case err != nil:
			h.log.ErrorContext(r.Context(), "user import stopped", "created", out.Created, "updated", out.Updated, "err", err)
			h.userError(w, r, err)
			return
		case outcome == imported:
			out.Created++
		case outcome == updated:
			out.Updated++
		default:
			out.Skipped++
		}
	}
	slices.SortFunc(out.Errors, func(a, b adminapi.ImportError) int { return a.Index - b.Index })
	h.log.InfoContext(r.Context(), "users imported", "created", out.Created, "updated", out.Updated, "skipped", out.Skipped, "errors", len(out.Errors))
	writeJSON(w, http.StatusOK, out)
}

// modelLabel is a Django model label, app_label.model_name.
var modelLabel = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,99}\.[A-Za-z_][A-Za-z0-9_]{0,99}$`)

// importProblem is the text of a userimport error, without the package's
// prefix.
func importProblem(err error) string { return strings.TrimPrefix(err.Error(), "userimport: ") }

// recordError is a problem with one imported record; the import goes on.
type recordError string

func (e recordError) Error() string { return string(e) }

// importOutcome is what importing one user did.
type importOutcome int

const (
	unchanged importOutcome = iota
	imported
	updated
)

// importUser creates or updates one user of a dump. It returns a
// recordError for a problem with the record and any other error for a
// failure of the store.
func (h *Handler) importUser(ctx context.Context, u userimport.User, now time.Time) (importOutcome, error) {
	problems := checkClaims(u.Claims)
	if err := checkUsername(u.Username); err != nil {
		problems = append([]string{err.Error()}, problems...)
	}
	if len(problems) > 0 {
		return unchanged, recordError(strings.Join(problems, "; "))
	}
	cur, err := h.st.GetUser(ctx, u.Username)
	if errors.Is(err, store.ErrNotFound) {
		nu := store.User{ID: newID(), Username: u.Username, PasswordHash: u.PasswordHash, Disabled: u.Disabled, Claims: u.Claims,
			CreatedAt: now, UpdatedAt: now}
		switch err := h.st.CreateUser(ctx, nu); {
		case errors.Is(err, store.ErrExists):
			return unchanged, recordError("a user with this username was created meanwhile; run the import again")
		case err != nil:
			return unchanged, err
		}
		h.log.InfoContext(ctx, "user imported", "user_id", nu.ID, "username", nu.Username, "disabled", nu.Disabled)
		return imported, nil
	}
	if err != nil {
		return unchanged, err
	}

	claims := maps.Clone(cur.Claims)
	for _, name := range userimport.ClaimNames() {
		delete(claims, name)
	}
	if len(u.Claims) > 0 && claims == nil {
		claims = map[string]string{}
	}
	maps.Copy(claims, u.Claims)
	if problems := checkClaims(claims); len(problems) > 0 {
		return unchanged, recordError("with the user's other claims, " + strings.Join(problems, "; "))
	}
	outcome := unchanged
	if cur.PasswordHash != u.PasswordHash {
		if _, err := h.st.SetUserPassword(ctx, u.Username, u.PasswordHash); err != nil {
			return unchanged, goneOr(err)
		}
		outcome = updated
	}
	if cur.Disabled != u.Disabled || !maps.Equal(cur.Claims, claims) {
		if _, err := h.st.UpdateUser(ctx, store.User{Username: u.Username, Disabled: u.Disabled, Scopes: cur.Scopes, Claims: claims}); err != nil {
			return outcome, goneOr(err)
		}
		outcome = updated
	}
	if outcome == updated && (cur.PasswordHash != u.PasswordHash || u.Disabled) {
		if err := h.revokeUserStatus(ctx, cur.ID); err != nil {
			return outcome, err
		}
	}
	if outcome == updated {
		h.log.InfoContext(ctx, "user updated by import", "user_id", cur.ID, "username", cur.Username,
			"password_changed", cur.PasswordHash != u.PasswordHash, "disabled", u.Disabled)
	}
	return outcome, nil
}

// goneOr turns ErrNotFound (the user was deleted during the import) into
// a recordError.
func goneOr(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return recordError("the user was deleted meanwhile; run the import again")
	}
	return err
}

// userError answers the errors of the users calls.
func (h *Handler) userError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no user with this username")
	case errors.Is(err, store.ErrExists):
		writeError(w, http.StatusConflict, "already_exists", "a user with this username already exists")
	case errors.Is(err, password.ErrBusy):
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "every password-hashing slot is busy; retry shortly")
	default:
		h.storeError(w, r, err)
	}
}

// lockoutError answers a failure to read or clear a lockout.
func (h *Handler) lockoutError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "admin request failed", "err", err)
	writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the lockout state cannot be reached; retry shortly")
}
