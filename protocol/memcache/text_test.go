package memcache

import (
	"errors"
	"strings"
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

func keysOf(r *TextRequest) string {
	var s []string
	for _, k := range r.Keys {
		s = append(s, string(k))
	}
	return strings.Join(s, ",")
}

func TestParseTextCommands(t *testing.T) {
	k250 := strings.Repeat("k", 250)
	for _, tc := range []struct {
		in       string
		cmd      Command
		keys     string
		route    Route
		expect   Expect
		readOnly bool
		data     string
		n        int // 0: all of in
	}{
		{in: "get a\r\n", cmd: CmdGet, keys: "a", route: RouteKeys, readOnly: true},
		{in: "get a b  c\r\n", cmd: CmdGet, keys: "a,b,c", route: RouteKeys, readOnly: true},
		{in: "gets a b\n", cmd: CmdGets, keys: "a,b", route: RouteKeys, readOnly: true},
		{in: "gat 30 a b\r\n", cmd: CmdGat, keys: "a,b", route: RouteKeys},
		{in: "gats -1 a\r\n", cmd: CmdGats, keys: "a", route: RouteKeys},
		{in: "get " + k250 + "\r\n", cmd: CmdGet, keys: k250, route: RouteKeys, readOnly: true},
		{in: "set k 5 0 3\r\nabc\r\n", cmd: CmdSet, keys: "k", data: "abc"},
		{in: "set k 0 0 4\r\na\r\nb\r\n", cmd: CmdSet, keys: "k", data: "a\r\nb"},
		{in: "set k 0 0 0\r\n\r\n", cmd: CmdSet, keys: "k", data: ""},
		{in: "set k 0 0 2 noreply\r\nab\r\nget x\r\n", cmd: CmdSet, keys: "k", expect: ExpectNone, data: "ab", n: 25},
		{in: "add k 0 0 1\r\nx\r\n", cmd: CmdAdd, keys: "k", data: "x"},
		{in: "replace k 0 0 1 noreply\r\nx\r\n", cmd: CmdReplace, keys: "k", expect: ExpectNone, data: "x"},
		{in: "append k 0 0 1\r\nx\r\n", cmd: CmdAppend, keys: "k", data: "x"},
		{in: "prepend k 0 0 1\r\nx\r\n", cmd: CmdPrepend, keys: "k", data: "x"},
		{in: "cas k 0 0 1 99\r\nx\r\n", cmd: CmdCas, keys: "k", data: "x"},
		{in: "cas k 0 0 1 99 noreply\r\nx\r\n", cmd: CmdCas, keys: "k", expect: ExpectNone, data: "x"},
		{in: "delete k\r\n", cmd: CmdDelete, keys: "k"},
		{in: "delete k noreply\r\n", cmd: CmdDelete, keys: "k", expect: ExpectNone},
		{in: "delete k 0\r\n", cmd: CmdDelete, keys: "k"},
		{in: "delete k 0 noreply\r\n", cmd: CmdDelete, keys: "k", expect: ExpectNone},
		{in: "incr k 18446744073709551615\r\n", cmd: CmdIncr, keys: "k"},
		{in: "decr k 1 noreply\r\n", cmd: CmdDecr, keys: "k", expect: ExpectNone},
		{in: "touch k 10\r\n", cmd: CmdTouch, keys: "k"},
		{in: "touch k 10 noreply\r\n", cmd: CmdTouch, keys: "k", expect: ExpectNone},
		{in: "version\r\n", cmd: CmdVersion, route: RouteAny, readOnly: true},
		{in: "quit\r\n", cmd: CmdQuit, route: RouteLocal, expect: ExpectNone},
		{in: "verbosity 1\r\n", cmd: CmdVerbosity, route: RouteRefused},
		{in: "verbosity 1 noreply\r\n", cmd: CmdVerbosity, route: RouteRefused, expect: ExpectNone},
		{in: "flush_all\r\n", cmd: CmdFlushAll, route: RouteRefused},
		{in: "flush_all 10 noreply\r\n", cmd: CmdFlushAll, route: RouteRefused, expect: ExpectNone},
		{in: "stats items\r\n", cmd: CmdStats, route: RouteRefused},
		{in: "mg k v f t\r\n", cmd: CmdMetaGet, keys: "k", readOnly: true},
		{in: "mg k v q O12 k\r\n", cmd: CmdMetaGet, keys: "k", expect: ExpectMaybe, readOnly: true},
		{in: "mg k v N30\r\n", cmd: CmdMetaGet, keys: "k"},
		{in: "mg k T30\r\n", cmd: CmdMetaGet, keys: "k"},
		{in: "mg Zm9v b v\r\n", cmd: CmdMetaGet, keys: "foo", readOnly: true},
		{in: "ms k 2 T30 F5\r\nhi\r\n", cmd: CmdMetaSet, keys: "k", data: "hi"},
		{in: "ms k 2 q MA\r\n\r\n\r\n", cmd: CmdMetaSet, keys: "k", expect: ExpectMaybe, data: "\r\n"},
		{in: "md k q\r\n", cmd: CmdMetaDelete, keys: "k", expect: ExpectMaybe},
		{in: "ma k N0 J10 D2 MD v\r\n", cmd: CmdMetaArithmetic, keys: "k"},
		{in: "me k\r\n", cmd: CmdMetaDebug, keys: "k", readOnly: true},
		{in: "mn\r\n", cmd: CmdMetaNoop, route: RouteLocal},
	} {
		var r TextRequest
		n, err := ParseText([]byte(tc.in), &r, Limits{})
		want := tc.n
		if want == 0 {
			want = len(tc.in)
		}
		if err != nil || n != want {
			t.Errorf("%q: n=%d err=%v, want n=%d", tc.in, n, err, want)
			continue
		}
		if r.Cmd != tc.cmd || keysOf(&r) != tc.keys || r.Route != tc.route || r.Expect != tc.expect || r.ReadOnly != tc.readOnly || string(r.Data) != tc.data {
			t.Errorf("%q: cmd=%v keys=%q route=%d expect=%v ro=%v data=%q", tc.in, r.Cmd, keysOf(&r), r.Route, r.Expect, r.ReadOnly, r.Data)
		}
		if string(r.Raw) != tc.in[:want] {
			t.Errorf("%q: raw %q", tc.in, r.Raw)
		}
		// Incomplete: every strict prefix needs more bytes.
		for i := 0; i < want; i++ {
			if m, err := ParseText([]byte(tc.in[:i]), &r, Limits{}); m != 0 || err != nil {
				t.Errorf("%q prefix %d: n=%d err=%v", tc.in, i, m, err)
				break
			}
		}
	}
}

func TestParseTextFields(t *testing.T) {
	var r TextRequest
	if _, err := ParseText([]byte("cas k 4294967295 -1 2 18446744073709551615\r\nab\r\n"), &r, Limits{}); err != nil {
		t.Fatal(err)
	}
	if r.ClientFlags != 1<<32-1 || r.Exptime != -1 || r.Bytes != 2 || r.CasUnique != ^uint64(0) {
		t.Fatalf("fields %+v", r)
	}
	if _, err := ParseText([]byte("mg k v O123456 k q\r\n"), &r, Limits{}); err != nil {
		t.Fatal(err)
	}
	if o, ok := r.Flag('O'); !ok || string(o) != "123456" || !r.Quiet {
		t.Fatalf("opaque %q %v", o, ok)
	}
	if _, ok := r.Flag('T'); ok {
		t.Fatal("T present")
	}
	if r.Terminator {
		t.Fatal("mg is no terminator")
	}
	if _, err := ParseText([]byte("mn\r\n"), &r, Limits{}); err != nil || !r.Terminator {
		t.Fatalf("mn: %v %v", err, r.Terminator)
	}
	if _, err := ParseText([]byte("quit\r\n"), &r, Limits{}); err != nil || !r.Close {
		t.Fatalf("quit: %v", err)
	}
}

func TestParseTextErrors(t *testing.T) {
	k251 := strings.Repeat("k", 251)
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"\r\n", ErrProtocol},
		{"GET a\r\n", ErrUnknownCommand},
		{"frob a\r\n", ErrUnknownCommand},
		{"\x80\x00\x00\x01\r\n", ErrUnknownCommand},
		{"get\r\n", ErrProtocol},
		{"get " + k251 + "\r\n", ErrBadKey},
		{"get a\tb\r\n", ErrBadKey},
		{"get a\x7f\r\n", ErrBadKey},
		{"set " + k251 + " 0 0 1\r\nx\r\n", ErrBadKey},
		{"set k 0 0\r\n", ErrProtocol},
		{"set k 0 0 1 norply\r\nx\r\n", ErrProtocol},
		{"set k 4294967296 0 1\r\nx\r\n", ErrProtocol},
		{"set k 0 0 -1\r\n", ErrProtocol},
		{"set k 0 0 1\r\nxy\r\n", ErrProtocol},
		{"set k 0 0 1\r\nx\n\n", ErrProtocol},
		{"cas k 0 0 1\r\nx\r\n", ErrProtocol},
		{"delete k 1\r\n", ErrProtocol},
		{"delete\r\n", ErrProtocol},
		{"incr k x\r\n", ErrProtocol},
		{"incr k 18446744073709551616\r\n", ErrProtocol},
		{"incr k\r\n", ErrProtocol},
		{"touch k\r\n", ErrProtocol},
		{"gat a\r\n", ErrProtocol},
		{"version 1\r\n", ErrProtocol},
		{"quit now\r\n", ErrProtocol},
		{"verbosity\r\n", ErrProtocol},
		{"flush_all x\r\n", ErrProtocol},
		{"mg\r\n", ErrProtocol},
		{"mg k Y\r\n", ErrBadFlag},
		{"md k v\r\n", ErrBadFlag},
		{"mg k O" + strings.Repeat("1", 33) + "\r\n", ErrBadFlag},
		{"ms k 1 MX\r\nx\r\n", ErrBadFlag},
		{"ms k\r\n", ErrProtocol},
		{"mg k qq\r\n", ErrBadFlag},
		{"mg !!! b\r\n", ErrBadKey},
		{"mn x\r\n", ErrProtocol},
	} {
		var r TextRequest
		_, err := ParseText([]byte(tc.in), &r, Limits{})
		var pe *ProtocolError
		if !errors.Is(err, tc.want) || !errors.As(err, &pe) {
			t.Errorf("%q: err=%v, want %v", tc.in, err, tc.want)
		}
	}
}

