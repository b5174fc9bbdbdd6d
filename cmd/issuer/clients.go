package main

// `issuer clients …`: register and manage clients through the admin API.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/issuer-oauth/issuer/internal/adminapi"
)

var clientsGroup = adminGroup{
	name:   "clients",
	doc:    "Manage the OAuth clients of a running issuer through its admin API.",
	idName: "client ID",
	commands: []adminCommand{
		{
			name:     "create",
			synopsis: "--name NAME [--scope SCOPES] [--audience URL]... [--grant-types LIST] [--auth-method METHOD] [--introspect-all] [--jwks-file FILE | --jwks-uri URL] [--signing-alg ALG] [--federated-issuer NAME --federated-subject SUB [--federated-claim NAME=VALUE]...] [--dpop-bound-access-tokens] [POLICY FLAGS]",
			summary:  "register a client; prints its client_id and client_secret (shown only once; none for private_key_jwt and federated_jwt)",
			bind:     bindClientsCreate,
		},
		{
			name:    "list",
			summary: "list the registered clients",
			bind:    bindClientsList,
		},
		{
			name:    "get",
			summary: "show one client",
			takesID: true,
			bind:    bindClientsGet,
		},
		{
			name:     "update",
			synopsis: "[--name NAME] [--scope SCOPES] [--audience URL]... [--grant-types LIST] [--auth-method METHOD] [--introspect-all] [--jwks-file FILE | --jwks-uri URL] [--signing-alg ALG] [--federated-issuer NAME --federated-subject SUB [--federated-claim NAME=VALUE]...] [--dpop-bound-access-tokens] [--disabled=true|false] [POLICY FLAGS]",
			summary:  "change the given fields of a client and keep the others",
			takesID:  true,
			bind:     bindClientsUpdate,
		},
		{
			name:    "rotate-secret",
			summary: "issue a new client secret; the old one stops working",
			takesID: true,
			bind:    bindClientsRotateSecret,
		},
		{
			name:    "delete",
			summary: "delete a client and end its tokens",
			takesID: true,
			bind:    bindClientsDelete,
		},
	},
}

// metadataFlags are the client metadata flags of `clients create` and `clients update`.
type metadataFlags struct {
	fs            *flag.FlagSet
	name          string
	scope         string
	audience      listFlag
	grantTypes    string
	authMethod    string
	introspectAll bool
	dpopBound     bool
	// Per-client policy (docs/client-policy.md).
	disabled    bool
	accessTTL   string
	refreshTTL  string
	maxLifetime string
	reuse       string
	quotaPerMin int64
	// Clients without secrets.
	jwksFile, jwksURI, signingAlg string
	fedIssuer, fedSubject         string
	fedClaims                     listFlag
	jwks                          []byte // the content of jwksFile
}

