// Command baseline is the reference server of the load harness (bench/load):
// a bare net/http server that does only what the physics of a token
// endpoint requires, so that every figure of the issuer can be reported as a
// ratio to it.
//
// For a client-credentials request it parses the form, checks HTTP Basic
// credentials with one HMAC-SHA-256 and a constant-time compare against a
// hash computed at start-up, and signs an access token with the same claims
// (the same JSON shape as the issuer's RFC 9068 token: header alg, kid,
// typ at+jwt; claims iss, sub, aud, exp, iat, jti, client_id, scope) with the
// same algorithm, using a key made once at start-up. When the client may
// refresh, it also signs an HS256 refresh token (the issuer's refresh-token
// shape) and, with -redis, does one Redis write (SET … PX); on the embedded
// store it writes nothing anywhere (no persistence at all).
//
// A refresh request verifies the HS256 refresh token (header compared with
// the one this server issues, HMAC, JSON claims), signs a new access and
// refresh token and rotates the family with one Redis round trip
// (SET … PX XX GET, compared with the presented jti), or an in-memory
// compare-and-swap without -redis. Introspection verifies the access token's
// signature, decodes its claims and, with -redis, checks a revocation key
// with one EXISTS.
//
// The JWK Set and the metadata document are static bytes with the same
// headers as the issuer's, precomputed at start-up: the "handler serving
// static bytes" of the 80 % target in BENCHMARKS.md.
//
// A password request (RFC 6749 §4.3) authenticates the client as above,
// finds the user in memory and computes one Argon2id key (RFC 9106) at the
// parameters of the user's stored hash, at most -hash-concurrency at a time
// (the issuer's password_hash_concurrency), and answers a random opaque
// token: no store, no JWT. It is the bare loop of hash verifications that
// the password scenario of BENCHMARKS.md compares the issuer with.
//
// The clients come from BASELINE_CLIENTS, a JSON array of
// {"client_id","client_secret","grant_types","scope","audience"}, and the
// users, if any, from -users-file, a JSON array of
// {"username","password_hash"} with Argon2id hashes in PHC form. It answers
// /readyz and /healthz, and logs nothing per request.
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/argon2"
)

