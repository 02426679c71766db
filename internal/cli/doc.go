// Package cli holds what pgpool's and kvproxy's command lines share: an error that
// carries a process exit status out of a cobra command and Execute, which runs a
// command and turns its error into that status; Daemonize and pidfiles; a log file
// reopened for logrotate; nutcracker's verbosity scale; giving up root for a
// configured user; and systemd's service notifications (Notifier).
package cli
