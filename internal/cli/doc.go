// Package cli holds what pgpool's and kvproxy's command lines share: an error that
// carries a process exit status out of a cobra command, and Execute, which runs a
// command and turns its error into that status.
package cli
