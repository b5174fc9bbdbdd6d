package config

import (
	"fmt"
	"time"
)

// Limits of dpop_proof_max_age: long enough for a client's clock to lag a
// little, short enough that a captured proof (and the record of its jti)
// does not live long.
const (
	minDPoPProofMaxAge = 10 * time.Second
	maxDPoPProofMaxAge = time.Hour
)

// dpopProblems checks the DPoP settings.
func (c Config) dpopProblems() []problem {
	if c.DPoPProofMaxAge < minDPoPProofMaxAge || c.DPoPProofMaxAge > maxDPoPProofMaxAge {
		return []problem{{key: "dpop_proof_max_age", msg: fmt.Sprintf("%s is out of range; use %s to %s, such as 5m",
			formatDuration(c.DPoPProofMaxAge), formatDuration(minDPoPProofMaxAge), formatDuration(maxDPoPProofMaxAge))}}
	}
	return nil
}
