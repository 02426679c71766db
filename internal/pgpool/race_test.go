//go:build race

package pgpool

// raceEnabled scales the memory tests down under -race, which slows the copy loop.
const raceEnabled = true
