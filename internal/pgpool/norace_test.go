//go:build !race

package pgpool

const raceEnabled = false
