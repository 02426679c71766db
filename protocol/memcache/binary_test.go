package memcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func breq(op byte, opaque uint32, extras, key, value string) []byte {
	return AppendBinaryRequest(nil, op, opaque, 0, []byte(extras), []byte(key), []byte(value))
}

func bresp(op byte, status uint16, opaque uint32, extras, key, value string) []byte {
	return AppendBinaryResponse(nil, op, status, opaque, 0, []byte(extras), []byte(key), []byte(value))
}

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Magic: MagicRequest, Opcode: OpSet, KeyLen: 3, ExtrasLen: 8, Status: 7, BodyLen: 20, Opaque: 0xdeadbeef, CAS: 0x0102030405060708}
	b := h.Append(nil)
	if len(b) != HeaderLen || b[2] != 0 || b[3] != 3 || b[12] != 0xde || b[16] != 1 || b[23] != 8 {
		t.Fatalf("encoding % x", b)
	}
	if DecodeHeader(b) != h {
		t.Fatalf("decode %+v", DecodeHeader(b))
	}
}

func TestParseBinary(t *testing.T) {
	fe := "\x00\x00\x00\x05\x00\x00\x00\x00"
	arith := strings.Repeat("\x00", 20)
	for _, tc := range []struct {
		pkt                      []byte
		expect                   Expect
		quiet, ro, local, unsupp bool
	}{
		{pkt: breq(OpGet, 1, "", "k", ""), ro: true},
		{pkt: breq(OpGetK, 1, "", "k", ""), ro: true},
		{pkt: breq(OpGetQ, 1, "", "k", ""), expect: ExpectMaybe, quiet: true, ro: true},
		{pkt: breq(OpGetKQ, 1, "", "k", ""), expect: ExpectMaybe, quiet: true, ro: true},
		{pkt: breq(OpSet, 1, fe, "k", "a\r\nb")},
		{pkt: breq(OpSet, 1, fe, "k", "")},
		{pkt: breq(OpAdd, 1, fe, "k", "v")},
		{pkt: breq(OpReplace, 1, fe, "k", "v")},
		{pkt: breq(OpSetQ, 1, fe, "k", "v"), expect: ExpectMaybe, quiet: true},
		{pkt: breq(OpAddQ, 1, fe, "k", "v"), expect: ExpectMaybe, quiet: true},
		{pkt: breq(OpReplaceQ, 1, fe, "k", "v"), expect: ExpectMaybe, quiet: true},
		{pkt: breq(OpAppend, 1, "", "k", "v")},
		{pkt: breq(OpPrependQ, 1, "", "k", "v"), expect: ExpectMaybe, quiet: true},
		{pkt: breq(OpAppendQ, 1, "", "k", "v"), expect: ExpectMaybe, quiet: true},
		{pkt: breq(OpPrepend, 1, "", "k", "v")},
		{pkt: breq(OpDelete, 1, "", "k", "")},
		{pkt: breq(OpDeleteQ, 1, "", "k", ""), expect: ExpectMaybe, quiet: true},
		{pkt: breq(OpIncrement, 1, arith, "k", "")},
		{pkt: breq(OpDecrQ, 1, arith, "k", ""), expect: ExpectMaybe, quiet: true},
		{pkt: breq(OpTouch, 1, "\x00\x00\x00\x10", "k", "")},
		{pkt: breq(OpGAT, 1, "\x00\x00\x00\x10", "k", "")},
		{pkt: breq(OpGATQ, 1, "\x00\x00\x00\x10", "k", ""), expect: ExpectMaybe, quiet: true},
		{pkt: breq(OpNoop, 1, "", "", ""), local: true},
		{pkt: breq(OpVersion, 1, "", "", ""), ro: true},
		{pkt: breq(OpQuit, 1, "", "", ""), local: true},
		{pkt: breq(OpQuitQ, 1, "", "", ""), expect: ExpectNone, quiet: true, local: true},
		{pkt: breq(OpFlush, 1, "", "", ""), unsupp: true},
		{pkt: breq(OpStat, 1, "", "", ""), unsupp: true},
		{pkt: breq(0x21, 1, "", "PLAIN", "\x00u\x00p"), unsupp: true},
		{pkt: breq(0x7f, 1, "", "", ""), unsupp: true},
	} {
		var r BinaryRequest
		in := append(bytes.Clone(tc.pkt), breq(OpNoop, 9, "", "", "")...)
		n, err := ParseBinary(in, &r, Limits{})
		if err != nil || n != len(tc.pkt) {
			t.Errorf("op %#x: n=%d err=%v", tc.pkt[1], n, err)
			continue
		}
		if r.Expect != tc.expect || r.Quiet != tc.quiet || r.ReadOnly != tc.ro || r.Local != tc.local || r.Unsupported != tc.unsupp || r.Opaque != 1 {
			t.Errorf("op %#x: %+v", tc.pkt[1], r)
		}
		if r.Terminator != (tc.pkt[1] == OpNoop) {
			t.Errorf("op %#x: terminator %v", tc.pkt[1], r.Terminator)
		}
		for i := 0; i < len(tc.pkt); i++ {
			if m, err := ParseBinary(tc.pkt[:i], &r, Limits{}); m != 0 || err != nil {
				t.Errorf("op %#x prefix %d: %d %v", tc.pkt[1], i, m, err)
				break
			}
		}
	}
	var r BinaryRequest
	ParseBinary(breq(OpSet, 7, "\x00\x00\x00\x05\x00\x00\x00\x0a", "key", "value"), &r, Limits{})
	if string(r.Key) != "key" || string(r.Value) != "value" || len(r.Extras) != 8 || r.Opaque != 7 {
		t.Fatalf("fields %+v", r)
	}
}

