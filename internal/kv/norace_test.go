//go:build !race

package kv_test

import "time"

// raceMargin is added to the deadline checks of the fault tests under -race only.
const raceMargin = 0 * time.Millisecond
