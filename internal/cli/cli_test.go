package cli

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestExecute(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		out  string
	}{
		{nil, 0, ""},
		{&ExitError{Code: 2, Err: errors.New("bad flag")}, 2, "tool: bad flag\n"},
		{&ExitError{Code: 1}, 1, ""},
		{errors.New("plain"), 1, "tool: plain\n"},
	} {
		cmd := &cobra.Command{Use: "tool", SilenceErrors: true, SilenceUsage: true,
			RunE: func(*cobra.Command, []string) error { return tc.err }}
		var stderr strings.Builder
		if code := Execute(context.Background(), cmd, "tool", nil, &stderr); code != tc.code || stderr.String() != tc.out {
			t.Errorf("%v: code %d, stderr %q; want %d, %q", tc.err, code, stderr.String(), tc.code, tc.out)
		}
	}
}

// TestExecuteNilArgs: nil args are no arguments, whatever the process's own command
// line holds (cobra reads os.Args when a command's args were never set).
func TestExecuteNilArgs(t *testing.T) {
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = []string{"tool", "--no-such-flag", "extra"}
	var got []string
	ran := false
	cmd := &cobra.Command{Use: "tool", SilenceErrors: true, SilenceUsage: true,
		RunE: func(_ *cobra.Command, args []string) error { ran, got = true, args; return nil }}
	var stderr strings.Builder
	if code := Execute(context.Background(), cmd, "tool", nil, &stderr); code != 0 || !ran || len(got) != 0 {
		t.Fatalf("code %d, ran %v, args %q, stderr %q; want 0 with no arguments", code, ran, got, stderr.String())
	}
}
