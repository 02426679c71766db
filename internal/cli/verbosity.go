package cli

import (
	"log/slog"
	"sync"
)

// Verbosity is a log level on nutcracker's scale, 0 (EMERG) to 11 (PVERB), default 5
// (NOTICE), driving a slog.LevelVar: 0-3 log errors only, 4 warnings too, 5-6
// information too, 7 and above debug messages too. SIGTTIN and SIGTTOU move it one
// step up or down, as in nutcracker. It is safe for concurrent use.
type Verbosity struct {
	mu sync.Mutex
	n  int
	lv slog.LevelVar
}

// The ends and the default of nutcracker's scale.
const (
	MinVerbosity     = 0
	MaxVerbosity     = 11
	DefaultVerbosity = 5
)

// NewVerbosity returns a Verbosity at n, clamped to the scale.
func NewVerbosity(n int) *Verbosity {
	v := &Verbosity{}
	v.Set(n)
	return v
}

// Leveler returns the slog level that follows v, for a handler's options.
func (v *Verbosity) Leveler() slog.Leveler { return &v.lv }

// Get returns the current step.
func (v *Verbosity) Get() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n
}

// Set moves v to step n (clamped to the scale) and returns it.
func (v *Verbosity) Set(n int) int {
	n = max(MinVerbosity, min(MaxVerbosity, n))
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n = n
	v.lv.Set(SlogLevel(n))
	return n
}

// Up raises v one step and returns the new step.
func (v *Verbosity) Up() int { return v.Set(v.Get() + 1) }

// Down lowers v one step and returns the new step.
func (v *Verbosity) Down() int { return v.Set(v.Get() - 1) }

// SlogLevel maps a step of nutcracker's scale to the lowest slog level logged.
func SlogLevel(n int) slog.Level {
	switch {
	case n <= 3:
		return slog.LevelError
	case n == 4:
		return slog.LevelWarn
	case n <= 6:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
