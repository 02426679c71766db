package redis

import (
	"errors"
	"testing"
)

// modSharder puts a key on shard key[len-1] % n.
type modSharder int

func (m modSharder) Shard(key []byte) int {
	if len(key) == 0 {
		return 0
	}
	return int(key[len(key)-1]) % int(m)
}

func bs(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func TestSplitMGET(t *testing.T) {
	var s Split
	args := bs("MGET", "a0", "b1", "c0", "d2", "e1")
	cmd := Lookup(args[0])
	s.Build(cmd, args, modSharder(3))
	// '0'=48%3=0, '1'=49%3=1, '2'=50%3=2
	if len(s.Parts) != 3 {
		t.Fatalf("parts = %d", len(s.Parts))
	}
	want := []string{
		"*3\r\n$4\r\nMGET\r\n$2\r\na0\r\n$2\r\nc0\r\n",
		"*3\r\n$4\r\nMGET\r\n$2\r\nb1\r\n$2\r\ne1\r\n",
		"*2\r\n$4\r\nMGET\r\n$2\r\nd2\r\n",
	}
	for i, p := range s.Parts {
		if string(p.Payload) != want[i] || p.Shard != i {
			t.Fatalf("part %d = %q shard %d", i, p.Payload, p.Shard)
		}
	}
	replies := bs("*2\r\n$1\r\nA\r\n$-1\r\n", "-ERR timeout\r\n", "*1\r\n$1\r\nD\r\n")
	got := string(s.Merge(nil, replies))
	if got != "-ERR timeout\r\n" {
		t.Fatalf("merge with a failed part = %q, want the part's error alone", got)
	}
	replies = bs("*2\r\n$1\r\nA\r\n$-1\r\n", "*2\r\n$1\r\nB\r\n$1\r\nE\r\n", "*1\r\n$1\r\nD\r\n")
	if got := string(s.Merge(nil, replies)); got != "*5\r\n$1\r\nA\r\n$1\r\nB\r\n$-1\r\n$1\r\nD\r\n$1\r\nE\r\n" {
		t.Fatalf("merge = %q", got)
	}
	// Reuse with fewer parts must not leak old payloads.
	s.Build(cmd, bs("MGET", "x0"), modSharder(3))
	if len(s.Parts) != 1 || string(s.Parts[0].Payload) != "*2\r\n$4\r\nMGET\r\n$2\r\nx0\r\n" {
		t.Fatalf("reuse: %v", s.Parts)
	}
	s.Build(cmd, bs("MGET", "x1", "y2"), modSharder(3))
	if string(s.Parts[1].Payload) != "*2\r\n$4\r\nMGET\r\n$2\r\ny2\r\n" {
		t.Fatalf("reuse 2: %q", s.Parts[1].Payload)
	}
}

func TestSplitCountsAndMSET(t *testing.T) {
	var s Split
	args := bs("DEL", "a0", "b1", "c0")
	s.Build(Lookup(args[0]), args, modSharder(2))
	if got := string(s.Merge(nil, bs(":1\r\n", ":2\r\n"))); got != ":3\r\n" {
		t.Fatalf("sum = %q", got)
	}
	if got := string(s.Merge(nil, bs(":1\r\n", "-ERR timeout\r\n"))); got != "-ERR timeout\r\n" {
		t.Fatalf("error = %q", got)
	}
	args = bs("MSET", "a0", "1", "b1", "2", "c0", "3")
	cmd := Lookup([]byte("mset"))
	if err := CheckArgs(cmd, args); err != nil {
		t.Fatal(err)
	}
	if err := CheckArgs(cmd, args[:6]); !errors.Is(err, ErrWrongArgs) {
		t.Fatalf("odd MSET err = %v", err)
	}
	s.Build(cmd, args, modSharder(2))
	if string(s.Parts[0].Payload) != "*5\r\n$4\r\nMSET\r\n$2\r\na0\r\n$1\r\n1\r\n$2\r\nc0\r\n$1\r\n3\r\n" {
		t.Fatalf("mset part = %q", s.Parts[0].Payload)
	}
	if got := string(s.Merge(nil, bs("+OK\r\n", "+OK\r\n"))); got != "+OK\r\n" {
		t.Fatalf("mset merge = %q", got)
	}
}

// TestSplitFailedPartOneError: for every split command, a part that failed makes the
// whole reply that part's error alone (the first failed part's when several did), never
// an array holding error elements or a partial count; a part answering with the wrong
// shape gives one error too.
func TestSplitFailedPartOneError(t *testing.T) {
	ok := map[string]string{"MGET": "*1\r\n$1\r\nv\r\n", "MSET": "+OK\r\n"}
	for _, name := range []string{"MGET", "DEL", "UNLINK", "EXISTS", "TOUCH", "MSET"} {
		cmd := Lookup([]byte(name))
		args := bs(name, "a0", "b1", "c2")
		if cmd.Kind == MultiKeyValue {
			args = bs(name, "a0", "1", "b1", "2", "c2", "3")
		}
		var s Split
		s.Build(cmd, args, modSharder(3))
		if len(s.Parts) != 3 {
			t.Fatalf("%s: %d parts", name, len(s.Parts))
		}
		good := ok[name]
		if good == "" {
			good = ":1\r\n"
		}
		for _, tc := range []struct {
			replies []string
			want    string
		}{
			{[]string{good, "-ERR Connection refused\r\n", good}, "-ERR Connection refused\r\n"},
			{[]string{"-ERR Connection timed out\r\n", good, "-ERR Connection refused\r\n"}, "-ERR Connection timed out\r\n"},
			{[]string{good, good, "-LOADING Redis is loading the dataset in memory\r\n"}, "-LOADING Redis is loading the dataset in memory\r\n"},
			{[]string{good, "$1\r\nx\r\n", good}, "-ERR unexpected reply from server\r\n"},
		} {
			if got := string(s.Merge(nil, bs(tc.replies...))); got != tc.want {
				t.Errorf("%s %q: merged %q, want %q", name, tc.replies, got, tc.want)
			}
		}
	}
}

func TestEvalShard(t *testing.T) {
	sh := modSharder(2)
	if s, err := EvalShard(bs("EVAL", "return 1", "2", "a1", "b1", "arg"), sh); err != nil || s != 1 {
		t.Fatalf("shard %d err %v", s, err)
	}
	if _, err := EvalShard(bs("EVAL", "s", "2", "a1", "b0"), sh); !errors.Is(err, ErrEvalCrossShard) {
		t.Fatalf("cross shard err = %v", err)
	}
	if _, err := EvalShard(bs("EVAL", "s", "0"), sh); !errors.Is(err, ErrEvalNoKeys) {
		t.Fatalf("no keys err = %v", err)
	}
	if _, err := EvalShard(bs("EVAL", "s", "3", "a"), sh); !errors.Is(err, ErrEvalNumKeys) {
		t.Fatalf("numkeys err = %v", err)
	}
}

func TestLookup(t *testing.T) {
	if c := Lookup([]byte("get")); c == nil || c.Kind != SingleKey || c.KeyIndex != 1 || !c.ReadOnly {
		t.Fatalf("get = %+v", c)
	}
	if c := Lookup([]byte("zUnIoN")); c == nil || c.KeyIndex != 2 {
		t.Fatalf("zunion = %+v", c)
	}
	for _, name := range []string{"KEYS", "SCAN", "MULTI", "SUBSCRIBE", "BLPOP", "INFO", "RENAME", "MSETNX", "BITOP", ""} {
		if Lookup([]byte(name)) != nil {
			t.Errorf("%s is in the table", name)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Lookup([]byte("hgetall")) }); n != 0 {
		t.Fatalf("Lookup allocates %v", n)
	}
}

func BenchmarkSplitMGET(b *testing.B) {
	args := [][]byte{[]byte("MGET")}
	for i := 0; i < 100; i++ {
		args = append(args, []byte{'k', byte(i)})
	}
	var replies [][]byte
	cmd := Lookup(args[0])
	var s Split
	s.Build(cmd, args, modSharder(16))
	for _, p := range s.Parts {
		r := AppendArrayLen(nil, p.nkeys)
		for j := 0; j < p.nkeys; j++ {
			r = AppendBulkString(r, "value")
		}
		replies = append(replies, r)
	}
	var dst []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Build(cmd, args, modSharder(16))
		dst = s.Merge(dst[:0], replies)
	}
}

type noneSharder struct{}

func (noneSharder) Shard(key []byte) int {
	if string(key) == "dead" {
		return -1
	}
	return 0
}

func TestSplitNegativeShard(t *testing.T) {
	var s Split
	args := bs("MGET", "a", "dead", "b")
	s.Build(Lookup(args[0]), args, noneSharder{})
	if len(s.Parts) != 2 || s.Parts[1].Shard != -1 {
		t.Fatalf("parts = %v", s.Parts)
	}
	got := string(s.Merge(nil, bs("*2\r\n:1\r\n:2\r\n", "-ERR no server\r\n")))
	if got != "-ERR no server\r\n" {
		t.Fatalf("merge = %q", got)
	}
}
