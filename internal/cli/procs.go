package cli

// Procs returns the number of threads to run Go code (GOMAXPROCS) for a --procs n
// option: n when it is set (above 0); else Go's choice (avail) when the environment
// sets GOMAXPROCS or more than two CPUs are available; else 1. On two cores, shared
// with the servers and clients as a proxy beside its application usually is, one
// thread costs less CPU per request than two and serves as many: the runtime's idle
// second thread no longer wakes and sleeps around every request (kvproxy's memcached
// gets from 50 connections: about a sixth less CPU per request; pgpool's pgbench -S
// from 10 clients: 14.6 against 17.8 µs per transaction at the same throughput).
func Procs(n int, env bool, avail int) int {
	switch {
	case n > 0:
		return n
	case env || avail > 2:
		return avail
	}
	return 1
}
