package main

// The admin commands' dispatch: `issuer clients …`, `issuer keys …` and
// `issuer users …` call the admin API of a running issuer (docs/admin.md) through adminapi.Client with the admin bearer token. Each
// subcommand has its own flag.FlagSet, so flags follow the subcommand; a
// positional argument (a client ID, a kid, a username, a file) may come
// before or after the flags. The subcommands themselves are in clients.go,
// keys.go and users.go; explain.go turns failures into sentences that say
// what to fix.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/issuer-oauth/issuer/internal/adminapi"
)

const defaultTimeout = 10 * time.Second

// runClients implements `issuer clients SUBCOMMAND [flags]`; it returns the process exit code.
func runClients(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return clientsGroup.run(ctx, args, getenv, nil, stdout, stderr)
}

// runKeys implements `issuer keys list|rotate|revoke|secret [flags]`.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return keysGroup.run(ctx, args, getenv, nil, stdout, stderr)
}

// runUsers implements `issuer users SUBCOMMAND [flags]`. stdin carries a
// password (--password-stdin) or a dump to import (import -).
func runUsers(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	return usersGroup.run(ctx, args, getenv, stdin, stdout, stderr)
}

// adminGroup is `issuer clients`, `issuer keys` or `issuer users`: a set of
// subcommands.
type adminGroup struct {
	name     string // "clients"
	doc      string // one sentence for the usage
	idName   string // what the positional ID is: "client ID", "kid"
	idArg    string // how the usage shows the ID: "ID" when empty
	commands []adminCommand
}

// adminCommand is one subcommand of an adminGroup.
type adminCommand struct {
	name     string // "rotate-secret"
	synopsis string // flags shown after the name (and ID) in the usage line
	summary  string // one line in the group's usage
	takesID  bool   // exactly one positional argument: an ID, or arg
	// arg, when set, is how the usage shows a positional argument that is
	// not the ID of an existing item ("FILE", or the USERNAME of a new
	// user); its messages then do not point at the list subcommand.
	arg string
	// bind registers the subcommand's own flags on fs and returns the function
	// that runs the subcommand once the flags are parsed.
	bind func(fs *flag.FlagSet) runFunc
}

// positional returns how the usage shows c's positional argument, what
// messages call it, and where to find one ("" for nowhere).
func (g adminGroup) positional(c adminCommand) (arg, name, hint string) {
	if c.arg != "" {
		return c.arg, strings.ToLower(c.arg), ""
	}
	arg = g.idArg
	if arg == "" {
		arg = "ID"
	}
	return arg, g.idName, fmt.Sprintf("\"issuer %s list\" shows them", g.name)
}

// runFunc runs a subcommand against the admin API. id is the positional
// argument for subcommands that take one. A usageError result exits with
// code 2.
type runFunc func(ctx context.Context, a *adminCLI, id string) error

// usageError is a mistake in the command line: it is printed with the usage
// and exits with code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}

// run runs the subcommand of args. stdin may be nil for a group whose
// subcommands read nothing from it.
func (g adminGroup) run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
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
			return g.runCommand(ctx, c, args[1:], getenv, stdin, stdout, stderr)
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
			arg, _, _ := g.positional(c)
			name += " " + arg
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nCommon flags (after the subcommand):\n%s\nRun \"issuer %s SUBCOMMAND -h\" for the flags of one subcommand.\n", commonFlagsHelp, g.name)
}

const commonFlagsHelp = `  --url URL            base URL of the issuer's admin API (default $ISSUER_ADMIN_URL,
                       else http:// and $ISSUER_ADMIN_ADDR, else $ISSUER_URL, else
                       http://localhost:PORT from $ISSUER_ADDR or $PORT, as
                       "issuer serve" derives it; default port 8080)
  --admin-token TOKEN  admin API bearer token (default $ISSUER_ADMIN_TOKEN)
  --json               print the server's JSON response instead of text
  --timeout DURATION   give up after this long (default 10s)
`