var b64 = base64.RawURLEncoding

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen `address`")
	issuer := flag.String("issuer", "", "issuer `URL` (iss, and the base of the metadata URLs); default http://ADDR")
	alg := flag.String("alg", "ES256", "access-token signing `algorithm`: ES256, EdDSA, RS256, PS256 or HS256")
	redisURL := flag.String("redis", "", "Redis `URL`; empty: nothing is stored")
	accessTTL := flag.Duration("access-ttl", 5*time.Minute, "access-token lifetime")
	refreshTTL := flag.Duration("refresh-ttl", 24*time.Hour, "refresh-token lifetime")
	jwksFile := flag.String("jwks-file", "", "serve this `file` as the JWK Set (the issuer's own bytes) instead of this server's key")
	metadataFile := flag.String("metadata-file", "", "serve this `file` as the metadata document, with -metadata-from replaced by -issuer")
	metadataFrom := flag.String("metadata-from", "", "the issuer `URL` that -metadata-file names")
	usersFile := flag.String("users-file", "", "`file` with the users of the password grant, a JSON array of {\"username\",\"password_hash\"}")
	hashConcurrency := flag.Int("hash-concurrency", runtime.NumCPU(), "most password hashes computed at once (the issuer's password_hash_concurrency)")
	flag.Parse()
	if *issuer == "" {
		*issuer = "http://" + *addr
	}
	var clients []clientConfig
	if err := json.Unmarshal([]byte(os.Getenv("BASELINE_CLIENTS")), &clients); err != nil || len(clients) == 0 {
		log.Fatalf("baseline: BASELINE_CLIENTS must be a JSON array of clients: %v", err)
	}
	b, err := newBaseline(*issuer, *alg, *accessTTL, *refreshTTL, clients)
	if err != nil {
		log.Fatalf("baseline: %v", err)
	}
	if err := b.useDocuments(*jwksFile, *metadataFile, *metadataFrom); err != nil {
		log.Fatalf("baseline: %v", err)
	}
	if *usersFile != "" {
		var cfgs []userConfig
		doc, err := os.ReadFile(*usersFile)
		if err == nil {
			err = json.Unmarshal(doc, &cfgs)
		}
		if err != nil {
			log.Fatalf("baseline: -users-file must hold a JSON array of users: %v", err)
		}
		if err := b.useUsers(cfgs, *hashConcurrency); err != nil {
			log.Fatalf("baseline: %v", err)
		}
	}
	if *redisURL != "" {
		opt, err := goredis.ParseURL(*redisURL)
		if err != nil {
			log.Fatalf("baseline: -redis: %v", err)
		}
		b.rdb = goredis.NewClient(opt)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = b.rdb.Ping(ctx).Err()
		cancel()
		if err != nil {
			log.Fatalf("baseline: redis: %v", err)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("baseline: %v", err)
	}
	srv := &http.Server{Handler: b.routes(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("baseline: %v", err)
	}
}

// clientConfig is one client of BASELINE_CLIENTS.
type clientConfig struct {
	ID         string   `json:"client_id"`
	Secret     string   `json:"client_secret"`
	GrantTypes []string `json:"grant_types"`
	Scope      string   `json:"scope"`
	Audience   []string `json:"audience"`
}

// client is a registered client as the baseline keeps it: the secret only as
// its keyed hash, as the issuer does.
type client struct {
	id         string
	hash       []byte
	refresh    bool
	password   bool
	scopes     []string
	audience   []string
	audJSON    []byte // the aud claim, pre-encoded
	resourceJS []byte // the resource claim of refresh tokens, pre-encoded
}

type baseline struct {
	issuer      string
	issuerJSON  []byte
	accessTTL   time.Duration
	refreshTTL  time.Duration
	pepper      []byte
	clients     map[string]*client
	sig         signer
	accessHdr   string // base64url of the access-token header
	refreshKey  []byte
	refreshHdr  string
	jwks, meta  []byte
	jwksHeaders http.Header
	metaHeaders http.Header
	rdb         *goredis.Client

	mu       sync.Mutex        // guards families without Redis
	families map[string]string // family id → current jti (refresh scenario, no Redis)

	users     map[string]*argonHash // username → stored hash (password scenario)
	hashSlots chan struct{}         // bounds the hashes computed at once
}

func newBaseline(issuer, alg string, accessTTL, refreshTTL time.Duration, cfgs []clientConfig) (*baseline, error) {
	sig, err := newSigner(alg)
	if err != nil {
		return nil, err
	}
	b := &baseline{
		issuer:     issuer,
		issuerJSON: appendJSONString(nil, issuer),
		accessTTL:  accessTTL,
		refreshTTL: refreshTTL,
		pepper:     randomBytes(32),
		clients:    map[string]*client{},
		sig:        sig,
		refreshKey: randomBytes(32),
		families:   map[string]string{},
	}
	for _, c := range cfgs {
		if c.ID == "" || c.Secret == "" || len(c.Audience) == 0 {
			return nil, fmt.Errorf("client %q: client_id, client_secret and audience are required", c.ID)
		}
		cl := &client{
			id:       c.ID,
			hash:     b.hash(c.ID, c.Secret),
			refresh:  slices.Contains(c.GrantTypes, "refresh_token"),
			password: slices.Contains(c.GrantTypes, "password"),
			scopes:   strings.Fields(c.Scope),
			audience: c.Audience,
		}
		cl.audJSON = appendAud(nil, c.Audience)
		cl.resourceJS, _ = json.Marshal(c.Audience)
		b.clients[c.ID] = cl
	}
	hdr, _ := json.Marshal(map[string]string{"alg": sig.alg(), "kid": sig.kid(), "typ": "at+jwt"})
	b.accessHdr = b64.EncodeToString(hdr)
	hdr, _ = json.Marshal(map[string]string{"alg": "HS256", "typ": "rt+jwt"})
	b.refreshHdr = b64.EncodeToString(hdr)
	b.jwks, err = json.Marshal(map[string]any{"keys": sig.jwks()})
	if err != nil {
		return nil, err
	}
	b.meta, err = metadataDocument(issuer)
	if err != nil {
		return nil, err
	}
	b.jwksHeaders = staticHeaders(b.jwks, 5*time.Minute)
	b.metaHeaders = staticHeaders(b.meta, time.Hour)
	return b, nil
}

// metadataDocument is the issuer's RFC 8414 document, same fields and
// formatting (internal/server), for this server's URL.
func metadataDocument(issuer string) ([]byte, error) {
	iss := strings.TrimSuffix(issuer, "/")
	auth := []string{"client_secret_basic", "client_secret_post"}
	type metadata struct {
		Issuer                            string   `json:"issuer"`
		TokenEndpoint                     string   `json:"token_endpoint"`
		JWKSURI                           string   `json:"jwks_uri"`
		IntrospectionEndpoint             string   `json:"introspection_endpoint"`
		RevocationEndpoint                string   `json:"revocation_endpoint"`
		RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
		GrantTypesSupported               []string `json:"grant_types_supported"`
		ResponseTypesSupported            []string `json:"response_types_supported"`
		TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
		IntrospectionAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
		RevocationAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	}
	return json.MarshalIndent(metadata{
		Issuer:                            iss,
		TokenEndpoint:                     iss + "/oauth2/token",
		JWKSURI:                           iss + "/.well-known/jwks.json",
		IntrospectionEndpoint:             iss + "/oauth2/introspect",
		RevocationEndpoint:                iss + "/oauth2/revoke",
		RegistrationEndpoint:              iss + "/admin/clients",
		GrantTypesSupported:               []string{"client_credentials", "refresh_token"},
		ResponseTypesSupported:            []string{},
		TokenEndpointAuthMethodsSupported: auth,
		IntrospectionAuthMethodsSupported: auth,
		RevocationAuthMethodsSupported:    auth,
	}, "", "  ")
}

// useDocuments replaces the baseline's own JWK Set and metadata with the
// issuer's bytes, so that the static-bytes comparison serves exactly what
// the issuer serves. The metadata's URLs are rewritten to this server.
func (b *baseline) useDocuments(jwksFile, metadataFile, from string) error {
	if jwksFile != "" {
		doc, err := os.ReadFile(jwksFile)
		if err != nil {
			return err
		}
		b.jwks, b.jwksHeaders = doc, staticHeaders(doc, 5*time.Minute)
	}
	if metadataFile != "" {
		doc, err := os.ReadFile(metadataFile)
		if err != nil {
			return err
		}
		if from == "" {
			return errors.New("-metadata-file needs -metadata-from")
		}
		doc = bytes.ReplaceAll(doc, []byte(from), []byte(strings.TrimSuffix(b.issuer, "/")))
		b.meta, b.metaHeaders = doc, staticHeaders(doc, time.Hour)
	}
	return nil
}

// staticHeaders are the headers the issuer sends with a public cached
// document, computed once.
func staticHeaders(body []byte, maxAge time.Duration) http.Header {
	sum := sha256.Sum256(body)
	return http.Header{
		"Content-Type":           {"application/json"},
		"Cache-Control":          {"public, max-age=" + strconv.Itoa(int(maxAge.Seconds()))},
		"Etag":                   {`"` + b64.EncodeToString(sum[:16]) + `"`},
		"Content-Length":         {strconv.Itoa(len(body))},
		"X-Content-Type-Options": {"nosniff"},
	}
}

func (b *baseline) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		serveStatic(w, b.jwksHeaders, b.jwks)
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		serveStatic(w, b.metaHeaders, b.meta)
	})
	mux.HandleFunc("POST /oauth2/token", b.token)
	mux.HandleFunc("POST /oauth2/introspect", b.introspect)
	ok := func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{\"status\":\"ok\"}\n") }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	return mux
}

