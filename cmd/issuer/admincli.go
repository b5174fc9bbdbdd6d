package main

// The admin commands: `issuer clients …` and `issuer keys …` call the admin API
// of a running issuer (SPEC.md, "Admin API") over HTTP with the admin bearer
// token. Each subcommand has its own flag.FlagSet, so flags follow the
// subcommand; a positional ID (a client ID, a kid) may come before or after
// the flags.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
)

const (
	defaultIssuerURL = "http://localhost:8080"
	cliUserAgent     = "issuer-cli"
	defaultTimeout   = 10 * time.Second
	// maxResponseBytes bounds what the CLI reads from the server.
	maxResponseBytes = 16 << 20
)

// runClients implements `issuer clients SUBCOMMAND [flags]`; it returns the process exit code.
func runClients(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return clientsGroup.run(ctx, args, getenv, stdout, stderr)
}

// runKeys implements `issuer keys list|rotate|revoke|secret [flags]`.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return keysGroup.run(ctx, args, getenv, stdout, stderr)
}

var clientsGroup = adminGroup{
	name:   "clients",
	doc:    "Manage the OAuth clients of a running issuer through its admin API.",
	idName: "client ID",
	commands: []adminCommand{
		{
			name:     "create",
			synopsis: "--name NAME [--scope SCOPES] [--audience URL]... [--grant-types LIST] [--auth-method METHOD] [--introspect-all]",
			summary:  "register a client; prints its client_id and client_secret (shown only once)",
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
			synopsis: "[--name NAME] [--scope SCOPES] [--audience URL]... [--grant-types LIST] [--auth-method METHOD] [--introspect-all]",
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

var keysGroup = adminGroup{
	name:   "keys",
	doc:    "Manage the token signing keys of a running issuer through its admin API.",
	idName: "kid",
	commands: []adminCommand{
		{
			name:    "list",
			summary: "list the signing keys, their states (next, current, retired) and dates",
			bind:    bindKeysList,
		},
		{
			name:     "rotate",
			synopsis: "[--in DURATION]",
			summary:  "emergency rotation: a new key signs tokens at once (--in: a next key that starts signing later)",
			bind:     bindKeysRotate,
		},
		{
			name:    "revoke",
			summary: "remove a (compromised) key at once; every token it signed stops being valid",
			takesID: true,
			bind:    bindKeysRevoke,
		},
		{
			name:    "secret",
			summary: "print an HS256 key's shared secret as a JWK, for resource APIs",
			takesID: true,
			bind:    bindKeysSecret,
		},
	},
}

// adminGroup is `issuer clients` or `issuer keys`: a set of subcommands.
type adminGroup struct {
	name     string // "clients"
	doc      string // one sentence for the usage
	idName   string // what the positional ID is: "client ID", "kid"
	commands []adminCommand
}

// adminCommand is one subcommand of an adminGroup.
type adminCommand struct {
	name     string // "rotate-secret"
	synopsis string // flags shown after the name (and ID) in the usage line
	summary  string // one line in the group's usage
	takesID  bool   // exactly one positional ID
	// bind registers the subcommand's own flags on fs and returns the function
	// that runs the subcommand once the flags are parsed.
	bind func(fs *flag.FlagSet) runFunc
}

// runFunc runs a subcommand against the admin API. id is the positional client
// ID for subcommands that take one. A usageError result exits with code 2.
type runFunc func(ctx context.Context, a *adminCLI, id string) error

// usageError is a mistake in the command line: it is printed with the usage
// and exits with code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}

func (g adminGroup) run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "issuer: missing subcommand for \"issuer %s\"\n", g.name)
		g.usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		g.usage(stdout)
		return 0
	}
	for _, c := range g.commands {
		if c.name == args[0] {
			return g.runCommand(ctx, c, args[1:], getenv, stdout, stderr)
		}
	}
	if strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "issuer: flags go after the subcommand, e.g. \"issuer %s list %s\"\n", g.name, args[0])
	} else {
		fmt.Fprintf(stderr, "issuer: unknown subcommand %q for \"issuer %s\"\n", args[0], g.name)
	}
	g.usage(stderr)
	return 2
}

