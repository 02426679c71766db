// Command kvstats reads the stats JSON that twemproxy (nutcracker) and kvproxy serve on
// their stats port and prints it as a table: the process's connection counts, then for
// each pool its client counters and, per server, requests, responses, timeouts, errors
// and ejections. scripts/demo.sh uses it; it works against either program.
//
// Usage:
//
//	kvstats [-addr 127.0.0.1:22222] [-raw]
//
// -raw prints the JSON document as served instead of the table.
package main