func serveStatic(w http.ResponseWriter, hdr http.Header, body []byte) {
	h := w.Header()
	for k, v := range hdr {
		h[k] = v
	}
	_, _ = w.Write(body)
}

// ---------------------------------------------------------------- token endpoint

type protoError struct {
	status int
	code   string
}

var (
	errInvalidRequest = &protoError{http.StatusBadRequest, "invalid_request"}
	errInvalidClient  = &protoError{http.StatusUnauthorized, "invalid_client"}
	errInvalidGrant   = &protoError{http.StatusBadRequest, "invalid_grant"}
	errInvalidScope   = &protoError{http.StatusBadRequest, "invalid_scope"}
	errUnauthorized   = &protoError{http.StatusBadRequest, "unauthorized_client"}
	errUnsupported    = &protoError{http.StatusBadRequest, "unsupported_grant_type"}
	errServer         = &protoError{http.StatusInternalServerError, "server_error"}
)

func writeError(w http.ResponseWriter, e *protoError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if e == errInvalidClient {
		h.Set("WWW-Authenticate", `Basic realm="token"`)
	}
	w.WriteHeader(e.status)
	_, _ = io.WriteString(w, `{"error":"`+e.code+`"}`+"\n")
}

var (
	hdrJSON    = []string{"application/json"}
	hdrNoStore = []string{"no-store"}
	hdrNoCache = []string{"no-cache"}
)