func (g adminGroup) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: issuer %s SUBCOMMAND [flags]\n\n%s\n\nSubcommands:\n", g.name, g.doc)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range g.commands {
		name := c.name
		if c.takesID {
			name += " ID"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nCommon flags (after the subcommand):\n%s\nRun \"issuer %s SUBCOMMAND -h\" for the flags of one subcommand.\n", commonFlagsHelp, g.name)
}

const commonFlagsHelp = `  --url URL            base URL of the issuer (default $ISSUER_URL, else ` + defaultIssuerURL + `)
  --admin-token TOKEN  admin API bearer token (default $ISSUER_ADMIN_TOKEN)
  --json               print the server's JSON response instead of text
  --timeout DURATION   give up after this long (default 10s)
`

func (g adminGroup) runCommand(ctx context.Context, c adminCommand, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("issuer "+g.name+" "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common commonFlags
	common.register(fs)
	run := c.bind(fs)
	fs.Usage = func() {
		line := "issuer " + g.name + " " + c.name
		if c.takesID {
			line += " ID"
		}
		if c.synopsis != "" {
			line += " " + c.synopsis
		}
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\n%s.\n\nFlags:\n", line, upperFirst(c.summary))
		fs.PrintDefaults()
	}

	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // the flag package has printed the error and the usage
	}
	usageFail := func(err error) int {
		fmt.Fprintf(stderr, "issuer: %v\n", err)
		fs.Usage()
		return 2
	}
	var id string
	if c.takesID {
		if len(pos) == 0 {
			return usageFail(usageErrorf("missing %s: run \"issuer %s %s ID\"; \"issuer %s list\" shows them", g.idName, g.name, c.name, g.name))
		}
		id, pos = pos[0], pos[1:]
		if id == "" || id == "." || id == ".." {
			return usageFail(usageErrorf("invalid %s %q: \"issuer %s list\" shows them", g.idName, id, g.name))
		}
	}
	if len(pos) > 0 {
		return usageFail(usageErrorf("unexpected argument %q", pos[0]))
	}

	a, err := common.resolve(getenv, stdout, stderr)
	if err != nil {
		return usageFail(err)
	}
	if a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	if err := run(ctx, a, id); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return usageFail(err)
		}
		fmt.Fprintf(stderr, "issuer: %v\n", err)
		return 1
	}
	return 0
}

// parseInterspersed parses args with fs and returns the positional arguments,
// which may come before, between or after the flags (`get ID --json` and
// `get --json ID` both work). A "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		// The flag package stopped at a non-flag argument: take it, and parse
		// whatever follows it again.
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// commonFlags are the flags of every admin subcommand.
type commonFlags struct {
	url     string
	token   string
	json    bool
	timeout time.Duration
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	// The defaults from the environment are applied in resolve, not here, so
	// that the usage never shows the admin token.
	fs.StringVar(&c.url, "url", "", "base `URL` of the issuer (default $ISSUER_URL, else "+defaultIssuerURL+")")
	fs.StringVar(&c.token, "admin-token", "", "admin API bearer `token` (default $ISSUER_ADMIN_TOKEN)")
	fs.BoolVar(&c.json, "json", false, "print the server's JSON response instead of text")
	fs.DurationVar(&c.timeout, "timeout", defaultTimeout, "give up after this long; 0 waits forever")
}

