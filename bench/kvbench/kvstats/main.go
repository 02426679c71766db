package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// maxStats bounds the stats document read (256 servers take well under 1 MiB).
const maxStats = 16 << 20

// poolCounters are the pool-level counters shown, in twemproxy's names.
var poolCounters = []string{"client_connections", "client_eof", "client_err", "forward_error", "fragments", "server_ejects"}

// serverCounters are the per-server counters shown, in twemproxy's names.
var serverCounters = []string{"requests", "responses", "server_timedout", "server_err", "server_eof", "server_ejected_at", "server_connections"}

func main() {
	addr := flag.String("addr", "127.0.0.1:22222", "the stats address, host:port")
	raw := flag.Bool("raw", false, "print the JSON document as served")
	timeout := flag.Duration("timeout", 5*time.Second, "how long to wait for the document")
	flag.Parse()
	body, err := fetch(*addr, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvstats:", err)
		os.Exit(1)
	}
	if *raw {
		os.Stdout.Write(body)
		fmt.Println()
		return
	}
	if err := summarize(os.Stdout, body); err != nil {
		fmt.Fprintln(os.Stderr, "kvstats:", err)
		os.Exit(1)
	}
}

// fetch connects to addr and reads the document the server writes before closing.
func fetch(addr string, timeout time.Duration) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(c, maxStats))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", addr, err)
	}
	return bytes.TrimSpace(body), nil
}

// summarize prints the document body as tables.
func summarize(w io.Writer, body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("stats JSON: %w", err)
	}
	fmt.Fprintf(w, "%v %v (uptime %vs): total_connections %v, curr_connections %v\n",
		doc["service"], doc["version"], doc["uptime"], doc["total_connections"], doc["curr_connections"])
	for _, name := range sortedKeys(doc) {
		pool, ok := doc[name].(map[string]any)
		if !ok {
			continue
		}
		var counters []string
		for _, c := range poolCounters {
			counters = append(counters, fmt.Sprintf("%s %v", c, pool[c]))
		}
		fmt.Fprintf(w, "pool %s: %s\n", name, strings.Join(counters, ", "))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  server\t%s\t\n", strings.Join(serverCounters, "\t"))
		for _, s := range sortedKeys(pool) {
			srv, ok := pool[s].(map[string]any)
			if !ok {
				continue
			}
			fmt.Fprintf(tw, "  %s\t", s)
			for _, c := range serverCounters {
				fmt.Fprintf(tw, "%v\t", srv[c])
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