func TestParseTextLimits(t *testing.T) {
	var r TextRequest
	l := Limits{MaxLine: 16, MaxValue: 4}
	if _, err := ParseText([]byte("get aaaaaaaaaaaaaaaaaaa"), &r, l); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("long line: %v", err)
	}
	if n, err := ParseText([]byte("get aaaaaaaa"), &r, l); n != 0 || err != nil {
		t.Fatalf("short partial line: %d %v", n, err)
	}
	// At the value limit: parsed; over it: TooLarge, line only, Discard = bytes+2.
	if n, err := ParseText([]byte("set k 0 0 4\r\nabcd\r\n"), &r, l); n != 19 || err != nil || r.TooLarge {
		t.Fatalf("at limit: %d %v", n, err)
	}
	n, err := ParseText([]byte("set k 0 0 5\r\nab"), &r, l)
	if err != nil || n != 13 || !r.TooLarge || r.Discard != 7 || string(r.Raw) != "set k 0 0 5\r\n" {
		t.Fatalf("over limit: %d %v %+v", n, err, r)
	}
	// Default value limit: 1 MiB.
	if _, err := ParseText([]byte("set k 0 0 1048577\r\n"), &r, Limits{}); err != nil || !r.TooLarge {
		t.Fatalf("default limit: %v %v", err, r.TooLarge)
	}
	if _, err := ParseText([]byte("set k 0 0 1048576\r\n"), &r, Limits{}); err != nil || r.TooLarge {
		t.Fatalf("1 MiB exactly: %v %v", err, r.TooLarge)
	}
	// A b64 key decoding to 251 bytes is refused, 250 accepted.
	enc := func(n int) string {
		return strings.TrimRight(b64(strings.Repeat("x", n)), "")
	}
	if _, err := ParseText([]byte("mg "+enc(250)+" b v\r\n"), &r, Limits{}); err != nil || len(r.Keys[0]) != 250 {
		t.Fatalf("b64 250: %v", err)
	}
	if _, err := ParseText([]byte("mg "+enc(251)+" b v\r\n"), &r, Limits{}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("b64 251: %v", err)
	}
}

