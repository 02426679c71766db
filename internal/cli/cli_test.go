package cli

import (
	"context"
	"errors"
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
