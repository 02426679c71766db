package main

import (
	"slices"
	"testing"
)

// TestPgTargets: the one table of PostgreSQL targets gives the plan, the progress
// lines and the detection what they said when each spelled the targets out: direct,
// PgBouncer and pgpool, odyssey when it is on PATH, pgcat and pgdog only detected.
func TestPgTargets(t *testing.T) {
	if pgTargets[0].name != DirectTarget || pgTargets[0].start != nil {
		t.Fatalf("first target %+v, want direct, not started as a pooler", pgTargets[0])
	}
	seen := map[string]bool{}
	var onPath, detected []string
	for _, pt := range pgTargets {
		if seen[pt.name] {
			t.Errorf("target %s listed twice", pt.name)
		}
		seen[pt.name] = true
		if (pt.start != nil || pt.name == DirectTarget) == (pt.detected != "") {
			t.Errorf("%s: run %v, detected status %q: want one of them", pt.name, pt.start != nil, pt.detected)
		}
		if pt.start != nil && (pt.title == "" || pt.desc == nil) {
			t.Errorf("%s: started without a title or a description", pt.name)
		}
		if pt.onPath {
			onPath = append(onPath, pt.name)
			if pt.missing == "" {
				t.Errorf("%s: found on PATH, but nothing to say when it is not", pt.name)
			}
		}
		if pt.detected != "" {
			detected = append(detected, pt.name)
		}
	}
	if !slices.Equal(onPath, []string{odysseyName}) || !slices.Equal(detected, []string{"pgcat", "pgdog"}) {
		t.Errorf("looked for on PATH %v, only detected %v", onPath, detected)
	}
	for _, c := range []struct {
		paths   map[string]string
		names   []string
		poolers string
	}{
		{map[string]string{}, []string{DirectTarget, "pgbouncer", "pgpool"}, "PgBouncer and pgpool"},
		{map[string]string{odysseyName: "/usr/bin/odyssey", "pgcat": "/usr/bin/pgcat"},
			[]string{DirectTarget, "pgbouncer", "pgpool", odysseyName}, "PgBouncer, pgpool and odyssey"},
	} {
		b := &bins{paths: c.paths}
		if got := b.pgTargetNames(); !slices.Equal(got, c.names) {
			t.Errorf("with %v: targets %v, want %v", c.paths, got, c.names)
		}
		if got := b.poolerNames(); got != c.poolers {
			t.Errorf("with %v: poolers %q, want %q", c.paths, got, c.poolers)
		}
	}
}
