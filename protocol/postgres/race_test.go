//go:build race

package postgres

// raceEnabled scales the memory tests down under -race, which slows the copy loop.
const raceEnabled = true