func writeBody(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoStore
	h["Pragma"] = hdrNoCache
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
}

// form reads the form body and authenticates the client: the minimum every
// client-authenticated endpoint does.
func (b *baseline) form(r *http.Request) (url.Values, *client, *protoError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return nil, nil, errInvalidRequest
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, nil, errInvalidRequest
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return nil, nil, errInvalidClient
	}
	id, err1 := url.QueryUnescape(user)
	sec, err2 := url.QueryUnescape(pass)
	if err1 != nil || err2 != nil {
		return nil, nil, errInvalidClient
	}
	c := b.clients[id]
	if c == nil {
		return nil, nil, errInvalidClient
	}
	if !hmac.Equal(b.hash(id, sec), c.hash) {
		return nil, nil, errInvalidClient
	}
	return form, c, nil
}

func (b *baseline) hash(id, sec string) []byte {
	m := hmac.New(sha256.New, b.pepper)
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(sec))
	return m.Sum(nil)
}

func (b *baseline) token(w http.ResponseWriter, r *http.Request) {
	form, c, perr := b.form(r)
	if perr != nil {
		writeError(w, perr)
		return
	}
	var body []byte
	switch form.Get("grant_type") {
	case "client_credentials":
		body, perr = b.clientCredentials(r.Context(), form, c)
	case "refresh_token":
		body, perr = b.refresh(r.Context(), form, c)
	case "password":
		body, perr = b.password(r.Context(), form, c)
	default:
		perr = errUnsupported
	}
	if perr != nil {
		writeError(w, perr)
		return
	}
	writeBody(w, body)
}

// scope grants the requested scope within allowed (all of it when none is
// requested).
func scope(requested string, allowed []string) (string, *protoError) {
	if requested == "" {
		return strings.Join(allowed, " "), nil
	}
	for _, s := range strings.Fields(requested) {
		if !slices.Contains(allowed, s) {
			return "", errInvalidScope
		}
	}
	return requested, nil
}

func (b *baseline) clientCredentials(ctx context.Context, form url.Values, c *client) ([]byte, *protoError) {
	sc, perr := scope(form.Get("scope"), c.scopes)
	if perr != nil {
		return nil, perr
	}
	now := time.Now()
	access, err := b.signAccess(c, sc, now)
	if err != nil {
		return nil, errServer
	}
	var refresh []byte
	if c.refresh {
		fid, jti := randomID(), randomID()
		exp := now.Add(b.refreshTTL)
		refresh = b.signRefresh(c, fid, jti, strings.Join(c.scopes, " "), now, exp)
		if b.rdb != nil {
			err := b.rdb.Do(ctx, "set", "baseline:fam:"+fid, familyValue(jti, c.id, exp), "px", b.refreshTTL.Milliseconds()).Err()
			if err != nil {
				return nil, errServer
			}
		}
	}
	return b.tokenResponse(access, refresh, sc), nil
}

// familyValue is the stored state of a family: its current jti first.
func familyValue(jti, clientID string, exp time.Time) string {
	return jti + "|" + clientID + "|" + strconv.FormatInt(exp.UnixMilli(), 10)
}

func (b *baseline) tokenResponse(access, refresh []byte, sc string) []byte {
	out := make([]byte, 0, len(access)+len(refresh)+128)
	out = append(out, `{"access_token":"`...)
	out = append(out, access...)
	out = append(out, `","token_type":"Bearer","expires_in":`...)
	out = strconv.AppendInt(out, int64(b.accessTTL.Seconds()), 10)
	if refresh != nil {
		out = append(out, `,"refresh_token":"`...)
		out = append(out, refresh...)
		out = append(out, '"')
	}
	if sc != "" {
		out = append(out, `,"scope":`...)
		out = appendJSONString(out, sc)
	}
	return append(out, "}\n"...)
}

