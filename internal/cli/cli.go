package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// ExitError carries a process exit status out of a cobra command. Err, if set, is
// printed to standard error by Execute; a nil Err means the command already said why.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns the cause.
func (e *ExitError) Unwrap() error { return e.Err }

// Execute runs cmd with args and returns the process exit status: 0 on success, the
// code of an *ExitError, or 1 for any other error. Errors are printed to stderr after
// "name: ". args are the only arguments cmd sees: nil is no arguments (cobra would
// read the process's own command line instead).
func Execute(ctx context.Context, cmd *cobra.Command, name string, args []string, stderr io.Writer) int {
	if args == nil {
		args = []string{}
	}
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}
