// Package userimport reads the users of a Django site from the JSON that
// Django's `manage.py dumpdata auth.user` writes, so that they can be moved
// to the issuer with their passwords.
//
// The input is a JSON list of records
//
//	{"model": "auth.user", "pk": 1, "fields": {"username": "…", "password": "…", "is_active": true, …}}
//
// Each user keeps its Django password hash verbatim (package password
// verifies Django's formats, and the hash is replaced by Argon2id on the
// first successful login); an inactive user (is_active false) comes in
// disabled. A user whose password is unusable ("!…", set_unusable_password)
// or empty comes in, and cannot log in with a password.
//
// Non-empty email, first_name and last_name become the claims email,
// given_name and family_name (the OpenID Connect standard claims that
// RFC 9068 §2.2.2 lets access tokens carry). Django's other fields
// (is_staff, is_superuser, groups, permissions, dates) are not imported:
// what they grant in the Django site is for the operator to map to scopes.
//
// Records of other models are counted and skipped, so that a dump of
// several models can be given as it is. An invalid user record is reported
// with its position and primary key, and the others are still read; input
// that is not a JSON list, or larger than the limits, fails as a whole.
// Errors never contain a password hash.
package userimport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/issuer-oauth/issuer/internal/password"
)

// Defaults of Options.
const (
	// DefaultModel is the label of Django's own user model.
	DefaultModel = "auth.user"
	// DefaultMaxBytes is the default bound on the input, 64 MiB: about
	// 150,000 users as dumpdata writes them.
	DefaultMaxBytes = 64 << 20
	// DefaultMaxRecords is the default bound on the number of entries.
	DefaultMaxRecords = 100_000
)

// The claims that ParseDjango fills in from a Django user's fields, the
// OpenID Connect standard claims of the same meaning.
const (
	ClaimEmail      = "email"       // from email
	ClaimGivenName  = "given_name"  // from first_name
	ClaimFamilyName = "family_name" // from last_name
)

// ClaimNames returns the names of the claims that ParseDjango may fill in:
// a user without one of them has it empty in Django.
func ClaimNames() []string { return []string{ClaimEmail, ClaimGivenName, ClaimFamilyName} }

// MaxUsernameLen is the longest username, in characters: the max_length
// of Django's username field.
const MaxUsernameLen = 150

var (
	// ErrFormat means the input is not a JSON list.
	ErrFormat = errors.New("userimport: not a dumpdata JSON list")
	// ErrTooLarge means the input is longer than Options.MaxBytes.
	ErrTooLarge = errors.New("userimport: input larger than the limit")
	// ErrTooManyRecords means the list has more than Options.MaxRecords
	// entries.
	ErrTooManyRecords = errors.New("userimport: more records than the limit")

	// ErrRecord means a user record is not an object with the fields of a
	// Django user, of the right types.
	ErrRecord = errors.New("userimport: invalid record")
	// ErrUsername means a username is empty, too long or holds control
	// characters.
	ErrUsername = errors.New("userimport: invalid username")
	// ErrDuplicate means an earlier record has the same username.
	ErrDuplicate = errors.New("userimport: duplicate username")
	// ErrPasswordHash means the password hash is not one that package
	// password can verify; the error also wraps password's.
	ErrPasswordHash = errors.New("userimport: unsupported password hash")
)

// Options are the model to read and the limits on the input. The zero
// value means the defaults.
type Options struct {
	// Model is the model label of the user records: DefaultModel when
	// empty. A custom user model (AUTH_USER_MODEL, e.g. "accounts.user")
	// with the username and password fields of Django's AbstractUser reads
	// the same way.
	Model string
	// MaxBytes bounds the input: DefaultMaxBytes when 0.
	MaxBytes int64
	// MaxRecords bounds the number of list entries, other models
	// included: DefaultMaxRecords when 0.
	MaxRecords int
}

// User is a user read from the dump.
type User struct {
	// Index is the record's position in the list, counting from 0, as in
	// RecordError.Index: for reporting a problem found after parsing.
	Index int
	// PK is the Django primary key as written (a number or a string),
	// empty when the dump has none (dumpdata --natural-primary).
	PK string
	// Username is the Django username.
	Username string
	// PasswordHash is the Django password field, verbatim.
	PasswordHash string
	// Disabled is true for an inactive Django user.
	Disabled bool
	// Claims are email, given_name and family_name, those that are not
	// empty; nil when none is.
	Claims map[string]string
}

// RecordError is a user record that was not imported.
type RecordError struct {
	// Index is the record's position in the list, counting from 0.
	Index int
	// PK is the record's primary key, as in User.PK.
	PK string
	// Err says what is wrong; it wraps ErrRecord, ErrUsername,
	// ErrDuplicate or ErrPasswordHash.
	Err error
}

// Error describes the record by position and pk, and what is wrong with it.
func (e *RecordError) Error() string {
	pk := ""
	if e.PK != "" {
		pk = " (pk " + strconv.Quote(e.PK) + ")"
	}
	return fmt.Sprintf("record %d%s: %v", e.Index, pk, e.Err)
}

// Unwrap returns e.Err.
func (e *RecordError) Unwrap() error { return e.Err }

// Result is what ParseDjango read.
type Result struct {
	// Users are the valid user records, in the order of the input.
	Users []User
	// Errors are the invalid user records, in the order of the input.
	Errors []RecordError
	// Skipped counts the records of other models.
	Skipped int
}

