package sharding

import (
	"errors"
	"slices"
	"testing"
)

func TestParseServer(t *testing.T) {
	tests := []struct {
		entry string
		want  ServerSpec
		addr  string
	}{
		{"127.0.0.1:6379:1", ServerSpec{Name: "127.0.0.1:6379", Host: "127.0.0.1", Port: 6379, Weight: 1}, "127.0.0.1:6379"},
		{"127.0.0.1:6379:10 shard1", ServerSpec{Name: "shard1", Host: "127.0.0.1", Port: 6379, Weight: 10, Named: true}, "127.0.0.1:6379"},
		{"127.0.0.1:11211:1", ServerSpec{Name: "127.0.0.1", Host: "127.0.0.1", Port: 11211, Weight: 1}, "127.0.0.1:11211"},
		{"cache.local:011211:2", ServerSpec{Name: "cache.local", Host: "cache.local", Port: 11211, Weight: 2}, "cache.local:11211"},
		{"127.0.0.1:06379:1", ServerSpec{Name: "127.0.0.1:06379", Host: "127.0.0.1", Port: 6379, Weight: 1}, "127.0.0.1:6379"},
		{"::1:6379:1", ServerSpec{Name: "::1:6379", Host: "::1", Port: 6379, Weight: 1}, "[::1]:6379"},
		{"/tmp/redis.sock:1", ServerSpec{Name: "/tmp/redis.sock:", Host: "/tmp/redis.sock", Weight: 1, Unix: true}, "/tmp/redis.sock"},
		{"/tmp/redis.sock:3 r1", ServerSpec{Name: "r1", Host: "/tmp/redis.sock", Weight: 3, Unix: true, Named: true}, "/tmp/redis.sock"},
		{"127.0.0.1:6379:1 a:b", ServerSpec{Name: "a:b", Host: "127.0.0.1", Port: 6379, Weight: 1, Named: true}, "127.0.0.1:6379"},
	}
	for _, tt := range tests {
		got, err := ParseServer(tt.entry)
		if err != nil {
			t.Errorf("ParseServer(%q): %v", tt.entry, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseServer(%q) = %+v, want %+v", tt.entry, got, tt.want)
		}
		if got.Addr() != tt.addr {
			t.Errorf("ParseServer(%q).Addr() = %q, want %q", tt.entry, got.Addr(), tt.addr)
		}
	}
}

func TestParseServerErrors(t *testing.T) {
	for _, entry := range []string{
		"",
		"127.0.0.1:6379",             // no weight
		"127.0.0.1",                  // nothing
		"127.0.0.1:6379:0",           // zero weight
		"127.0.0.1:6379:-1",          // negative weight
		"127.0.0.1:6379:1x",          // not a number
		"127.0.0.1:6379: 1",          // space before weight: "1" is taken as the name
		"127.0.0.1:0:1",              // port 0
		"127.0.0.1:65536:1",          // port too big
		"127.0.0.1:port:1",           // port not a number
		"127.0.0.1:6379:1 a b",       // names have no spaces: weight would be "1 a"
		"/tmp/a:b.sock:1",            // colon in a socket path
		"/tmp/redis.sock",            // no weight
		"127.0.0.1:6379:99999999999", // weight overflows
	} {
		if s, err := ParseServer(entry); !errors.Is(err, ErrInvalidServer) {
			t.Errorf("ParseServer(%q) = %+v, %v; want ErrInvalidServer", entry, s, err)
		}
	}
}

func TestSortServers(t *testing.T) {
	var specs []ServerSpec
	for _, e := range []string{"127.0.0.1:6380:1", "b:1:1 zz", "a:1:1 b", "127.0.0.1:6379:1", "a:1:1 a", "10.0.0.1:11211:1"} {
		s, err := ParseServer(e)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	SortServers(specs)
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	want := []string{"a", "b", "zz", "10.0.0.1", "127.0.0.1:6379", "127.0.0.1:6380"}
	if !slices.Equal(names, want) {
		t.Errorf("sorted names %q, want %q", names, want)
	}
}