func (g adminGroup) runCommand(ctx context.Context, c adminCommand, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("issuer "+g.name+" "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common commonFlags
	common.register(fs)
	run := c.bind(fs)
	arg, argName, hint := g.positional(c)
	fs.Usage = func() {
		line := "issuer " + g.name + " " + c.name
		if c.takesID {
			line += " " + arg
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
			msg := fmt.Sprintf("missing %s: run \"issuer %s %s %s\"", argName, g.name, c.name, arg)
			if hint != "" {
				msg += "; " + hint
			}
			return usageFail(usageError{msg})
		}
		id, pos = pos[0], pos[1:]
		if id == "" || id == "." || id == ".." {
			msg := fmt.Sprintf("invalid %s %q", argName, id)
			if hint != "" {
				msg += ": " + hint
			}
			return usageFail(usageError{msg})
		}
	}
	if len(pos) > 0 {
		return usageFail(usageErrorf("unexpected argument %q", pos[0]))
	}

	a, err := common.resolve(getenv, stdin, stdout, stderr)
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
		fmt.Fprintf(stderr, "issuer: %v\n", a.explain(ctx, err))
		return 1
	}
	return 0
}

// parseInterspersed parses args with fs and returns the positional arguments,
// which may come before, between or after the flags (`get ID --json` and
// `get --json ID` both work). A "--" ends the flags.
//
// Client ids and key ids are random base64url, so one may begin with "-":
// an argument that does so, is no flag of fs and has a character no flag
// name has (an upper-case letter, a digit or "_") is taken as positional
// too, so that `keys revoke -uxk…` works as `keys revoke -- -uxk…` does.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	args = slices.Clone(args)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if isID(fs, a) {
			pos = append(pos, a)
			args = slices.Delete(args, i, i+1)
			i--
			continue
		}
		// The value of a flag that takes one is not looked at.
		if name, hasValue := flagName(a); name != "" && !hasValue {
			if f := fs.Lookup(name); f != nil && !isBoolFlag(f) {
				i++
			}
		}
	}
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

// isID reports whether a, which begins with "-", is an id rather than a
// flag of fs (see parseInterspersed).
func isID(fs *flag.FlagSet, a string) bool {
	name, _ := flagName(a)
	if name == "" || fs.Lookup(name) != nil || name == "h" || name == "help" {
		return false
	}
	return strings.ContainsFunc(name, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' })
}

// flagName returns the name of the flag argument a ("-name", "--name",
// "--name=value"), and whether it carries its value; "" when a is no flag.
func flagName(a string) (name string, hasValue bool) {
	if len(a) < 2 || a[0] != '-' || a == "--" {
		return "", false
	}
	name = strings.TrimPrefix(a[1:], "-")
	name, _, hasValue = strings.Cut(name, "=")
	return name, hasValue
}

// isBoolFlag reports whether f takes no value (a boolean flag).
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
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
	fs.StringVar(&c.url, "url", "", "base `URL` of the issuer's admin API (default $ISSUER_ADMIN_URL, else http:// and $ISSUER_ADMIN_ADDR, else $ISSUER_URL, else derived from $ISSUER_ADDR or $PORT as \"issuer serve\" does: http://localhost:8080 by default)")
	fs.StringVar(&c.token, "admin-token", "", "admin API bearer `token` (default $ISSUER_ADMIN_TOKEN)")
	fs.BoolVar(&c.json, "json", false, "print the server's JSON response instead of text")
	fs.DurationVar(&c.timeout, "timeout", defaultTimeout, "give up after this long; 0 waits forever")
}

// resolve applies the environment defaults and checks the flags. A missing
// admin token is reported by the first request, after the subcommand has
// checked its own flags.
func (c *commonFlags) resolve(getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) (*adminCLI, error) {
	t, err := findServer(c.url, getenv)
	if err != nil {
		return nil, err
	}

	token := c.token
	if token == "" {
		token = getenv("ISSUER_ADMIN_TOKEN")
	}
	token = strings.TrimSpace(token)

	if c.timeout < 0 {
		return nil, usageErrorf("invalid --timeout %s: use a positive duration such as 10s", c.timeout)
	}
	return &adminCLI{
		api:     adminapi.NewClient(t.base, token, checkedClient(t)),
		where:   t.where(),
		json:    c.json,
		timeout: c.timeout,
		stdin:   stdin,
		stdout:  stdout,
		stderr:  stderr,
	}, nil
}

// adminCLI calls the admin API and prints the results.
type adminCLI struct {
	api     *adminapi.Client
	where   string // the issuer's URL and what named it, for messages
	json    bool
	timeout time.Duration
	stdin   io.Reader // nil for the groups that read nothing from it
	stdout  io.Writer
	stderr  io.Writer
}

// printJSON prints v, a value of the admin API's wire format, as indented
// JSON: what the server answered.
func (a *adminCLI) printJSON(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := a.stdout.Write(buf.Bytes())
	return err
}

// clean replaces control characters in text from the server, so that it
// cannot move the cursor or forge lines on the user's terminal.
func clean(s string) string { return adminapi.Clean(s) }

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
