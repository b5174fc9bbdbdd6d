package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load returns the configuration built from Default, then the YAML file at path
// when path is not empty, then the environment variables read with getenv
// (nil reads none), and checks it with Validate.
//
// In the file, durations are Go duration strings such as 5m, an empty value
// (key:) leaves the default, and an unknown key is an error naming it and its
// line. An environment variable that is empty counts as unset, so it cannot
// clear a value the file sets (remove admin_token from the file to turn the
// admin API off). When neither ISSUER_ADDR nor the file sets the listen
// address, PORT=N gives ":N", as on Heroku. When neither ISSUER_URL nor the
// file sets the issuer URL, it is ListenURL of the listen address, so that
// changing the port alone keeps the advertised URLs right. Load removes a
// trailing slash from the issuer URL and the admin URL, and spaces around
// the commas of the Redis URL list.
//
// A file that cannot be read or is not valid YAML is one error naming the
// path. Otherwise Load reports every bad key, every value that does not parse
// and every problem Validate finds, one line each, joined with errors.Join;
// a line about a value from the file says on which line it is.
func Load(path string, getenv func(string) string) (Config, error) {
	l := loader{
		c:      Default(),
		where:  make(map[string]string),
		failed: make(map[string]bool),
	}
	if path != "" {
		if err := l.file(path); err != nil {
			return Config{}, err
		}
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	l.env(getenv)
	if _, inFile := l.where["url"]; !inFile && getenv("ISSUER_URL") == "" && checkAddr(l.c.Addr) == "" {
		l.c.URL = ListenURL(l.c.Addr)
		l.where["url"] = "derived from ISSUER_ADDR (addr); set ISSUER_URL"
	}

	c := &l.c
	if u, err := url.Parse(c.URL); err == nil && u.Host != "" {
		c.URL = strings.TrimRight(c.URL, "/")
	}
	if u, err := url.Parse(c.AdminURL); err == nil && u.Host != "" {
		c.AdminURL = strings.TrimRight(c.AdminURL, "/")
	}
	if c.RedisURL != "" {
		elems := strings.Split(c.RedisURL, ",")
		for i := range elems {
			elems[i] = strings.TrimSpace(elems[i])
		}
		c.RedisURL = strings.Join(elems, ",")
	}

	for _, p := range withoutCascades(c.problems(), l.failed) {
		if !l.failed[p.key] {
			l.errs = append(l.errs, p.line(l.where[p.key]))
		}
	}
	if len(l.errs) > 0 {
		return Config{}, errors.Join(l.errs...)
	}
	return l.c, nil
}

// ListenURL returns the http URL at which a server listening on addr
// (host:port) is reached from its own host: http://localhost:PORT when addr
// names no host or an unspecified address (:8080, 0.0.0.0:8080, [::]:8080),
// else http://HOST:PORT. It is the default issuer URL, and where the CLI
// looks for the issuer when neither --url nor ISSUER_URL names it.
func ListenURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = "", addr
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// loader accumulates a Config and the problems found while building it.
type loader struct {
	c      Config
	where  map[string]string // yaml key → where its value came from, unless the environment
	failed map[string]bool   // yaml keys whose value did not parse
	errs   []error
}

// env sets every setting whose environment variable is not empty.
func (l *loader) env(getenv func(string) string) {
	for _, s := range settings {
		raw := getenv(s.env)
		if raw == "" {
			continue
		}
		delete(l.where, s.key)
		if err := s.set(&l.c, raw); err != nil {
			l.failed[s.key] = true
			l.errs = append(l.errs, problem{key: s.key, msg: err.Error()}.line(""))
		}
	}
	if _, inFile := l.where["addr"]; !inFile && getenv("ISSUER_ADDR") == "" {
		if port := getenv("PORT"); port != "" {
			l.c.Addr = ":" + port
			l.where["addr"] = "from PORT"
		}
	}
}

// fileType is a struct type with one yaml.Node field per field of Config, under
// the same yaml key. Decoding into it with KnownFields rejects unknown keys and
// keeps every value with its line, to be parsed like an environment variable.
var fileType = func() reflect.Type {
	t := reflect.TypeFor[Config]()
	fields := make([]reflect.StructField, t.NumField())
	for i := range fields {
		f := t.Field(i)
		fields[i] = reflect.StructField{
			Name: f.Name,
			Type: reflect.TypeFor[yaml.Node](),
			Tag:  reflect.StructTag(`yaml:"` + f.Tag.Get("yaml") + `"`),
		}
	}
	return reflect.StructOf(fields)
}()

// unknownField matches yaml.v3's message for an unknown key under KnownFields.
var unknownField = regexp.MustCompile(`^line (\d+): field (.*) not found in type `)

// file sets the settings given in the YAML file at path. It returns an error
// only when the file cannot be read or parsed; problems with keys and values
// go to l.errs.
func (l *loader) file(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("config file %s: %w; check the path given to --config", path, err)
	}

	// Check the shape first: the decoder below would describe a wrong one in
	// terms of its internal struct type.
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil // empty, or only comments
	case err != nil:
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if root := doc.Content[0]; root.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s line %d: the file must hold settings as key: value lines, such as url: https://auth.example.com", path, root.Line)
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: holds more than one YAML document; keep the settings in one", path)
	}

	v := reflect.New(fileType)
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v.Interface()); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return fmt.Errorf("config file %s: %w", path, err)
		}
		for _, msg := range te.Errors {
			if m := unknownField.FindStringSubmatch(msg); m != nil {
				l.errs = append(l.errs, fmt.Errorf("config file %s line %s: unknown setting %q; %s", path, m[1], m[2], suggest(m[2])))
			} else {
				l.errs = append(l.errs, fmt.Errorf("config file %s: %s", path, msg))
			}
		}
	}

	for _, s := range settings {
		n := v.Elem().Field(s.field).Interface().(yaml.Node)
		if n.Kind == 0 {
			continue // key absent
		}
		at := fmt.Sprintf("%s line %d", path, n.Line)
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = *n.Alias
		}
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
			continue // "key:" with no value leaves the default
		}
		l.where[s.key] = at
		if n.Kind == yaml.SequenceNode && s.list != "" {
			raw, err := listValue(&n, s.list)
			if err == nil {
				err = s.set(&l.c, raw)
			}
			if err != nil {
				l.failed[s.key] = true
				l.errs = append(l.errs, problem{key: s.key, msg: err.Error()}.line(at))
			}
			continue
		}
		if n.Kind != yaml.ScalarNode {
			l.failed[s.key] = true
			l.errs = append(l.errs, problem{key: s.key, msg: "must be a single value, not a list or mapping"}.line(at))
			continue
		}
		if err := s.set(&l.c, n.Value); err != nil {
			l.failed[s.key] = true
			l.errs = append(l.errs, problem{key: s.key, msg: err.Error()}.line(at))
		}
	}
	return nil
}

