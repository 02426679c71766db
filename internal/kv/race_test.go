//go:build race

package kv_test

import "time"

// raceMargin is added to the deadline checks of the fault tests: the race detector
// slows the proxy several times over, which a deadline is not about.
const raceMargin = 1500 * time.Millisecond
