package pgpool

import (
	"bytes"
	"testing"

	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/auth"
)

// TestHandoverPoint: a client can move alone only between transactions with nothing in
// flight and no binding, and with its server connection only when it keeps that
// connection (session mode, or pinned) and the connection is idle outside a
// transaction.
func TestHandoverPoint(t *testing.T) {
	session := &poolConfig{mode: PoolSession}
	txn := &poolConfig{mode: PoolTransaction}
	idleServer := func() *server {
		s := &server{}
		s.txStatus.Store('I')
		return s
	}
	cases := []struct {
		name   string
		set    func(c *client)
		alone  bool
		linked bool
	}{
		{"idle", func(c *client) {}, true, false},
		{"request in flight", func(c *client) { c.inflight.pushRequest('Q') }, false, false},
		{"batch unsynced", func(c *client) { c.stream = streamBatch }, false, false},
		{"long message streamed", func(c *client) { c.longIn = longInStreaming }, false, false},
		{"aborted transaction", func(c *client) { c.aborted = true }, false, false},
		{"pin check due", func(c *client) { c.sess.pinCheck = true }, false, false},
		{"SET unconfirmed", func(c *client) { c.sess.setOps = []postgres.SetOp{{Name: "x"}} }, false, false},
		{"statement error pending", func(c *client) { c.prep = &prepState{dropToSync: true} }, false, false},
		{"bound in transaction mode", func(c *client) { c.server = idleServer() }, false, false},
		{"pinned in transaction mode", func(c *client) { c.server = idleServer(); c.sess.pins = pinTempTable }, false, true},
		{"session mode", func(c *client) { c.server = idleServer(); c.cfg = session }, false, true},
		{"session mode in a transaction", func(c *client) {
			c.server = idleServer()
			c.server.txStatus.Store('T')
			c.cfg = session
		}, false, false},
		{"session mode, query running", func(c *client) {
			c.server = idleServer()
			c.cfg = session
			c.inflight.pushRequest('Q')
		}, false, false},
		{"session mode, TLS server", func(c *client) { c.server = idleServer(); c.server.tls = true; c.cfg = session }, false, false},
	}
	for _, tc := range cases {
		c := &client{cfg: txn}
		tc.set(c)
		if got := c.atHandoverPointLocked(); got != tc.alone {
			t.Errorf("%s: alone %v, want %v", tc.name, got, tc.alone)
		}
		if got := c.linkedHandoverLocked() != nil; got != tc.linked {
			t.Errorf("%s: linked %v, want %v", tc.name, got, tc.linked)
		}
	}
}

// TestFDCredRoundTrip: the credentials a pool logs in with survive SHOW FDS's
// encoding, the SCRAM verifier and ClientKey included.
func TestFDCredRoundTrip(t *testing.T) {
	v, err := auth.NewSCRAMVerifier("secret", []byte("0123456789abcdef"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	in := &auth.Credentials{Password: "pw", MD5: "md5" + "0123456789abcdef0123456789abcdef", SCRAM: &v, ClientKey: bytes.Repeat([]byte{7}, 32)}
	out := credToFD(in).credentials()
	if out.Password != in.Password || out.MD5 != in.MD5 || !bytes.Equal(out.ClientKey, in.ClientKey) ||
		out.SCRAM == nil || out.SCRAM.Text() != v.Text() {
		t.Fatalf("round trip: %v, want %v", out, in)
	}
	if credToFD(nil).credentials() != nil {
		t.Fatal("no credentials came back as some")
	}
}