// resolve applies the environment defaults and checks the flags. A missing
// admin token is reported by the first request, after the subcommand has
// checked its own flags.
func (c *commonFlags) resolve(getenv func(string) string, stdout, stderr io.Writer) (*adminCLI, error) {
	raw, source := c.url, "--url"
	if raw == "" {
		raw, source = getenv("ISSUER_URL"), "ISSUER_URL"
	}
	if raw == "" {
		raw = defaultIssuerURL
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("invalid %s %q: use the issuer's absolute URL, such as %s", source, raw, defaultIssuerURL)
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""

	token := c.token
	if token == "" {
		token = getenv("ISSUER_ADMIN_TOKEN")
	}
	token = strings.TrimSpace(token)

	if c.timeout < 0 {
		return nil, usageErrorf("invalid --timeout %s: use a positive duration such as 10s", c.timeout)
	}
	return &adminCLI{
		base:    u,
		token:   token,
		json:    c.json,
		timeout: c.timeout,
		stdout:  stdout,
		stderr:  stderr,
		http: &http.Client{
			// A redirect is reported rather than followed: following it
			// could turn a POST into a GET or send the token elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// adminCLI calls the admin API and prints the results.
type adminCLI struct {
	base    *url.URL // no trailing slash, no query
	token   string   // never printed
	json    bool
	timeout time.Duration
	http    *http.Client
	stdout  io.Writer
	stderr  io.Writer
}

// apiError is an error response of the admin API.
type apiError struct {
	status      int
	code        string // the "error" member; empty when the body was not a JSON error
	description string
	hint        string // what to do about it, when the CLI knows
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d: ", e.status)
	if e.code != "" {
		b.WriteString(e.code)
		if e.description != "" {
			b.WriteString(": " + e.description)
		}
	} else {
		b.WriteString(http.StatusText(e.status))
	}
	if e.hint != "" {
		b.WriteString(" (" + e.hint + ")")
	}
	return b.String()
}

// call sends one admin API request. in, when non-nil, is sent as the JSON
// body; a successful response body is decoded into out when out is non-nil.
// call returns the raw body of a successful response.
func (a *adminCLI) call(ctx context.Context, method, path string, in, out any) ([]byte, error) {
	if a.token == "" {
		return nil, errors.New("no admin token: pass --admin-token or set ISSUER_ADMIN_TOKEN")
	}
	if strings.ContainsFunc(a.token, unicode.IsControl) {
		return nil, errors.New("the admin token contains control characters: check --admin-token or ISSUER_ADMIN_TOKEN")
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	endpoint := a.base.String() + path
	req, err := http.NewRequestWithContext(ctx, method, endpoint, body)
	if err != nil {
		return nil, fmt.Errorf("building the request to %s: %w", a.base.Redacted(), err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", cliUserAgent)

	resp, err := a.http.Do(req)
	if err != nil {
		return nil, a.transportError(ctx, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, a.transportError(ctx, err)
	}
	if len(raw) > maxResponseBytes {
		return nil, fmt.Errorf("the response of %s %s is larger than %d bytes", method, a.redacted(path), maxResponseBytes)
	}

	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		loc := clean(resp.Header.Get("Location"))
		return nil, fmt.Errorf("%d: %s %s redirects to %q: pass the issuer's base URL with --url or ISSUER_URL", resp.StatusCode, method, a.redacted(path), loc)
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		return nil, a.responseError(resp.StatusCode, raw)
	}
	if out != nil {
		if !json.Valid(raw) {
			return nil, fmt.Errorf("%s %s answered %d without a JSON body: check that --url or ISSUER_URL points at the issuer", method, a.redacted(path), resp.StatusCode)
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s answered JSON this CLI does not understand (%v): check that the CLI and the server are the same version", method, a.redacted(path), err)
		}
	}
	return raw, nil
}

func (a *adminCLI) redacted(path string) string { return a.base.Redacted() + path }

func (a *adminCLI) responseError(status int, raw []byte) error {
	e := &apiError{status: status}
	var body struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != "" {
		e.code = clean(body.Error)
		e.description = clean(body.ErrorDescription)
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.hint = "the admin token was refused: pass the server's ISSUER_ADMIN_TOKEN with --admin-token or ISSUER_ADMIN_TOKEN"
	case status == http.StatusNotFound && e.code == "":
		e.hint = fmt.Sprintf("no admin API at %s: check --url or ISSUER_URL, and that the server runs with ISSUER_ADMIN_TOKEN set", a.base.Redacted())
	case e.code == "":
		e.hint = fmt.Sprintf("unexpected answer from %s: check that --url or ISSUER_URL points at the issuer", a.base.Redacted())
	}
	return e
}

// transportError explains a failed HTTP exchange: nothing or no timely answer
// at the URL.
func (a *adminCLI) transportError(ctx context.Context, err error) error {
	where := a.base.Redacted()
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		within := "in time"
		if a.timeout > 0 {
			within = "within " + a.timeout.String()
		}
		return fmt.Errorf("the issuer at %s did not answer %s: check that it is running and reachable, or raise --timeout", where, within)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return errors.New("canceled before the issuer answered")
	}
	reason := err.Error()
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		reason = urlErr.Err.Error()
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		reason = "connection refused"
	case errors.As(err, &dnsErr):
		reason = "cannot resolve host " + dnsErr.Name
	}
	return fmt.Errorf("the issuer at %s is not reachable (%s): is it running? Start it with \"issuer serve\", or pass its URL with --url or ISSUER_URL", where, clean(reason))
}

// printJSON prints a JSON response indented.
func (a *adminCLI) printJSON(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("the issuer answered invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := a.stdout.Write(buf.Bytes())
	return err
}

// clientMetadata is what an admin sets on a client: the body of PUT
// /admin/clients/{id}, which replaces all of it.
type clientMetadata struct {
	ClientName              string   `json:"client_name"`
	GrantTypes              []string `json:"grant_types"`
	Scope                   string   `json:"scope"`
	Audience                []string `json:"audience"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	IntrospectAll           bool     `json:"introspect_all"`
}

// registration is the body of POST /admin/clients: clientMetadata without the
// fields the user did not give, so that the server applies its defaults.
type registration struct {
	ClientName              string   `json:"client_name,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	Audience                []string `json:"audience,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	IntrospectAll           bool     `json:"introspect_all,omitempty"`
}

// clientInfo is a client as the admin API returns it.
type clientInfo struct {
	ClientID string `json:"client_id"`
	// ClientSecret is present only in the responses of create and rotate.
	ClientSecret string `json:"client_secret"`
	clientMetadata
	ClientIDIssuedAt      int64 `json:"client_id_issued_at"`
	ClientSecretExpiresAt int64 `json:"client_secret_expires_at"`
}

// signingKey is a signing key as the admin API returns it.
type signingKey struct {
	KID       string `json:"kid"`
	Alg       string `json:"alg"`
	State     string `json:"state"`
	CreatedAt string `json:"created_at"`
	NotBefore string `json:"not_before"`
	RetiresAt string `json:"retires_at"`
	RemovedAt string `json:"removed_at"`
	File      string `json:"file"`
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
}

func bindMetadata(fs *flag.FlagSet, update bool) *metadataFlags {
	m := &metadataFlags{fs: fs}
	audience := "allowed audience `URL` of the client's tokens; repeat for several"
	grantTypes := "comma-separated grant `types` (server default client_credentials,refresh_token)"
	authMethod := "token endpoint auth `method`: client_secret_basic (server default) or client_secret_post"
	if update {
		audience += "; replaces the list, --audience \"\" clears it"
		grantTypes = "comma-separated grant `types`, e.g. client_credentials,refresh_token"
		authMethod = "token endpoint auth `method`: client_secret_basic or client_secret_post"
	}
	fs.StringVar(&m.name, "name", "", "client `name` (client_name)")
	fs.StringVar(&m.scope, "scope", "", "allowed `scopes`, space-separated, e.g. \"read write\"")
	fs.Var(&m.audience, "audience", audience)
	fs.StringVar(&m.grantTypes, "grant-types", "", grantTypes)
	fs.StringVar(&m.authMethod, "auth-method", "", authMethod)
	fs.BoolVar(&m.introspectAll, "introspect-all", false, "let the client introspect every token, not only its own (for resource servers); --introspect-all=false takes it away")
	return m
}

// given returns the names of the metadata flags on the command line, and
// checks their values.
func (m *metadataFlags) given() ([]string, error) {
	var names []string
	m.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "name", "scope", "audience", "grant-types", "auth-method", "introspect-all":
			names = append(names, f.Name)
		}
	})
	for _, n := range names {
		if n == "auth-method" && m.authMethod != "client_secret_basic" && m.authMethod != "client_secret_post" {
			return nil, usageErrorf("invalid --auth-method %q: use client_secret_basic or client_secret_post", m.authMethod)
		}
	}
	return names, nil
}

// apply sets the fields of the flags named in given on md.
func (m *metadataFlags) apply(md *clientMetadata, given []string) {
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
		}
	}
}

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

func clientPath(id string) string { return "/admin/clients/" + url.PathEscape(id) }

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
		var md clientMetadata
		m.apply(&md, given)
		var c clientInfo
		raw, err := a.call(ctx, http.MethodPost, "/admin/clients", registration(md), &c)
		if err != nil {
			return err
		}
		return a.printSecret(raw, &c)
	}
}