func bindMetadata(fs *flag.FlagSet, update bool) *metadataFlags {
	m := &metadataFlags{fs: fs}
	audience := "allowed audience `URL` of the client's tokens; repeat for several"
	grantTypes := "comma-separated grant `types` (server default client_credentials,refresh_token)"
	authMethod := "token endpoint auth `method`: client_secret_basic (server default), client_secret_post, private_key_jwt or federated_jwt"
	if update {
		audience += "; replaces the list, --audience \"\" clears it"
		grantTypes = "comma-separated grant `types`, e.g. client_credentials,refresh_token"
		authMethod = "token endpoint auth `method`: client_secret_basic, client_secret_post, private_key_jwt or federated_jwt"
	}
	fs.StringVar(&m.name, "name", "", "client `name` (client_name)")
	fs.StringVar(&m.scope, "scope", "", "allowed `scopes`, space-separated, e.g. \"read write\"")
	fs.Var(&m.audience, "audience", audience)
	fs.StringVar(&m.grantTypes, "grant-types", "", grantTypes)
	fs.StringVar(&m.authMethod, "auth-method", "", authMethod)
	fs.StringVar(&m.jwksFile, "jwks-file", "", "`file` of the client's JWK Set of public keys (private_key_jwt)")
	fs.StringVar(&m.jwksURI, "jwks-uri", "", "https `URL` of the client's JWK Set (private_key_jwt)")
	fs.StringVar(&m.signingAlg, "signing-alg", "", "the only `algorithm` of the client's assertions: RS256, PS256, ES256 or EdDSA (private_key_jwt)")
	fs.StringVar(&m.fedIssuer, "federated-issuer", "", "`name` of the trusted issuer of the client's workload tokens (federated_jwt)")
	fs.StringVar(&m.fedSubject, "federated-subject", "", "exact `sub` of the client's workload tokens (federated_jwt)")
	fs.Var(&m.fedClaims, "federated-claim", "`NAME=VALUE` claim the workload tokens must carry; repeat for several (federated_jwt)")
	fs.BoolVar(&m.introspectAll, "introspect-all", false, "let the client introspect every token, not only its own (for resource servers); --introspect-all=false takes it away")
	fs.BoolVar(&m.dpopBound, "dpop-bound-access-tokens", false, "require a DPoP proof with every token request of the client, so all its access tokens are bound to its key (RFC 9449); --dpop-bound-access-tokens=false lifts it")
	fs.BoolVar(&m.disabled, "disabled", false, "disable the client: it cannot authenticate, and every refresh token it holds ends for good; --disabled=false enables it again")
	server := "; \"\" for the server's setting"
	fs.StringVar(&m.accessTTL, "access-token-ttl", "", "`duration` of the client's access tokens, 1s to 24h, e.g. 10m"+server)
	fs.StringVar(&m.refreshTTL, "refresh-token-ttl", "", "`duration` of the client's refresh tokens, longer than its access tokens', at most 8760h"+server)
	fs.StringVar(&m.maxLifetime, "refresh-token-max-lifetime", "", "absolute end of each refresh-token family, a `duration` from its first token, e.g. 720h"+server)
	fs.StringVar(&m.reuse, "refresh-token-reuse-interval", "", "`duration`, 1s to 60s, within which a retried refresh gets the first answer again; \"\" for none")
	fs.Int64Var(&m.quotaPerMin, "token-quota-per-minute", 0, "token requests the client may make per minute (`n`); 0 for the server's setting")
	return m
}

// policyFlags are the names of the per-client policy flags.
var policyFlags = []string{"disabled", "access-token-ttl", "refresh-token-ttl", "refresh-token-max-lifetime", "refresh-token-reuse-interval", "token-quota-per-minute"}

// given returns the names of the metadata flags on the command line, and
// checks their values.
func (m *metadataFlags) given() ([]string, error) {
	var names []string
	m.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "name", "scope", "audience", "grant-types", "auth-method", "introspect-all", "dpop-bound-access-tokens",
			"jwks-file", "jwks-uri", "signing-alg", "federated-issuer", "federated-subject", "federated-claim":
			names = append(names, f.Name)
		default:
			if slices.Contains(policyFlags, f.Name) {
				names = append(names, f.Name)
			}
		}
	})
	durations := map[string]string{"access-token-ttl": m.accessTTL, "refresh-token-ttl": m.refreshTTL,
		"refresh-token-max-lifetime": m.maxLifetime, "refresh-token-reuse-interval": m.reuse}
	for _, n := range names {
		switch {
		case n == "auth-method" && !slices.Contains(authMethods, m.authMethod):
			return nil, usageErrorf("invalid --auth-method %q: use %s", m.authMethod, strings.Join(authMethods, ", "))
		case n == "jwks-file" && slices.Contains(names, "jwks-uri"):
			return nil, usageErrorf("--jwks-file and --jwks-uri: give one, not both")
		case n == "jwks-file":
			data, err := os.ReadFile(m.jwksFile)
			if err != nil {
				return nil, usageErrorf("--jwks-file: %v", err)
			}
			if !json.Valid(data) {
				return nil, usageErrorf("--jwks-file %s is not JSON: give a JWK Set, {\"keys\":[…]}", m.jwksFile)
			}
			m.jwks = data
		case n == "federated-claim":
			for _, kv := range m.fedClaims {
				if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
					return nil, usageErrorf("invalid --federated-claim %q: use NAME=VALUE, e.g. repository=acme/app", kv)
				}
			}
		case n == "access-token-ttl" || n == "refresh-token-ttl" || n == "refresh-token-max-lifetime" || n == "refresh-token-reuse-interval":
			v := strings.TrimSpace(durations[n])
			if _, err := time.ParseDuration(v); v != "" && err != nil {
				return nil, usageErrorf("invalid --%s %q: use a Go duration such as 90s, 10m or 36h, or \"\" for the default", n, v)
			}
		case n == "token-quota-per-minute" && m.quotaPerMin < 0:
			return nil, usageErrorf("invalid --token-quota-per-minute %d: use a number of requests per minute, or 0 for the server's setting", m.quotaPerMin)
		}
	}
	return names, nil
}