func TestServerFormAndRules(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"set k 0 0 4 noreply\r\na\r\nb\r\n", "set k 0 0 4\r\na\r\nb\r\n"},
		{"delete k noreply\r\n", "delete k\r\n"},
		{"incr k 5 noreply\r\n", "incr k 5\r\n"},
		{"touch k 1 noreply\r\n", "touch k 1\r\n"},
		{"mg k q v k O9\r\n", "mg k v k O9\r\n"},
		{"ms k 2 q T0\r\nhi\r\n", "ms k 2 T0\r\nhi\r\n"},
		{"md  k  q\r\n", "md k\r\n"},
		{"get a b\r\n", "get a b\r\n"},
		{"set k 0 0 0\n\r\n", "set k 0 0 0\n\r\n"},
	} {
		var r TextRequest
		if _, err := ParseText([]byte(tc.in), &r, Limits{}); err != nil {
			t.Fatal(err)
		}
		if got := string(AppendServerForm(nil, &r)); got != tc.want {
			t.Errorf("%q: server form %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		rule  TextReplyRule
		reply string
		want  bool
	}{
		{TextReplyRule{Cmd: CmdSet, NoReply: true}, "STORED\r\n", false},
		{TextReplyRule{Cmd: CmdSet, NoReply: true}, "SERVER_ERROR out of memory\r\n", false},
		{TextReplyRule{Cmd: CmdSet}, "STORED\r\n", true},
		{TextReplyRule{Cmd: CmdMetaGet, Quiet: true}, "EN\r\n", false},
		{TextReplyRule{Cmd: CmdMetaGet, Quiet: true}, "EN kfoo O7\r\n", false},
		{TextReplyRule{Cmd: CmdMetaGet, Quiet: true}, "HD\r\n", true},
		{TextReplyRule{Cmd: CmdMetaGet, Quiet: true}, "VA 2 f5\r\nhi\r\n", true},
		{TextReplyRule{Cmd: CmdMetaSet, Quiet: true}, "HD\r\n", false},
		{TextReplyRule{Cmd: CmdMetaSet, Quiet: true}, "HD O12 kfoo\r\n", false},
		{TextReplyRule{Cmd: CmdMetaSet, Quiet: true}, "NS\r\n", true},
		{TextReplyRule{Cmd: CmdMetaDelete, Quiet: true}, "HD\r\n", false},
		{TextReplyRule{Cmd: CmdMetaDelete, Quiet: true}, "NF\r\n", true},
		{TextReplyRule{Cmd: CmdMetaArithmetic, Quiet: true}, "HD\r\n", false},
		{TextReplyRule{Cmd: CmdMetaArithmetic, Quiet: true}, "EX\r\n", true},
		{TextReplyRule{Cmd: CmdMetaArithmetic, Quiet: true}, "VA 1\r\n5\r\n", true},
		{TextReplyRule{Cmd: CmdMetaGet, Quiet: true}, "CLIENT_ERROR bad data chunk\r\n", true},
		{TextReplyRule{Cmd: CmdMetaGet}, "EN\r\n", true},
	} {
		if got := tc.rule.Deliver([]byte(tc.reply)); got != tc.want {
			t.Errorf("%+v %q: deliver %v", tc.rule, tc.reply, got)
		}
	}
}
