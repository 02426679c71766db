package pgpool

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// TestBadStartupPacketAnswered checks that a malformed or oversized startup packet
// gets a FATAL 08P01 ErrorResponse saying what is wrong before the connection closes.
func TestBadStartupPacketAnswered(t *testing.T) {
	f := newFixture(t)
	_, addr := startPooler(t, f.config())
	unterminated := binary.BigEndian.AppendUint32(nil, 8+10)
	unterminated = binary.BigEndian.AppendUint32(unterminated, 196608)
	unterminated = append(unterminated, "user\x00alice"...)
	huge := binary.BigEndian.AppendUint32(nil, 1<<20)
	huge = binary.BigEndian.AppendUint32(huge, 196608)
	for name, pkt := range map[string][]byte{"unterminated": unterminated, "oversized": huge} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := conn.Write(pkt); err != nil {
				t.Fatal(err)
			}
			msg, err := pgproto3.NewFrontend(conn, conn).Receive()
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			er, ok := msg.(*pgproto3.ErrorResponse)
			if !ok || er.Code != "08P01" || er.Severity != "FATAL" {
				t.Fatalf("got %#v, want FATAL 08P01", msg)
			}
			t.Logf("%s: %s", name, er.Message)
		})
	}
}