// apply sets the fields of the flags named in given on md.
func (m *metadataFlags) apply(md *adminapi.ClientMetadata, given []string) {
	for _, n := range given {
		switch n {
		case "name":
			md.ClientName = m.name
		case "scope":
			md.Scope = strings.Join(strings.Fields(m.scope), " ")
		case "audience":
			md.Audience = append([]string{}, m.audience...)
		case "grant-types":
			md.GrantTypes = splitList(m.grantTypes)
		case "auth-method":
			md.TokenEndpointAuthMethod = m.authMethod
		case "introspect-all":
			md.IntrospectAll = m.introspectAll
		case "dpop-bound-access-tokens":
			md.DPoPBoundAccessTokens = m.dpopBound
		case "disabled":
			md.Disabled = m.disabled
		case "access-token-ttl":
			md.AccessTokenTTL = strings.TrimSpace(m.accessTTL)
		case "refresh-token-ttl":
			md.RefreshTokenTTL = strings.TrimSpace(m.refreshTTL)
		case "refresh-token-max-lifetime":
			md.RefreshTokenMaxLifetime = strings.TrimSpace(m.maxLifetime)
		case "refresh-token-reuse-interval":
			md.RefreshTokenReuseInterval = strings.TrimSpace(m.reuse)
		case "token-quota-per-minute":
			md.TokenQuotaPerMinute = m.quotaPerMin
		case "jwks-file":
			md.JWKS, md.JWKSURI = m.jwks, ""
		case "jwks-uri":
			md.JWKSURI, md.JWKS = m.jwksURI, nil
		case "signing-alg":
			md.TokenEndpointAuthSigningAlg = m.signingAlg
		case "federated-issuer", "federated-subject", "federated-claim":
			if md.FederatedIdentity == nil {
				md.FederatedIdentity = &adminapi.FederatedIdentity{}
			}
			f := md.FederatedIdentity
			switch n {
			case "federated-issuer":
				f.Issuer = m.fedIssuer
			case "federated-subject":
				f.Subject = m.fedSubject
			default:
				f.Claims = make(map[string]string, len(m.fedClaims))
				for _, kv := range m.fedClaims {
					k, v, _ := strings.Cut(kv, "=")
					f.Claims[k] = v
				}
			}
		}
	}
	// Keys and identity belong to one method each: switching the method
	// leaves behind what the new one does not take.
	if slices.Contains(given, "auth-method") {
		if md.TokenEndpointAuthMethod != "private_key_jwt" {
			md.JWKS, md.JWKSURI, md.TokenEndpointAuthSigningAlg = nil, "", ""
		}
		if md.TokenEndpointAuthMethod != "federated_jwt" {
			md.FederatedIdentity = nil
		}
	}
}

// authMethods are the values of --auth-method.
var authMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "federated_jwt"}

// listFlag is a repeatable string flag. An empty value adds nothing, so that
// `--audience ""` alone gives an empty list.
type listFlag []string

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *listFlag) Set(v string) error {
	if v = strings.TrimSpace(v); v != "" {
		*l = append(*l, v)
	}
	return nil
}