func TestParseBinaryErrors(t *testing.T) {
	bad := breq(OpGet, 1, "", "k", "")
	bad[0] = 0x81
	long := breq(OpSet, 1, "12345678", "k", "")
	binary.BigEndian.PutUint16(long[2:], 30) // key longer than the body
	for _, tc := range []struct {
		pkt  []byte
		want error
	}{
		{bad, ErrBadMagic},
		{[]byte("get a\r\n"), ErrBadMagic},
		{long, ErrBadPacket},
		{breq(OpGet, 1, "", "", ""), ErrBadKey},
		{breq(OpGet, 1, "", strings.Repeat("k", 251), ""), ErrBadKey},
		{breq(OpGet, 1, "x", "k", ""), ErrBadPacket},
		{breq(OpGet, 1, "", "k", "v"), ErrBadPacket},
		{breq(OpSet, 1, "1234", "k", "v"), ErrBadPacket},
		{breq(OpNoop, 1, "", "k", ""), ErrBadPacket},
		{breq(OpIncrement, 1, "12345678", "k", ""), ErrBadPacket},
	} {
		var r BinaryRequest
		if _, err := ParseBinary(tc.pkt, &r, Limits{}); !errors.Is(err, tc.want) {
			t.Errorf("% x: %v, want %v", tc.pkt[:8], err, tc.want)
		}
	}
	var r BinaryRequest
	if n, err := ParseBinary(breq(OpGet, 1, "", strings.Repeat("k", 250), ""), &r, Limits{}); err != nil || n != 24+250 {
		t.Fatalf("250-byte key: %d %v", n, err)
	}
	pkt := breq(OpSet, 1, "12345678", "k", "12345")
	n, err := ParseBinary(pkt[:30], &r, Limits{MaxValue: 4})
	if err != nil || n != HeaderLen || !r.TooLarge || r.Discard != 14 {
		t.Fatalf("too large: %d %v %+v", n, err, r)
	}
}

