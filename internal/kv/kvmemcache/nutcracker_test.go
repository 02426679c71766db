package kvmemcache_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestPlacementMatchesNutcracker writes keys through nutcracker (a memcached pool),
// then reads each back through kvproxy running the same pool settings, and checks
// that each key is on exactly the memcached that kvproxy picks: ketama and modula,
// two hashes, servers with and without names.
func TestPlacementMatchesNutcracker(t *testing.T) {
	ms := startMemcacheds(t, 3)
	for i, tc := range []struct {
		settings string
		named    bool
	}{
		{"  hash: fnv1a_64\n  distribution: ketama\n", true},
		{"  hash: murmur\n  distribution: ketama\n", false},
		{"  hash: fnv1a_64\n  distribution: modula\n", false},
		{"  hash: murmur\n  distribution: modula\n", true},
	} {
		t.Run(strings.ReplaceAll(strings.TrimSpace(tc.settings), "\n  ", ","), func(t *testing.T) {
			settings := tc.settings + "  timeout: 2000\n"
			twAddr, kvAddr := freeAddr(t), freeAddr(t)
			testenv.StartNutcracker(t, poolYAML("mc", twAddr, ms, tc.named, settings), twAddr)
			cfg := parseConfig(t, poolYAML("mc", kvAddr, ms, tc.named, settings))
			startProxy(t, cfg, kv.Options{})
			pick := picker(t, cfg.Pools[0])

			tw, kvc := dialText(t, twAddr), dialText(t, kvAddr)
			const n = 300
			keys := make([]string, n)
			for k := range keys {
				keys[k] = fmt.Sprintf("place%d:key:%d", i, k)
				if r := tw.do(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", keys[k], len(keys[k]), keys[k])); r != "STORED\r\n" {
					t.Fatalf("set %s through nutcracker: %q", keys[k], r)
				}
			}
			used := map[int]int{}
			for _, k := range keys {
				want := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(k), k)
				if r := kvc.do("get " + k + "\r\n"); r != want {
					t.Fatalf("get %s through kvproxy: %q, want %q", k, r, want)
				}
				s := pick(k)
				used[s]++
				for _, m := range ms {
					v, ok := direct(t, m, k)
					if ok != (m.Addr() == addrOf(cfg, s)) || (ok && v != k) {
						t.Fatalf("key %s: on %s = %v (%q); kvproxy picks %s", k, m.Addr(), ok, v, addrOf(cfg, s))
					}
				}
			}
			if len(used) < 2 { // fnv1a_64 with modula leaves one of 3 servers almost empty for these keys
				t.Fatalf("keys spread over %d servers only: %v", len(used), used)
			}
		})
	}
}
