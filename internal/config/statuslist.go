package config

import (
	"fmt"
	"time"
)

// Bounds of status_list_ttl: a list is fetched at most once a second, and
// a revocation reaches resource APIs within the hour at worst.
const (
	minStatusListTTL = time.Second
	maxStatusListTTL = time.Hour
)

// statusListProblems checks the settings of the Token Status Lists.
func (c Config) statusListProblems() []problem {
	if c.StatusListTTL < minStatusListTTL || c.StatusListTTL > maxStatusListTTL || c.StatusListTTL%time.Second != 0 {
		return []problem{{key: "status_list_ttl", msg: fmt.Sprintf("%s is out of range; use whole seconds from %s to %s, such as 30s",
			formatDuration(c.StatusListTTL), formatDuration(minStatusListTTL), formatDuration(maxStatusListTTL))}}
	}
	return nil
}