func TestBinaryServerFormAndRule(t *testing.T) {
	for _, tc := range []struct{ quiet, loud byte }{
		{OpSetQ, OpSet}, {OpAddQ, OpAdd}, {OpReplaceQ, OpReplace}, {OpDeleteQ, OpDelete},
		{OpIncrQ, OpIncrement}, {OpDecrQ, OpDecrement}, {OpAppendQ, OpAppend}, {OpPrependQ, OpPrepend},
		{OpGetQ, OpGet}, {OpGetKQ, OpGetK}, {OpGATQ, OpGAT}, {OpGATKQ, OpGATK}, {OpSet, OpSet},
	} {
		var r BinaryRequest
		extras := map[byte]string{OpSetQ: "12345678", OpAddQ: "12345678", OpReplaceQ: "12345678", OpSet: "12345678",
			OpIncrQ: strings.Repeat("x", 20), OpDecrQ: strings.Repeat("x", 20), OpGATQ: "1234", OpGATKQ: "1234"}[tc.quiet]
		pkt := AppendBinaryRequest(nil, tc.quiet, 5, 77, []byte(extras), []byte("k"), nil)
		if _, err := ParseBinary(pkt, &r, Limits{}); err != nil {
			t.Fatalf("%#x: %v", tc.quiet, err)
		}
		sf := AppendBinaryServerForm(nil, &r)
		want := bytes.Clone(pkt)
		want[1] = tc.loud
		if !bytes.Equal(sf, want) {
			t.Errorf("%#x: server form % x", tc.quiet, sf[:2])
		}
	}
	setq := BinaryReplyRule{Opcode: OpSetQ, Opaque: 3, Quiet: true}
	if out := setq.AppendClient(nil, bresp(OpSet, StatusOK, 3, "", "", "")); len(out) != 0 {
		t.Fatalf("setq success delivered: % x", out)
	}
	out := setq.AppendClient(nil, bresp(OpSet, StatusExists, 3, "", "", "Data exists for key."))
	if h := DecodeHeader(out); h.Opcode != OpSetQ || h.Status != StatusExists || h.Opaque != 3 || string(out[24:]) != "Data exists for key." {
		t.Fatalf("setq failure %+v", h)
	}
	getq := BinaryReplyRule{Opcode: OpGetKQ, Opaque: 4, Quiet: true}
	if out := getq.AppendClient(nil, bresp(OpGetK, StatusNotFound, 4, "", "", "Not found")); len(out) != 0 {
		t.Fatal("getkq miss delivered")
	}
	if out := getq.AppendClient(nil, bresp(OpGetK, StatusOK, 4, "\x00\x00\x00\x01", "k", "v")); DecodeHeader(out).Opcode != OpGetKQ {
		t.Fatal("getkq hit")
	}
	// A proxy error line becomes an internal-error response with the client's opaque.
	out = (BinaryReplyRule{Opcode: OpGet, Opaque: 9}).AppendClient(nil, []byte("SERVER_ERROR Connection timed out\r\n"))
	if h := DecodeHeader(out); h.Magic != MagicResponse || h.Opcode != OpGet || h.Status != StatusInternalError || h.Opaque != 9 || string(out[24:]) != "Connection timed out" {
		t.Fatalf("error %+v %q", h, out[24:])
	}
	// CAS passes through unchanged.
	r := AppendBinaryResponse(nil, OpGet, 0, 1, 0x0807060504030201, []byte("\x00\x00\x00\x00"), nil, []byte("v"))
	if out := (BinaryReplyRule{Opcode: OpGet, Opaque: 1}).AppendClient(nil, r); !bytes.Equal(out, r) {
		t.Fatal("plain reply changed")
	}
}

func TestBinaryReplyLen(t *testing.T) {
	hit := bresp(OpGetKQ, 0, 1, "\x00\x00\x00\x00", "k", "v")
	noop := bresp(OpNoop, 0, 2, "", "", "")
	get := bresp(OpGet, 1, 3, "", "", "Not found")
	for _, tc := range []struct {
		in   []byte
		want int
	}{
		{get, len(get)},
		{noop, len(noop)},
		{cat(hit, hit, noop), 2*len(hit) + len(noop)},
		{cat(hit, noop, get), len(hit) + len(noop)},
		{cat(hit, hit), 0},
		{hit[:10], 0},
		{nil, 0},
	} {
		n, err := BinaryReplyLen(tc.in, Limits{})
		if err != nil || n != tc.want {
			t.Errorf("% x: %d %v, want %d", tc.in, n, err, tc.want)
		}
	}
	if _, err := BinaryReplyLen([]byte("END\r\n"), Limits{}); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("text reply: %v", err)
	}
	big := bresp(OpGet, 0, 1, "", "", strings.Repeat("v", 100))
	if _, err := BinaryReplyLen(big[:30], Limits{MaxReply: 64}); !errors.Is(err, ErrReplyTooLarge) {
		t.Fatalf("too large: %v", err)
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
