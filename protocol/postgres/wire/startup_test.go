package wire

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

func startupPacket(code uint32, body []byte) []byte {
	p := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	p = binary.BigEndian.AppendUint32(p, code)
	return append(p, body...)
}

func TestDecodeStartup(t *testing.T) {
	sm, err := (&pgproto3.StartupMessage{ProtocolVersion: ProtocolVersion3, Parameters: map[string]string{"user": "alice", "database": "app", "options": "-c a=b"}}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := DecodeStartup(sm)
	if err != nil || st.Kind != KindStartupMessage || st.Params["user"] != "alice" || st.Params["database"] != "app" || st.Params["options"] != "-c a=b" {
		t.Fatalf("StartupMessage: %+v %v", st, err)
	}
	if st, err := DecodeStartup(startupPacket(SSLRequestCode, nil)); err != nil || st.Kind != KindSSLRequest {
		t.Errorf("SSLRequest: %+v %v", st, err)
	}
	if st, err := DecodeStartup(startupPacket(GSSENCRequest, nil)); err != nil || st.Kind != KindGSSENCRequest {
		t.Errorf("GSSENCRequest: %+v %v", st, err)
	}
	st, err = DecodeStartup(startupPacket(CancelRequest, []byte{0, 0, 1, 2, 0xa, 0xb, 0xc, 0xd}))
	if err != nil || st.Kind != KindCancelRequest || st.PID != 0x102 || st.Secret != 0x0a0b0c0d {
		t.Errorf("CancelRequest: %+v %v", st, err)
	}

	var up *UnsupportedProtocolError
	if _, err := DecodeStartup(startupPacket(2<<16, []byte{0})); !errors.As(err, &up) || up.Major != 2 {
		t.Errorf("protocol 2: %v", err)
	}
	for name, pkt := range map[string][]byte{
		"short":                {0, 0, 0, 4},
		"length mismatch":      append(startupPacket(ProtocolVersion3, []byte("user\x00a\x00\x00")), 0),
		"cancel too short":     startupPacket(CancelRequest, []byte{1, 2, 3}),
		"ssl with body":        startupPacket(SSLRequestCode, []byte{1}),
		"unterminated params":  startupPacket(ProtocolVersion3, []byte("user\x00alice")),
		"value missing at end": startupPacket(ProtocolVersion3, []byte("user\x00")),
	} {
		if _, err := DecodeStartup(pkt); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzDecodeStartup checks that no packet makes DecodeStartup panic, that every error
// is one of its typed errors, and that a decoded StartupMessage encodes back to a
// packet that decodes to the same parameters.
func FuzzDecodeStartup(f *testing.F) {
	sm, _ := (&pgproto3.StartupMessage{ProtocolVersion: ProtocolVersion3, Parameters: map[string]string{"user": "u", "database": "d"}}).Encode(nil)
	f.Add(sm)
	f.Add(startupPacket(SSLRequestCode, nil))
	f.Add(startupPacket(CancelRequest, []byte{0, 0, 0, 1, 0, 0, 0, 2}))
	f.Add(startupPacket(ProtocolVersion3, []byte("user\x00")))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		st, err := DecodeStartup(pkt)
		if err != nil {
			var up *UnsupportedProtocolError
			if !errors.Is(err, ErrMalformed) && !errors.As(err, &up) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if st.Kind != KindStartupMessage {
			return
		}
		again, err := (&pgproto3.StartupMessage{ProtocolVersion: ProtocolVersion3 | uint32(st.Minor), Parameters: st.Params}).Encode(nil)
		if err != nil {
			return // a parameter name pgproto3 will not encode (it cannot come from a decode)
		}
		st2, err := DecodeStartup(again)
		if err != nil || len(st2.Params) != len(st.Params) {
			t.Fatalf("re-encoded packet: %+v %v", st2, err)
		}
		for k, v := range st.Params {
			if st2.Params[k] != v {
				t.Fatalf("parameter %q: %q, then %q", k, v, st2.Params[k])
			}
		}
	})
}