// signAccess signs the issuer's access-token claims, in the issuer's order.
func (b *baseline) signAccess(c *client, sc string, now time.Time) ([]byte, error) {
	claims := make([]byte, 0, 256)
	claims = append(claims, `{"iss":`...)
	claims = append(claims, b.issuerJSON...)
	claims = append(claims, `,"sub":`...)
	claims = appendJSONString(claims, c.id)
	claims = append(claims, `,"aud":`...)
	claims = append(claims, c.audJSON...)
	claims = append(claims, `,"exp":`...)
	claims = strconv.AppendInt(claims, now.Add(b.accessTTL).Unix(), 10)
	claims = append(claims, `,"iat":`...)
	claims = strconv.AppendInt(claims, now.Unix(), 10)
	claims = append(claims, `,"jti":"`...)
	claims = append(claims, randomID()...)
	claims = append(claims, `","client_id":`...)
	claims = appendJSONString(claims, c.id)
	if sc != "" {
		claims = append(claims, `,"scope":`...)
		claims = appendJSONString(claims, sc)
	}
	claims = append(claims, '}')
	signing := signingInput(b.accessHdr, claims)
	s, err := b.sig.sign(signing)
	if err != nil {
		return nil, err
	}
	return appendSig(signing, s), nil
}

// signRefresh signs the issuer's refresh-token claims with HS256.
func (b *baseline) signRefresh(c *client, fid, jti, sc string, now, exp time.Time) []byte {
	claims := make([]byte, 0, 320)
	claims = append(claims, `{"iss":`...)
	claims = append(claims, b.issuerJSON...)
	claims = append(claims, `,"sub":`...)
	claims = appendJSONString(claims, c.id)
	claims = append(claims, `,"aud":`...)
	claims = append(claims, b.issuerJSON...)
	claims = append(claims, `,"exp":`...)
	claims = strconv.AppendInt(claims, exp.Unix(), 10)
	claims = append(claims, `,"iat":`...)
	claims = strconv.AppendInt(claims, now.Unix(), 10)
	claims = append(claims, `,"jti":"`...)
	claims = append(claims, jti...)
	claims = append(claims, `","client_id":`...)
	claims = appendJSONString(claims, c.id)
	claims = append(claims, `,"fid":"`...)
	claims = append(claims, fid...)
	claims = append(claims, '"')
	if sc != "" {
		claims = append(claims, `,"scope":`...)
		claims = appendJSONString(claims, sc)
	}
	claims = append(claims, `,"resource":`...)
	claims = append(claims, c.resourceJS...)
	claims = append(claims, '}')
	signing := signingInput(b.refreshHdr, claims)
	m := hmac.New(sha256.New, b.refreshKey)
	m.Write(signing)
	return appendSig(signing, m.Sum(nil))
}