// ParseDjango reads the output of `manage.py dumpdata` from r. It fails
// only when the input as a whole cannot be read (ErrFormat, ErrTooLarge,
// ErrTooManyRecords, or r's error); invalid records are in Result.Errors.
func ParseDjango(r io.Reader, opts Options) (*Result, error) {
	model := strings.ToLower(opts.Model)
	if model == "" {
		model = DefaultModel
	}
	maxBytes, maxRecords := opts.MaxBytes, opts.MaxRecords
	if maxBytes < 0 || maxRecords < 0 {
		return nil, errors.New("userimport: negative limit")
	}
	if maxBytes == 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxRecords == 0 {
		maxRecords = DefaultMaxRecords
	}

	in := &countingReader{r: io.LimitReader(r, maxBytes+1)}
	dec := json.NewDecoder(in)
	// fail turns a decoder error into ours: the input is too long if
	// more than maxBytes were read, whatever the decoder made of the cut.
	fail := func(err error) error {
		if in.n > maxBytes {
			return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBytes)
		}
		var syntax *json.SyntaxError
		switch {
		case errors.As(err, &syntax):
			// Not syntax.Error(): it quotes a character of the input.
			return fmt.Errorf("%w: invalid JSON at byte %d", ErrFormat, syntax.Offset)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("%w: the input ends before the list does", ErrFormat)
		case err == nil:
			return nil
		}
		return fmt.Errorf("userimport: reading: %w", err)
	}

	if tok, err := dec.Token(); err != nil {
		return nil, fail(err)
	} else if tok != json.Delim('[') {
		return nil, fmt.Errorf("%w: the input is not a list", ErrFormat)
	}
	res := &Result{}
	seen := map[string]int{} // username → index of its record
	for i := 0; dec.More(); i++ {
		if i == maxRecords {
			return nil, fmt.Errorf("%w: more than %d", ErrTooManyRecords, maxRecords)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fail(err)
		}
		if err := fail(nil); err != nil {
			return nil, err
		}
		u, skip, err := parseRecord(raw, model)
		switch {
		case skip:
			res.Skipped++
		case err == nil && seen[u.Username] != 0:
			err = fmt.Errorf("%w: also in record %d", ErrDuplicate, seen[u.Username]-1)
			fallthrough
		case err != nil:
			res.Errors = append(res.Errors, RecordError{Index: i, PK: u.PK, Err: err})
		default:
			seen[u.Username] = i + 1
			u.Index = i
			res.Users = append(res.Users, u)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return nil, fail(err)
	}
	_, err := dec.Token()
	if in.n > maxBytes {
		return nil, fail(nil)
	}
	if err != io.EOF {
		if err = fail(err); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: data after the list", ErrFormat)
	}
	return res, nil
}

// record is a dumpdata record.
type record struct {
	Model  *string         `json:"model"`
	PK     json.RawMessage `json:"pk"`
	Fields json.RawMessage `json:"fields"`
}

// userFields are the fields of a Django user that are imported.
type userFields struct {
	Username  *string `json:"username"`
	Password  *string `json:"password"`
	IsActive  *bool   `json:"is_active"`
	Email     *string `json:"email"`
	FirstName *string `json:"first_name"`
	LastName  *string `json:"last_name"`
}

// parseRecord reads one list entry. skip is true for a record of another
// model; u.PK is set whenever the record has a readable pk, errors
// included.
func parseRecord(raw json.RawMessage, model string) (u User, skip bool, err error) {
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return u, false, typeError(err)
	}
	if rec.Model == nil {
		return u, false, fmt.Errorf("%w: no model", ErrRecord)
	}
	if *rec.Model != model {
		return u, true, nil
	}
	if u.PK, err = pk(rec.PK); err != nil {
		return u, false, err
	}
	var f userFields
	if len(rec.Fields) == 0 || string(rec.Fields) == "null" {
		return u, false, fmt.Errorf("%w: no fields", ErrRecord)
	}
	if err := json.Unmarshal(rec.Fields, &f); err != nil {
		return u, false, typeError(err)
	}
	if f.Username == nil {
		return u, false, fmt.Errorf("%w: no username", ErrRecord)
	}
	if f.Password == nil {
		return u, false, fmt.Errorf("%w: no password", ErrRecord)
	}
	if err := checkUsername(*f.Username); err != nil {
		return u, false, err
	}
	if err := password.Check(*f.Password); err != nil {
		return u, false, fmt.Errorf("%w: %w", ErrPasswordHash, err)
	}
	u.Username = *f.Username
	u.PasswordHash = *f.Password
	u.Disabled = f.IsActive != nil && !*f.IsActive
	for _, c := range []struct {
		name  string
		value *string
	}{{ClaimEmail, f.Email}, {ClaimGivenName, f.FirstName}, {ClaimFamilyName, f.LastName}} {
		if c.value != nil && *c.value != "" {
			if u.Claims == nil {
				u.Claims = map[string]string{}
			}
			u.Claims[c.name] = *c.value
		}
	}
	return u, false, nil
}

// pk returns a primary key as text: a string's value or a number's digits.
func pk(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("%w: pk is not a string or a number", ErrRecord)
}

// typeError describes an error of json.Unmarshal on valid JSON without
// quoting the value.
func typeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("%w: not an object", ErrRecord)
		}
		return fmt.Errorf("%w: %s is a JSON %s, not a %s", ErrRecord, te.Field, te.Value, te.Type)
	}
	return fmt.Errorf("%w: not a dumpdata record", ErrRecord)
}

// checkUsername accepts what Django's username field can hold: 1 to 150
// characters. Control characters are refused: no username form lets a
// user type them, and they would garble logs and reports.
func checkUsername(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", ErrUsername)
	case utf8.RuneCountInString(s) > MaxUsernameLen:
		return fmt.Errorf("%w: longer than %d characters", ErrUsername, MaxUsernameLen)
	case strings.ContainsFunc(s, unicode.IsControl):
		return fmt.Errorf("%w: control character", ErrUsername)
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
