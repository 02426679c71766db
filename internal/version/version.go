// Package version holds the suite's version, the one pgpool and kvproxy report.
package version

// Version is the version of the suite (pgpool and kvproxy are released together).
const Version = "1.0.0"
