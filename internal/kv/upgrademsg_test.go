package kv

import (
	"errors"
	"net"
	"testing"
)

func TestControlMessagesRoundTrip(t *testing.T) {
	for _, m := range []ctlMsg{
		{Op: opHello, Version: upgradeVersion, Pid: 42},
		{Op: opListener, Kind: kindPool, Pool: "alpha", Listen: "tcp 127.0.0.1:22121"},
		{Op: opListener, Kind: kindStats, Listen: "0.0.0.0:22222"},
		{Op: opListeners, Pid: 7},
		{Op: opReady},
		{Op: opClient, Pool: "alpha", State: []byte("1")},
		{Op: opDone},
	} {
		b, err := m.encode()
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		nfds := 0
		if wantsFD(m.Op) {
			nfds = 1
		}
		got, err := decodeCtl(b, nfds)
		if err != nil || got.Op != m.Op || got.Pool != m.Pool || got.Listen != m.Listen || string(got.State) != string(m.State) || got.Pid != m.Pid {
			t.Errorf("%s: decoded %+v, %v; want %+v", b, got, err, m)
		}
		if _, err := decodeCtl(b, nfds+1); !errors.Is(err, ErrBadControl) {
			t.Errorf("%s with an extra descriptor: %v, want ErrBadControl", b, err)
		}
	}
}

func TestControlMessagesRefused(t *testing.T) {
	for _, tc := range []struct {
		in   string
		nfds int
	}{
		{`{"op":"hello","version":2}`, 0},                    // another protocol version
		{`{"op":"listener","kind":"pool","listen":"x"}`, 1},  // no pool
		{`{"op":"listener","kind":"other","listen":"x"}`, 1}, // unknown kind
		{`{"op":"listener","kind":"stats","listen":"x"}`, 0}, // no descriptor
		{`{"op":"client","pool":"a"}`, 2},                    // two descriptors
		{`{"op":"listeners"}`, 0},                            // no pid
		{`{"op":"reboot"}`, 0},                               // unknown op
		{`{"op":`, 0},                                        // not JSON
	} {
		if _, err := decodeCtl([]byte(tc.in), tc.nfds); !errors.Is(err, ErrBadControl) {
			t.Errorf("%s (%d fds): %v, want ErrBadControl", tc.in, tc.nfds, err)
		}
	}
	big := make([]byte, maxCtlState+1)
	if _, err := (&ctlMsg{Op: opClient, Pool: "a", State: big}).encode(); err != nil {
		t.Fatal(err)
	}
	b, _ := (&ctlMsg{Op: opClient, Pool: "a", State: big}).encode()
	if _, err := decodeCtl(b, 1); !errors.Is(err, ErrBadControl) {
		t.Errorf("state of %d bytes: %v, want ErrBadControl", len(big), err)
	}
}

// FuzzDecodeControl: any bytes and descriptor count give a valid message or
// ErrBadControl, never a panic; a valid message re-encodes to one that decodes alike.
func FuzzDecodeControl(f *testing.F) {
	f.Add([]byte(`{"op":"hello","version":1,"pid":3}`), 0)
	f.Add([]byte(`{"op":"client","pool":"alpha","state":"MQ=="}`), 1)
	f.Add([]byte(`{"op":"listener","kind":"metrics","listen":":9121"}`), 1)
	f.Fuzz(func(t *testing.T, b []byte, nfds int) {
		m, err := decodeCtl(b, nfds)
		if err != nil {
			if !errors.Is(err, ErrBadControl) {
				t.Fatalf("error %v is not ErrBadControl", err)
			}
			return
		}
		enc, err := m.encode()
		if err != nil {
			t.Fatalf("re-encode %+v: %v", m, err)
		}
		m2, err := decodeCtl(enc, nfds)
		if err != nil || m2.Op != m.Op || m2.Pool != m.Pool || string(m2.State) != string(m.State) {
			t.Fatalf("re-decoded %+v %v, want %+v", m2, err, m)
		}
	})
}

func TestSameTCPAddr(t *testing.T) {
	for _, tc := range []struct {
		want string
		got  *net.TCPAddr
		same bool
	}{
		{"127.0.0.1:22222", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22222}, true},
		{"127.0.0.1:22222", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22223}, false},
		{"0.0.0.0:22222", &net.TCPAddr{IP: net.IPv6unspecified, Port: 22222}, true},
		{":22222", &net.TCPAddr{IP: net.IPv4zero, Port: 22222}, true},
		{"0.0.0.0:22222", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22222}, false},
		{"127.0.0.2:22222", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22222}, false},
	} {
		if got := sameTCPAddr(tc.want, tc.got); got != tc.same {
			t.Errorf("sameTCPAddr(%q, %v) = %v, want %v", tc.want, tc.got, got, tc.same)
		}
	}
}
