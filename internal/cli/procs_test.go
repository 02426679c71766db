package cli

import "testing"

// TestProcs: --procs wins; without it the environment's GOMAXPROCS or a machine of
// more than two CPUs keeps Go's choice; a machine of up to two CPUs gets one thread.
func TestProcs(t *testing.T) {
	for _, tc := range []struct {
		n     int
		env   bool
		avail int
		want  int
	}{
		{3, false, 2, 3},
		{3, true, 8, 3},
		{0, false, 2, 1},
		{0, false, 1, 1},
		{0, true, 2, 2},
		{0, false, 8, 8},
	} {
		if got := Procs(tc.n, tc.env, tc.avail); got != tc.want {
			t.Errorf("Procs(%d, %v, %d) = %d, want %d", tc.n, tc.env, tc.avail, got, tc.want)
		}
	}
}