// suggest names the known setting closest to the unknown key, or lists them all.
func suggest(key string) string {
	best, bestDist := "", 3 // suggest only within two edits
	for _, s := range settings {
		if d := editDistance(key, s.key); d < bestDist {
			best, bestDist = s.key, d
		}
	}
	if best != "" {
		return "did you mean " + best + "?"
	}
	keys := make([]string, len(settings))
	for i, s := range settings {
		keys[i] = s.key
	}
	return "the settings are " + strings.Join(keys, ", ")
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// UnknownEnv returns one warning for each variable of environ (NAME=value
// pairs, as from os.Environ) whose name starts with ISSUER_ but that is no
// setting, such as a misspelt ISSUER_ACESS_TOKEN_TTL, which the issuer
// would otherwise ignore in silence. A warning names the variable and the
// setting within two edits of it, if any; it never shows the value.
func UnknownEnv(environ []string) []string {
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "ISSUER_") || slices.ContainsFunc(settings, func(s setting) bool { return s.env == name }) {
			continue
		}
		warnings = append(warnings, fmt.Sprintf("%s is not a setting and is ignored; %s", name, suggestEnv(name)))
	}
	return warnings
}

// suggestEnv names the setting's variable closest to the unknown variable
// name.
func suggestEnv(name string) string {
	// A Service named issuer in Kubernetes adds ISSUER_SERVICE_HOST,
	// ISSUER_PORT_8080_TCP and more to every pod of its namespace.
	if strings.HasPrefix(name, "ISSUER_SERVICE_") || name == "ISSUER_PORT" || strings.HasPrefix(name, "ISSUER_PORT_") {
		return "Kubernetes sets it for a Service named issuer: set enableServiceLinks: false in the pod spec"
	}
	best, bestDist := "", 3 // suggest only within two edits
	for _, s := range settings {
		if d := editDistance(name, s.env); d < bestDist {
			best, bestDist = s.env, d
		}
	}
	if best != "" {
		return "did you mean " + best + "?"
	}
	return "config.yaml lists every setting with its variable"
}

// listValue writes the YAML list n as the string value of a list setting:
// its scalars joined with commas, or the list as JSON.
func listValue(n *yaml.Node, format string) (string, error) {
	if format == "comma" {
		var items []string
		for _, e := range n.Content {
			if e.Kind != yaml.ScalarNode || strings.Contains(e.Value, ",") {
				return "", errors.New("must be a list of single values without commas")
			}
			items = append(items, e.Value)
		}
		return strings.Join(items, ","), nil
	}
	var v []any
	if err := n.Decode(&v); err != nil {
		return "", fmt.Errorf("is not a list of mappings: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("cannot be written as JSON: %v", err)
	}
	return string(b), nil
}
