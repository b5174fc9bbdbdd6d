package config

import (
	"fmt"
	"time"
)

// Limits of the client-assertion settings, checked by Validate.
const (
	minClientAssertionMaxLifetime = 10 * time.Second
	maxClientAssertionMaxLifetime = time.Hour
)

// clientAuthProblems checks the settings of clients without shared
// secrets.
func (c Config) clientAuthProblems() []problem {
	var ps []problem
	add := func(key, format string, args ...any) {
		ps = append(ps, problem{key, fmt.Sprintf(format, args...)})
	}
	if d := c.ClientAssertionMaxLifetime; d < minClientAssertionMaxLifetime || d > maxClientAssertionMaxLifetime {
		add("client_assertion_max_lifetime", "%s is out of range; use %s to %s, such as 5m",
			formatDuration(d), formatDuration(minClientAssertionMaxLifetime), formatDuration(maxClientAssertionMaxLifetime))
	}
	return ps
}