// printSecret prints the response of create or rotate-secret, which holds the
// client secret.
func (a *adminCLI) printSecret(raw []byte, c *clientInfo) error {
	if a.json {
		if err := a.printJSON(raw); err != nil {
			return err
		}
	} else {
		if c.ClientID == "" || c.ClientSecret == "" {
			return errors.New("the issuer's answer has no client_id or client_secret: check that the CLI and the server are the same version")
		}
		if _, err := fmt.Fprintf(a.stdout, "client_id: %s\nclient_secret: %s\n", clean(c.ClientID), c.ClientSecret); err != nil {
			return err
		}
	}
	fmt.Fprintln(a.stderr, "Store the secret now: it is shown only once.")
	return nil
}

func bindClientsList(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, _ string) error {
		var resp struct {
			Clients []clientInfo `json:"clients"`
		}
		raw, err := a.call(ctx, http.MethodGet, "/admin/clients", nil, &resp)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(raw)
		}
		if len(resp.Clients) == 0 {
			fmt.Fprintln(a.stderr, "No clients yet: register one with \"issuer clients create --name NAME\".")
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tNAME\tSCOPE\tAUDIENCE")
		for _, c := range resp.Clients {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cell(c.ClientID), cell(c.ClientName), cell(c.Scope), cell(strings.Join(c.Audience, ",")))
		}
		return tw.Flush()
	}
}

