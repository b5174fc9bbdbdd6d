package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/issuer-oauth/issuer/internal/oauth"
)

// Limits of the password-grant settings.
const (
	minPasswordHashMemoryKiB   = 19456     // 19 MiB: OWASP's minimum for argon2id with t=2, p=1
	maxPasswordHashMemoryKiB   = 256 << 10 // the bounds internal/password accepts from a stored hash
	minPasswordHashIterations  = 2
	maxPasswordHashIterations  = 10
	maxPasswordHashWork        = 1 << 20 // memory × iterations, in KiB
	maxPasswordHashParallelism = 16
	maxPasswordHashConcurrency = 1024
	minPasswordFailureWindow   = time.Minute
	maxPasswordFailureWindow   = 24 * time.Hour
)

// userProblems checks the settings of the password grant and of the
// SimpleJWT-compatible endpoints.
func (c Config) userProblems() []problem {
	var ps []problem
	add := func(key, format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
	}
	cross := func(needs []string, key, format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...), needs: needs})
	}
	if c.PasswordHashMemoryKiB < minPasswordHashMemoryKiB || c.PasswordHashMemoryKiB > maxPasswordHashMemoryKiB {
		add("password_hash_memory_kib", "%d is out of range; use %d (19 MiB, the argon2id minimum) to %d (256 MiB)",
			c.PasswordHashMemoryKiB, minPasswordHashMemoryKiB, maxPasswordHashMemoryKiB)
	}
	if c.PasswordHashIterations < minPasswordHashIterations || c.PasswordHashIterations > maxPasswordHashIterations {
		add("password_hash_iterations", "%d is out of range; use %d to %d", c.PasswordHashIterations, minPasswordHashIterations, maxPasswordHashIterations)
	}
	if w := c.PasswordHashMemoryKiB * c.PasswordHashIterations; w > maxPasswordHashWork {
		cross([]string{"password_hash_memory_kib", "password_hash_iterations"}, "password_hash_iterations", "%d passes over %d KiB are %d KiB of work, above %d (1 GiB): a login would take seconds; lower one of them",
			c.PasswordHashIterations, c.PasswordHashMemoryKiB, w, maxPasswordHashWork)
	}
	if c.PasswordHashParallelism < 1 || c.PasswordHashParallelism > maxPasswordHashParallelism {
		add("password_hash_parallelism", "%d is out of range; use 1 to %d", c.PasswordHashParallelism, maxPasswordHashParallelism)
	}
	if c.PasswordHashConcurrency < 0 || c.PasswordHashConcurrency > maxPasswordHashConcurrency {
		add("password_hash_concurrency", "%d is out of range; use 0 (the number of CPUs) to %d", c.PasswordHashConcurrency, maxPasswordHashConcurrency)
	}
	if c.PasswordFailureWindow < minPasswordFailureWindow || c.PasswordFailureWindow > maxPasswordFailureWindow {
		add("password_failure_window", "%s is out of range; use %s to %s, such as 15m",
			formatDuration(c.PasswordFailureWindow), formatDuration(minPasswordFailureWindow), formatDuration(maxPasswordFailureWindow))
	}
	for _, l := range []struct {
		key string
		n   int64
	}{
		{"password_failures_per_user", c.PasswordFailuresPerUser},
		{"password_failures_per_address", c.PasswordFailuresPerAddress},
	} {
		if l.n < 0 || l.n > maxLimit {
			add(l.key, "%d is out of range; use 0 (no limit) to %d", l.n, maxLimit)
		}
	}
	p := c.SimpleJWTPath
	switch {
	case !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") || len(p) < 3:
		add("simplejwt_path", "%q must start and end with a slash, such as /api/token/", p)
	case !printableWord(p) || strings.ContainsAny(p, "?#%{}*") || strings.Contains(p, "//") || strings.Contains(p, "/../") || strings.Contains(p, "/./"):
		add("simplejwt_path", "%q is not a plain path; use letters, digits and slashes, such as /api/token/", p)
	case strings.HasPrefix(p, "/admin/") || strings.HasPrefix(p, "/oauth2/") || strings.HasPrefix(p, "/.well-known/"):
		add("simplejwt_path", "%q is inside the issuer's own endpoints; use another path, such as /api/token/", p)
	}
	if c.SimpleJWTCompat && !c.PasswordGrant {
		cross([]string{"password_grant"}, "simplejwt_compat", "is true but ISSUER_PASSWORD_GRANT (password_grant) is false; the SimpleJWT-compatible endpoints "+
			"log users in with their passwords: set password_grant: true too")
	}
	if c.SimpleJWTCompat && c.SimpleJWTClientID == "" {
		cross([]string{"simplejwt_compat"}, "simplejwt_client_id", "is empty but ISSUER_SIMPLEJWT_COMPAT (simplejwt_compat) is true; set the id of the client "+
			"whose audience and scope the SimpleJWT-compatible tokens get (register one with issuer clients create --grant-types password,refresh_token)")
	}
	switch u := c.SimpleJWTUserIDClaim; {
	case u == "" || !printableWord(u) || strings.ContainsAny(u, `"\`):
		add("simplejwt_user_id_claim", "%q is not a claim name; use printable characters, such as user_id", u)
	case oauth.ReservedClaim(u):
		add("simplejwt_user_id_claim", "%q is a claim the issuer sets itself; use another name, such as user_id", u)
	}
	return ps
}