// splitList splits a comma-separated list, dropping empty elements; it never
// returns nil.
func splitList(s string) []string {
	list := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			list = append(list, v)
		}
	}
	return list
}

func bindClientsCreate(fs *flag.FlagSet) runFunc {
	m := bindMetadata(fs, false)
	return func(ctx context.Context, a *adminCLI, _ string) error {
		given, err := m.given()
		if err != nil {
			return err
		}
		if strings.TrimSpace(m.name) == "" {
			return usageErrorf("missing --name: name the client, e.g. --name billing")
		}
		var md adminapi.ClientMetadata
		m.apply(&md, given)
		c, err := a.api.CreateClient(ctx, md)
		if err != nil {
			return err
		}
		return a.printSecret(c)
	}
}

// printSecret prints the answer of create or rotate-secret, which holds the
// client secret.
func (a *adminCLI) printSecret(c adminapi.ClientInfo) error {
	if a.json {
		if err := a.printJSON(c); err != nil {
			return err
		}
	} else {
		if c.ClientID == "" || c.ClientSecret == "" && !secretless(c.TokenEndpointAuthMethod) {
			return errors.New("the issuer's answer has no client_id or client_secret: check that the CLI and the server are the same version")
		}
		if secretless(c.TokenEndpointAuthMethod) {
			_, err := fmt.Fprintf(a.stdout, "client_id: %s\n", clean(c.ClientID))
			return err
		}
		if _, err := fmt.Fprintf(a.stdout, "client_id: %s\nclient_secret: %s\n", clean(c.ClientID), c.ClientSecret); err != nil {
			return err
		}
	}
	if c.ClientSecret != "" {
		fmt.Fprintln(a.stderr, "Store the secret now: it is shown only once.")
	}
	return nil
}

// secretless reports whether clients of the auth method have no secret.
func secretless(method string) bool {
	return method == "private_key_jwt" || method == "federated_jwt"
}

func bindClientsList(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, _ string) error {
		clients, err := a.api.ListClients(ctx)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(adminapi.ClientList{Clients: clients})
		}
		if len(clients) == 0 {
			fmt.Fprintln(a.stderr, "No clients yet: register one with \"issuer clients create --name NAME\".")
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tNAME\tSCOPE\tAUDIENCE")
		for _, c := range clients {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cell(c.ClientID), cell(c.ClientName), cell(c.Scope), cell(strings.Join(c.Audience, ",")))
		}
		return tw.Flush()
	}
}

func bindClientsGet(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, id string) error {
		c, err := a.api.GetClient(ctx, id)
		if err != nil {
			return err
		}
		return a.printClient(c)
	}
}

// printClient prints a client as `key: value` lines, or as JSON.
func (a *adminCLI) printClient(c adminapi.ClientInfo) error {
	if a.json {
		return a.printJSON(c)
	}
	issued := "-"
	if c.ClientIDIssuedAt != 0 {
		issued = time.Unix(c.ClientIDIssuedAt, 0).UTC().Format(time.RFC3339)
	}
	expires := "never"
	if c.ClientSecretExpiresAt != 0 {
		expires = time.Unix(c.ClientSecretExpiresAt, 0).UTC().Format(time.RFC3339)
	}
	_, err := fmt.Fprintf(a.stdout, "client_id: %s\nclient_name: %s\ngrant_types: %s\nscope: %s\naudience: %s\ntoken_endpoint_auth_method: %s\nintrospect_all: %t\ndpop_bound_access_tokens: %t\nclient_id_issued_at: %s\nclient_secret_expires_at: %s\n",
		clean(c.ClientID), clean(c.ClientName), clean(strings.Join(c.GrantTypes, ",")), clean(c.Scope),
		clean(strings.Join(c.Audience, ",")), clean(c.TokenEndpointAuthMethod), c.IntrospectAll, c.DPoPBoundAccessTokens, issued, expires)
	if err != nil {
		return err
	}
	orDefault := func(v string) string {
		if v == "" {
			return "server default"
		}
		return clean(v)
	}
	quota := "server default"
	if c.TokenQuotaPerMinute != 0 {
		quota = fmt.Sprint(c.TokenQuotaPerMinute)
	}
	reuse := "none"
	if c.RefreshTokenReuseInterval != "" {
		reuse = clean(c.RefreshTokenReuseInterval)
	}
	_, err = fmt.Fprintf(a.stdout, "disabled: %t\naccess_token_ttl: %s\nrefresh_token_ttl: %s\nrefresh_token_max_lifetime: %s\nrefresh_token_reuse_interval: %s\ntoken_quota_per_minute: %s\n",
		c.Disabled, orDefault(c.AccessTokenTTL), orDefault(c.RefreshTokenTTL), orDefault(c.RefreshTokenMaxLifetime), reuse, quota)
	if err != nil {
		return err
	}
	return a.printClientAuth(c)
}