func bindClientsGet(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, id string) error {
		var c clientInfo
		raw, err := a.call(ctx, http.MethodGet, clientPath(id), nil, &c)
		if err != nil {
			return err
		}
		return a.printClient(raw, &c)
	}
}

// printClient prints a client as `key: value` lines, or the raw JSON.
func (a *adminCLI) printClient(raw []byte, c *clientInfo) error {
	if a.json {
		return a.printJSON(raw)
	}
	issued := "-"
	if c.ClientIDIssuedAt != 0 {
		issued = time.Unix(c.ClientIDIssuedAt, 0).UTC().Format(time.RFC3339)
	}
	expires := "never"
	if c.ClientSecretExpiresAt != 0 {
		expires = time.Unix(c.ClientSecretExpiresAt, 0).UTC().Format(time.RFC3339)
	}
	_, err := fmt.Fprintf(a.stdout, "client_id: %s\nclient_name: %s\ngrant_types: %s\nscope: %s\naudience: %s\ntoken_endpoint_auth_method: %s\nintrospect_all: %t\nclient_id_issued_at: %s\nclient_secret_expires_at: %s\n",
		clean(c.ClientID), clean(c.ClientName), clean(strings.Join(c.GrantTypes, ",")), clean(c.Scope),
		clean(strings.Join(c.Audience, ",")), clean(c.TokenEndpointAuthMethod), c.IntrospectAll, issued, expires)
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
			return usageErrorf("nothing to update: pass at least one of --name, --scope, --audience, --grant-types, --auth-method, --introspect-all")
		}
		var cur clientInfo
		if _, err := a.call(ctx, http.MethodGet, clientPath(id), nil, &cur); err != nil {
			return err
		}
		md := cur.clientMetadata
		if md.GrantTypes == nil {
			md.GrantTypes = []string{}
		}
		if md.Audience == nil {
			md.Audience = []string{}
		}
		m.apply(&md, given)
		var c clientInfo
		raw, err := a.call(ctx, http.MethodPut, clientPath(id), md, &c)
		if err != nil {
			return err
		}
		return a.printClient(raw, &c)
	}
}

func bindClientsRotateSecret(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, id string) error {
		var c clientInfo
		raw, err := a.call(ctx, http.MethodPost, clientPath(id)+"/secret", nil, &c)
		if err != nil {
			return err
		}
		return a.printSecret(raw, &c)
	}
}

func bindClientsDelete(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, id string) error {
		if _, err := a.call(ctx, http.MethodDelete, clientPath(id), nil, nil); err != nil {
			return err
		}
		if a.json {
			// DELETE answers 204 without a body; give scripts something to parse.
			raw, err := json.Marshal(map[string]any{"client_id": id, "deleted": true})
			if err != nil {
				return err
			}
			return a.printJSON(raw)
		}
		_, err := fmt.Fprintf(a.stdout, "deleted client %s\n", clean(id))
		return err
	}
}

