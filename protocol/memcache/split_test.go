package memcache

import "testing"

func buildSplit(t *testing.T, in string, shards int) (*TextSplit, *TextRequest) {
	t.Helper()
	var r TextRequest
	if _, err := ParseText([]byte(in), &r, Limits{}); err != nil {
		t.Fatal(err)
	}
	var s TextSplit
	s.Build(&r, modSharder(shards))
	return &s, &r
}

func TestTextSplitMerge(t *testing.T) {
	// '0'%2 = 0, '1'%2 = 1.
	s, _ := buildSplit(t, "get a0 b1 c0 d1\r\n", 2)
	if len(s.Parts) != 2 || string(s.Parts[0].Payload) != "get a0 c0\r\n" || string(s.Parts[1].Payload) != "get b1 d1\r\n" ||
		s.Parts[0].Shard != 0 || s.Parts[1].Shard != 1 || !s.Parts[0].ReadOnly {
		t.Fatalf("parts %+v", s.Parts)
	}
	// All hit: request order.
	out, failed := s.Merge(nil, [][]byte{
		[]byte("VALUE a0 0 1\r\nA\r\nVALUE c0 0 3\r\nC\r\n\r\nEND\r\n"),
		[]byte("VALUE b1 0 1\r\nB\r\nVALUE d1 0 1\r\nD\r\nEND\r\n"),
	})
	want := "VALUE a0 0 1\r\nA\r\nVALUE b1 0 1\r\nB\r\nVALUE c0 0 3\r\nC\r\n\r\nVALUE d1 0 1\r\nD\r\nEND\r\n"
	if failed || string(out) != want {
		t.Fatalf("merge %q", out)
	}
	// Misses keep request order (a0 missing: c0 does not move up).
	out, failed = s.Merge(nil, [][]byte{
		[]byte("VALUE c0 0 1\r\nC\r\nEND\r\n"),
		[]byte("END\r\n"),
	})
	if failed || string(out) != "VALUE c0 0 1\r\nC\r\nEND\r\n" {
		t.Fatalf("misses %q", out)
	}
	// Everything missing: one END.
	if out, _ := s.Merge(nil, [][]byte{[]byte("END\r\n"), []byte("END\r\n")}); string(out) != "END\r\n" {
		t.Fatalf("all miss %q", out)
	}
	// A failed part fails the whole request with its error line.
	out, failed = s.Merge([]byte("x"), [][]byte{[]byte("SERVER_ERROR Connection timed out\r\n"), []byte("END\r\n")})
	if !failed || string(out) != "xSERVER_ERROR Connection timed out\r\n" {
		t.Fatalf("failed part %q %v", out, failed)
	}
	// Not VALUE/END: Invalid argument, as twemproxy.
	out, failed = s.Merge(nil, [][]byte{[]byte("STORED\r\n"), []byte("END\r\n")})
	if !failed || string(out) != "SERVER_ERROR Invalid argument\r\n" {
		t.Fatalf("bad part %q", out)
	}
	// A block for a key not asked for.
	out, failed = s.Merge(nil, [][]byte{[]byte("VALUE zz 0 1\r\nZ\r\nEND\r\n"), []byte("END\r\n")})
	if !failed || string(out) != "SERVER_ERROR Invalid argument\r\n" {
		t.Fatalf("stray block %q", out)
	}
	if _, failed := s.Merge(nil, [][]byte{[]byte("END\r\n")}); !failed {
		t.Fatal("reply count mismatch not failed")
	}
}

func TestTextSplitDuplicatesAndGat(t *testing.T) {
	s, _ := buildSplit(t, "gets a0 a0 b1\r\n", 2)
	if string(s.Parts[0].Payload) != "gets a0 a0\r\n" {
		t.Fatalf("dup payload %q", s.Parts[0].Payload)
	}
	out, failed := s.Merge(nil, [][]byte{
		[]byte("VALUE a0 0 1 7\r\nA\r\nVALUE a0 0 1 7\r\nA\r\nEND\r\n"),
		[]byte("VALUE b1 0 1 8\r\nB\r\nEND\r\n"),
	})
	if failed || string(out) != "VALUE a0 0 1 7\r\nA\r\nVALUE a0 0 1 7\r\nA\r\nVALUE b1 0 1 8\r\nB\r\nEND\r\n" {
		t.Fatalf("dup merge %q", out)
	}
	s, _ = buildSplit(t, "gat 30 a0 b1 c0\r\n", 2)
	if string(s.Parts[0].Payload) != "gat 30 a0 c0\r\n" || string(s.Parts[1].Payload) != "gat 30 b1\r\n" || s.Parts[0].ReadOnly {
		t.Fatalf("gat parts %+v", s.Parts)
	}
	// Reuse with fewer parts leaves no stale payload.
	var r TextRequest
	ParseText([]byte("get x1\r\n"), &r, Limits{})
	s.Build(&r, modSharder(2))
	if len(s.Parts) != 1 || string(s.Parts[0].Payload) != "get x1\r\n" || s.Parts[0].Shard != 1 {
		t.Fatalf("reuse %+v", s.Parts)
	}
}