// printClientAuth prints the keys or identity of a client without a secret.
func (a *adminCLI) printClientAuth(c adminapi.ClientInfo) error {
	var b strings.Builder
	if c.JWKS != nil {
		fmt.Fprintf(&b, "jwks: %s\n", clean(string(c.JWKS)))
	}
	if c.JWKSURI != "" {
		fmt.Fprintf(&b, "jwks_uri: %s\n", clean(c.JWKSURI))
	}
	if c.TokenEndpointAuthSigningAlg != "" {
		fmt.Fprintf(&b, "token_endpoint_auth_signing_alg: %s\n", clean(c.TokenEndpointAuthSigningAlg))
	}
	if f := c.FederatedIdentity; f != nil {
		fmt.Fprintf(&b, "federated_issuer: %s\nfederated_subject: %s\n", clean(f.Issuer), clean(f.Subject))
		for _, k := range slices.Sorted(maps.Keys(f.Claims)) {
			fmt.Fprintf(&b, "federated_claim: %s=%s\n", clean(k), clean(f.Claims[k]))
		}
	}
	_, err := io.WriteString(a.stdout, b.String())
	return err
}

func bindClientsUpdate(fs *flag.FlagSet) runFunc {
	m := bindMetadata(fs, true)
	return func(ctx context.Context, a *adminCLI, id string) error {
		given, err := m.given()
		if err != nil {
			return err
		}
		if len(given) == 0 {
			return usageErrorf("nothing to update: pass at least one of --name, --scope, --audience, --grant-types, --auth-method, --introspect-all, --dpop-bound-access-tokens, --jwks-file, --jwks-uri, --signing-alg, --federated-issuer, --federated-subject, --federated-claim, --%s", strings.Join(policyFlags, ", --"))
		}
		cur, err := a.api.GetClient(ctx, id)
		if err != nil {
			return err
		}
		md := cur.ClientMetadata
		if md.GrantTypes == nil {
			md.GrantTypes = []string{}
		}
		if md.Audience == nil {
			md.Audience = []string{}
		}
		m.apply(&md, given)
		// Only over the version read: a change another admin made in
		// between is not written back over (412).
		c, err := a.api.UpdateClientIfMatch(ctx, id, cur.ETag, md)
		if err != nil {
			return err
		}
		return a.printClient(c)
	}
}

func bindClientsRotateSecret(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, id string) error {
		c, err := a.api.RotateSecret(ctx, id)
		if err != nil {
			return err
		}
		return a.printSecret(c)
	}
}

func bindClientsDelete(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, id string) error {
		if err := a.api.DeleteClient(ctx, id); err != nil {
			return err
		}
		if a.json {
			// DELETE answers 204 without a body; give scripts something to parse.
			return a.printJSON(map[string]any{"client_id": id, "deleted": true})
		}
		_, err := fmt.Fprintf(a.stdout, "deleted client %s\n", clean(id))
		return err
	}
}