func bindKeysList(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, _ string) error {
		var resp struct {
			Keys []signingKey `json:"keys"`
		}
		raw, err := a.call(ctx, http.MethodGet, "/admin/keys", nil, &resp)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(raw)
		}
		if len(resp.Keys) == 0 {
			fmt.Fprintln(a.stderr, "The issuer has no signing keys yet: they are generated when it first starts.")
			return nil
		}
		files := slices.ContainsFunc(resp.Keys, func(k signingKey) bool { return k.File != "" })
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		header := "KID\tALG\tSTATE\tNOT_BEFORE\tRETIRES_AT\tREMOVED_AT"
		if files {
			header += "\tFILE"
		}
		fmt.Fprintln(tw, header)
		for _, k := range resp.Keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s", cell(k.KID), cell(k.Alg), cell(k.State), cell(k.NotBefore), cell(k.RetiresAt), cell(k.RemovedAt))
			if files {
				fmt.Fprintf(tw, "\t%s", cell(k.File))
			}
			fmt.Fprintln(tw)
		}
		return tw.Flush()
	}
}

func bindKeysRotate(fs *flag.FlagSet) runFunc {
	in := fs.Duration("in", 0, "schedule instead: the new key is published now and starts signing after this `duration` (at least 2 × the server's jwks_max_age), e.g. 24h")
	return func(ctx context.Context, a *adminCLI, _ string) error {
		var body any
		if *in < 0 {
			return usageErrorf("invalid --in %s: use a positive duration such as 24h", *in)
		}
		if *in > 0 {
			body = map[string]string{"not_before": time.Now().Add(*in).UTC().Format(time.RFC3339)}
		}
		var k signingKey
		raw, err := a.call(ctx, http.MethodPost, "/admin/keys/rotate", body, &k)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(raw)
		}
		if k.KID == "" {
			return errors.New("the issuer's answer has no kid: check that the CLI and the server are the same version")
		}
		if *in > 0 {
			_, err = fmt.Fprintf(a.stdout, "kid: %s\nKey %s (%s) is published now and starts signing at %s.\n",
				clean(k.KID), clean(k.KID), clean(k.Alg), clean(k.NotBefore))
			if err == nil && k.Alg == "HS256" {
				fmt.Fprintf(a.stderr, "Give its secret to every resource API before then: issuer keys secret %s\n", clean(k.KID))
			}
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "kid: %s\nKey %s (%s) signs new tokens from now on; the previous key stays in the JWKS until the tokens it signed expire.\n",
			clean(k.KID), clean(k.KID), clean(k.Alg))
		if err == nil && k.Alg == "HS256" {
			fmt.Fprintf(a.stderr, "Resource APIs reject its tokens until they have its secret: issuer keys secret %s\n", clean(k.KID))
		}
		return err
	}
}

func keyPath(kid string) string { return "/admin/keys/" + url.PathEscape(kid) }

func bindKeysRevoke(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, kid string) error {
		var resp struct {
			Revoked signingKey `json:"revoked"`
			Current signingKey `json:"current"`
		}
		raw, err := a.call(ctx, http.MethodDelete, keyPath(kid), nil, &resp)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(raw)
		}
		if resp.Current.KID == "" {
			return errors.New("the issuer's answer has no current kid: check that the CLI and the server are the same version")
		}
		_, err = fmt.Fprintf(a.stdout, "revoked: %s\ncurrent: %s\nKey %s is out of the JWKS, and the issuer no longer accepts its tokens (introspection says inactive). Resource APIs that cached the JWKS accept them until their cache expires (the JWKS max-age).\n",
			clean(kid), clean(resp.Current.KID), clean(kid))
		return err
	}
}

func bindKeysSecret(*flag.FlagSet) runFunc {
	return func(ctx context.Context, a *adminCLI, kid string) error {
		raw, err := a.call(ctx, http.MethodGet, keyPath(kid)+"/secret", nil, &struct{}{})
		if err != nil {
			return err
		}
		if err := a.printJSON(raw); err != nil {
			return err
		}
		fmt.Fprintln(a.stderr, `This is the HS256 secret as a JWK ("k" is its base64url). Give it only to the resource APIs that verify tokens, over a secure channel; whoever has it can mint tokens.`)
		return nil
	}
}

// clean replaces control characters in text from the server, so that it
// cannot move the cursor or forge lines on the user's terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// cell is clean for a table cell: "-" when empty.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