// refreshClaims are the claims the refresh grant needs.
type refreshClaims struct {
	Iss      string `json:"iss"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Jti      string `json:"jti"`
	ClientID string `json:"client_id"`
	Fid      string `json:"fid"`
	Scope    string `json:"scope"`
}

func (b *baseline) refresh(ctx context.Context, form url.Values, c *client) ([]byte, *protoError) {
	if !c.refresh {
		return nil, errUnauthorized
	}
	raw := form.Get("refresh_token")
	hdr, rest, ok := strings.Cut(raw, ".")
	if !ok || hdr != b.refreshHdr {
		return nil, errInvalidGrant
	}
	payload, sigPart, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, errInvalidGrant
	}
	m := hmac.New(sha256.New, b.refreshKey)
	m.Write([]byte(raw[:len(hdr)+1+len(payload)]))
	want := m.Sum(nil)
	got, err := b64.DecodeString(sigPart)
	if err != nil || !hmac.Equal(got, want) {
		return nil, errInvalidGrant
	}
	js, err := b64.DecodeString(payload)
	if err != nil {
		return nil, errInvalidGrant
	}
	var rc refreshClaims
	if err := json.Unmarshal(js, &rc); err != nil {
		return nil, errInvalidGrant
	}
	now := time.Now()
	if rc.Iss != b.issuer || rc.Aud != b.issuer || rc.ClientID != c.id || rc.Jti == "" || rc.Fid == "" || now.Unix() >= rc.Exp {
		return nil, errInvalidGrant
	}
	sc, perr := scope(form.Get("scope"), strings.Fields(rc.Scope))
	if perr != nil {
		return nil, perr
	}
	jti, exp := randomID(), now.Add(b.refreshTTL)
	access, err := b.signAccess(c, sc, now)
	if err != nil {
		return nil, errServer
	}
	refresh := b.signRefresh(c, rc.Fid, jti, rc.Scope, now, exp)
	if perr := b.rotate(ctx, rc.Fid, rc.Jti, jti, c.id, exp); perr != nil {
		return nil, perr
	}
	return b.tokenResponse(access, refresh, sc), nil
}

// rotate makes next the current token of the family if old is: one Redis
// round trip (SET … XX GET returns the previous value), or an in-memory
// compare-and-swap without Redis (where an unknown family is accepted:
// cc stores nothing there).
func (b *baseline) rotate(ctx context.Context, fid, old, next, clientID string, exp time.Time) *protoError {
	if b.rdb == nil {
		b.mu.Lock()
		defer b.mu.Unlock()
		if cur, ok := b.families[fid]; ok && cur != old {
			return errInvalidGrant
		}
		b.families[fid] = next
		return nil
	}
	prev, err := b.rdb.Do(ctx, "set", "baseline:fam:"+fid, familyValue(next, clientID, exp), "px", b.refreshTTL.Milliseconds(), "xx", "get").Text()
	if errors.Is(err, goredis.Nil) {
		return errInvalidGrant
	}
	if err != nil {
		return errServer
	}
	if cur, _, _ := strings.Cut(prev, "|"); cur != old {
		return errInvalidGrant // reuse (the issuer would revoke the family)
	}
	return nil
}

// ---------------------------------------------------------------- password

// userConfig is one user of -users-file.
type userConfig struct {
	Username     string `json:"username"`
	PasswordHash string `json:"password_hash"`
}

// argonHash is an Argon2id hash in PHC form:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>, salt and key in
// standard base64 without padding.
type argonHash struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parseArgon2id(encoded string) (*argonHash, error) {
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != "v=19" {
		return nil, errors.New("not an argon2id v=19 PHC string")
	}
	var h argonHash
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &h.memory, &h.time, &h.threads); err != nil {
		return nil, fmt.Errorf("argon2id parameters %q: %w", f[3], err)
	}
	var err1, err2 error
	h.salt, err1 = base64.RawStdEncoding.DecodeString(f[4])
	h.key, err2 = base64.RawStdEncoding.DecodeString(f[5])
	if err := errors.Join(err1, err2); err != nil || len(h.key) == 0 {
		return nil, fmt.Errorf("argon2id salt or key: %v", err)
	}
	return &h, nil
}

func (h *argonHash) verify(password string) bool {
	key := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// useUsers sets the users of the password grant and the bound on the hashes
// computed at once.
func (b *baseline) useUsers(cfgs []userConfig, concurrency int) error {
	if concurrency < 1 {
		return fmt.Errorf("-hash-concurrency %d: use at least 1", concurrency)
	}
	b.users = make(map[string]*argonHash, len(cfgs))
	for _, u := range cfgs {
		h, err := parseArgon2id(u.PasswordHash)
		if err != nil {
			return fmt.Errorf("user %q: %w", u.Username, err)
		}
		b.users[u.Username] = h
	}
	b.hashSlots = make(chan struct{}, concurrency)
	return nil
}

// password checks the user's password with one Argon2id computation and
// answers an opaque random token: the hash is the whole cost.
func (b *baseline) password(ctx context.Context, form url.Values, c *client) ([]byte, *protoError) {
	if !c.password {
		return nil, errUnauthorized
	}
	h := b.users[form.Get("username")]
	if h == nil {
		return nil, errInvalidGrant
	}
	select {
	case b.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, errServer
	}
	ok := h.verify(form.Get("password"))
	<-b.hashSlots
	if !ok {
		return nil, errInvalidGrant
	}
	return b.tokenResponse([]byte(randomID()), nil, ""), nil
}

// ---------------------------------------------------------------- introspection

type accessClaims struct {
	Iss      string          `json:"iss"`
	Sub      string          `json:"sub"`
	Aud      json.RawMessage `json:"aud"`
	Exp      int64           `json:"exp"`
	Iat      int64           `json:"iat"`
	Jti      string          `json:"jti"`
	ClientID string          `json:"client_id"`
	Scope    string          `json:"scope"`
}

var inactive = []byte("{\"active\":false}\n")

func (b *baseline) introspect(w http.ResponseWriter, r *http.Request) {
	form, c, perr := b.form(r)
	if perr != nil {
		writeError(w, perr)
		return
	}
	raw := form.Get("token")
	hdr, rest, ok := strings.Cut(raw, ".")
	if !ok || hdr != b.accessHdr {
		writeBody(w, inactive)
		return
	}
	payload, sigPart, ok := strings.Cut(rest, ".")
	if !ok {
		writeBody(w, inactive)
		return
	}
	sig, err := b64.DecodeString(sigPart)
	if err != nil || !b.sig.verify([]byte(raw[:len(hdr)+1+len(payload)]), sig) {
		writeBody(w, inactive)
		return
	}
	js, err := b64.DecodeString(payload)
	if err != nil {
		writeBody(w, inactive)
		return
	}
	var ac accessClaims
	if err := json.Unmarshal(js, &ac); err != nil || ac.Iss != b.issuer || time.Now().Unix() >= ac.Exp || ac.ClientID != c.id {
		writeBody(w, inactive)
		return
	}
	if b.rdb != nil {
		n, err := b.rdb.Exists(r.Context(), "baseline:revoked:"+ac.Jti).Result()
		if err != nil {
			writeError(w, errServer)
			return
		}
		if n > 0 {
			writeBody(w, inactive)
			return
		}
	}
	out := make([]byte, 0, 512)
	out = append(out, `{"active":true,"scope":`...)
	out = appendJSONString(out, ac.Scope)
	out = append(out, `,"client_id":`...)
	out = appendJSONString(out, ac.ClientID)
	out = append(out, `,"token_type":"Bearer","exp":`...)
	out = strconv.AppendInt(out, ac.Exp, 10)
	out = append(out, `,"iat":`...)
	out = strconv.AppendInt(out, ac.Iat, 10)
	out = append(out, `,"sub":`...)
	out = appendJSONString(out, ac.Sub)
	out = append(out, `,"aud":`...)
	if len(ac.Aud) > 0 && ac.Aud[0] == '"' {
		out = append(out, '[')
		out = append(out, ac.Aud...)
		out = append(out, ']')
	} else {
		out = append(out, ac.Aud...)
	}
	out = append(out, `,"iss":`...)
	out = appendJSONString(out, ac.Iss)
	out = append(out, `,"jti":`...)
	out = appendJSONString(out, ac.Jti)
	out = append(out, "}\n"...)
	writeBody(w, out)
}

// ---------------------------------------------------------------- JOSE

func signingInput(hdr string, claims []byte) []byte {
	out := make([]byte, 0, len(hdr)+1+b64.EncodedLen(len(claims))+1+b64.EncodedLen(512))
	out = append(out, hdr...)
	out = append(out, '.')
	return b64.AppendEncode(out, claims)
}

func appendSig(signing, sig []byte) []byte {
	signing = append(signing, '.')
	return b64.AppendEncode(signing, sig)
}

// appendAud encodes aud as jwt/v5 does: a single audience as a string.
func appendAud(dst []byte, aud []string) []byte {
	if len(aud) == 1 {
		return appendJSONString(dst, aud[0])
	}
	js, _ := json.Marshal(aud)
	return append(dst, js...)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '"' || ch == '\\':
			dst = append(dst, '\\', ch)
		case ch < 0x20:
			dst = append(dst, fmt.Sprintf(`\u%04x`, ch)...)
		default:
			dst = append(dst, ch)
		}
	}
	return append(dst, '"')
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// randomID is 16 random bytes in base64url, as the issuer's ids.
func randomID() string { return b64.EncodeToString(randomBytes(16)) }

// signer signs and verifies JWS signing inputs with one key.
type signer interface {
	alg() string
	kid() string
	sign(signingInput []byte) ([]byte, error)
	verify(signingInput, sig []byte) bool
	jwks() []map[string]string
}

func newSigner(alg string) (signer, error) {
	switch alg {
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return &esSigner{key: k}, nil
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return edSigner{key: k}, nil
	case "RS256", "PS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		k.Precompute()
		return &rsaSigner{key: k, pss: alg == "PS256"}, nil
	case "HS256":
		return hsSigner{key: randomBytes(32)}, nil
	}
	return nil, fmt.Errorf("unknown algorithm %q", alg)
}

func kidOf(pub []byte) string {
	sum := sha256.Sum256(pub)
	return b64.EncodeToString(sum[:])
}

type esSigner struct{ key *ecdsa.PrivateKey }

func (s *esSigner) alg() string { return "ES256" }
func (s *esSigner) kid() string {
	raw, _ := s.key.PublicKey.Bytes()
	return kidOf(raw)
}

// sign returns the JWS form of an ECDSA signature: r and s, 32 bytes each.
func (s *esSigner) sign(in []byte) ([]byte, error) {
	h := sha256.Sum256(in)
	der, err := ecdsa.SignASN1(rand.Reader, s.key, h[:])
	if err != nil {
		return nil, err
	}
	r, ss, ok := parseDERSig(der)
	if !ok {
		return nil, errors.New("ecdsa: malformed signature")
	}
	out := make([]byte, 64)
	copy(out[32-len(r):32], r)
	copy(out[64-len(ss):], ss)
	return out, nil
}

func (s *esSigner) verify(in, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	h := sha256.Sum256(in)
	r, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(&s.key.PublicKey, h[:], r, ss)
}

func (s *esSigner) jwks() []map[string]string {
	raw, _ := s.key.PublicKey.Bytes()
	return []map[string]string{{"kty": "EC", "kid": s.kid(), "use": "sig", "alg": "ES256", "crv": "P-256",
		"x": b64.EncodeToString(raw[1:33]), "y": b64.EncodeToString(raw[33:])}}
}

// parseDERSig reads SEQUENCE { INTEGER r, INTEGER s } (short lengths, as a
// P-256 signature always has), returning r and s without leading zeros.
func parseDERSig(der []byte) (r, s []byte, ok bool) {
	if len(der) < 8 || der[0] != 0x30 || int(der[1]) != len(der)-2 {
		return nil, nil, false
	}
	rest := der[2:]
	readInt := func() ([]byte, bool) {
		if len(rest) < 2 || rest[0] != 0x02 || int(rest[1]) > len(rest)-2 {
			return nil, false
		}
		n := int(rest[1])
		v := rest[2 : 2+n]
		rest = rest[2+n:]
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		return v, len(v) <= 32
	}
	if r, ok = readInt(); !ok {
		return nil, nil, false
	}
	if s, ok = readInt(); !ok {
		return nil, nil, false
	}
	return r, s, len(rest) == 0
}

type edSigner struct{ key ed25519.PrivateKey }

func (s edSigner) alg() string { return "EdDSA" }
func (s edSigner) kid() string { return kidOf(s.key.Public().(ed25519.PublicKey)) }
func (s edSigner) sign(in []byte) ([]byte, error) {
	return ed25519.Sign(s.key, in), nil
}
func (s edSigner) verify(in, sig []byte) bool {
	return ed25519.Verify(s.key.Public().(ed25519.PublicKey), in, sig)
}
func (s edSigner) jwks() []map[string]string {
	return []map[string]string{{"kty": "OKP", "kid": s.kid(), "use": "sig", "alg": "EdDSA", "crv": "Ed25519",
		"x": b64.EncodeToString(s.key.Public().(ed25519.PublicKey))}}
}

type rsaSigner struct {
	key *rsa.PrivateKey
	pss bool
}

var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}

func (s *rsaSigner) alg() string {
	if s.pss {
		return "PS256"
	}
	return "RS256"
}
func (s *rsaSigner) kid() string { return kidOf(s.key.N.Bytes()) }
func (s *rsaSigner) sign(in []byte) ([]byte, error) {
	h := sha256.Sum256(in)
	if s.pss {
		return rsa.SignPSS(rand.Reader, s.key, crypto.SHA256, h[:], pssOptions)
	}
	return rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, h[:])
}
func (s *rsaSigner) verify(in, sig []byte) bool {
	h := sha256.Sum256(in)
	if s.pss {
		return rsa.VerifyPSS(&s.key.PublicKey, crypto.SHA256, h[:], sig, nil) == nil
	}
	return rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, h[:], sig) == nil
}
func (s *rsaSigner) jwks() []map[string]string {
	return []map[string]string{{"kty": "RSA", "kid": s.kid(), "use": "sig", "alg": s.alg(),
		"n": b64.EncodeToString(s.key.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(s.key.E)).Bytes())}}
}

// hsSigner is HS256 access tokens (the issuer refuses them today; the
// baseline has them so the harness can show what they would cost). It
// publishes no key.
type hsSigner struct{ key []byte }

func (s hsSigner) alg() string { return "HS256" }
func (s hsSigner) kid() string { return kidOf(s.key[:8]) }
func (s hsSigner) sign(in []byte) ([]byte, error) {
	m := hmac.New(sha256.New, s.key)
	m.Write(in)
	return m.Sum(nil), nil
}
func (s hsSigner) verify(in, sig []byte) bool {
	m := hmac.New(sha256.New, s.key)
	m.Write(in)
	return subtle.ConstantTimeCompare(m.Sum(nil), sig) == 1
}
func (s hsSigner) jwks() []map[string]string { return []map[string]string{} }
