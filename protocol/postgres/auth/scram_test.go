package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
)

// RFC 7677 section 3: user "user", password "pencil".
const (
	rfcClientNonce = "rOprNGfwEbeRWgbNEkqO"
	rfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	rfcSalt        = "W22ZaJ0SNY7soEsUEjb6gQ=="
	rfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

func rfcVerifier(t *testing.T) SCRAMVerifier {
	t.Helper()
	salt, _ := base64.StdEncoding.DecodeString(rfcSalt)
	v, err := NewSCRAMVerifier("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSCRAMRFC7677Client(t *testing.T) {
	c := &scramClient{user: "user"}
	if got := c.clientFirst("user", rfcClientNonce); got != rfcClientFirst {
		t.Fatalf("client-first-message = %q, want %q", got, rfcClientFirst)
	}
	keys := func(salt []byte, iterations int) ([]byte, []byte, error) {
		k, err := deriveSCRAMKeys("pencil", salt, iterations)
		return k.client[:], k.server[:], err
	}
	final, err := c.serverFirst(rfcServerFirst, keys)
	if err != nil {
		t.Fatal(err)
	}
	if final != rfcClientFinal {
		t.Fatalf("client-final-message = %q, want %q", final, rfcClientFinal)
	}
	if err := c.serverFinal(rfcServerFinal); err != nil {
		t.Fatalf("server-final-message rejected: %v", err)
	}
	if err := c.serverFinal("v=" + base64.StdEncoding.EncodeToString(make([]byte, 32))); !errors.Is(err, ErrServerSignature) {
		t.Fatalf("wrong server signature: err = %v, want ErrServerSignature", err)
	}
}

func TestSCRAMRFC7677Server(t *testing.T) {
	v := rfcVerifier(t)
	s := &scramServer{user: "user", verifier: &v}
	first, err := s.clientFirst(rfcClientFirst, rfcServerNonce)
	if err != nil {
		t.Fatal(err)
	}
	if first != rfcServerFirst {
		t.Fatalf("server-first-message = %q, want %q", first, rfcServerFirst)
	}
	final, clientKey, err := s.clientFinal(rfcClientFinal)
	if err != nil {
		t.Fatal(err)
	}
	if final != rfcServerFinal {
		t.Fatalf("server-final-message = %q, want %q", final, rfcServerFinal)
	}
	k, _ := deriveSCRAMKeys("pencil", v.Salt, v.Iterations)
	if string(clientKey) != string(k.client[:]) {
		t.Fatalf("recovered ClientKey differs from the one derived from the password")
	}
	if sha256.Sum256(clientKey) != v.StoredKey {
		t.Fatal("SHA-256(ClientKey) != StoredKey")
	}
}

func TestSCRAMServerRejects(t *testing.T) {
	tests := []struct {
		name        string
		first       string
		final       string // "" to stop after the first message
		wantFirst   error
		wantFinal   error
		wantMessage string
	}{
		{name: "channel binding", first: "p=tls-server-end-point,,n=,r=abc", wantFirst: ErrProtocol},
		{name: "authzid", first: "n,a=bob,n=,r=abc", wantFirst: ErrProtocol},
		{name: "bad gs2", first: "x,,n=,r=abc", wantFirst: ErrProtocol},
		{name: "mandatory ext", first: "n,,m=ext,n=,r=abc", wantFirst: ErrProtocol},
		{name: "no nonce", first: "n,,n=", wantFirst: ErrProtocol},
		{name: "empty nonce", first: "n,,n=,r=", wantFirst: ErrProtocol},
		{name: "nonce not printable", first: "n,,n=,r=a\x01b", wantFirst: ErrProtocol},
		{name: "no proof", first: "n,,n=,r=abc", final: "c=biws,r=abcXYZ", wantFinal: ErrProtocol},
		{name: "cbind mismatch", first: "n,,n=,r=abc", final: "c=eSws,r=abcXYZ,p=" + zeroProof, wantFinal: ErrProtocol},
		{name: "nonce mismatch", first: "n,,n=,r=abc", final: "c=biws,r=abcXYY,p=" + zeroProof, wantFinal: ErrProtocol},
		{name: "short proof", first: "n,,n=,r=abc", final: "c=biws,r=abcXYZ,p=AAAA", wantFinal: ErrProtocol},
		{name: "wrong proof", first: "n,,n=,r=abc", final: "c=biws,r=abcXYZ,p=" + zeroProof, wantFinal: ErrPasswordMismatch},
		{name: "y flag wrong proof", first: "y,,n=,r=abc", final: "c=eSws,r=abcXYZ,p=" + zeroProof, wantFinal: ErrPasswordMismatch},
		{name: "extensions ignored", first: "n,,n=x,r=abc,x=ext", final: "c=biws,r=abcXYZ,p=" + zeroProof, wantFinal: ErrPasswordMismatch},
	}
	v := rfcVerifier(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scramServer{user: "u", verifier: &v}
			_, err := s.clientFirst(tt.first, "XYZ")
			if !errors.Is(err, tt.wantFirst) || (tt.wantFirst == nil && err != nil) {
				t.Fatalf("clientFirst error = %v, want %v", err, tt.wantFirst)
			}
			if tt.final == "" {
				return
			}
			_, _, err = s.clientFinal(tt.final)
			if !errors.Is(err, tt.wantFinal) {
				t.Fatalf("clientFinal error = %v, want %v", err, tt.wantFinal)
			}
		})
	}
}

var zeroProof = base64.StdEncoding.EncodeToString(make([]byte, 32))

func TestSCRAMClientRejects(t *testing.T) {
	keys := func(salt []byte, iterations int) ([]byte, []byte, error) {
		return make([]byte, 32), make([]byte, 32), nil
	}
	tests := []struct{ name, serverFirst string }{
		{"nonce not extended", "r=abc,s=c2FsdA==,i=4096"},
		{"nonce of another client", "r=xyzabc,s=c2FsdA==,i=4096"},
		{"bad salt", "r=abcd,s=!!,i=4096"},
		{"empty salt", "r=abcd,s=,i=4096"},
		{"zero iterations", "r=abcd,s=c2FsdA==,i=0"},
		{"bad iterations", "r=abcd,s=c2FsdA==,i=x"},
		{"missing iterations", "r=abcd,s=c2FsdA=="},
		{"order", "s=c2FsdA==,r=abcd,i=4096"},
	}
	for _, tt := range tests {
		c := &scramClient{user: "u"}
		c.clientFirst("", "abc")
		if _, err := c.serverFirst(tt.serverFirst, keys); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want ErrProtocol", tt.name, err)
		}
	}
}

func TestSCRAMEscape(t *testing.T) {
	if got := scramEscape("a,b=c"); got != "a=2Cb=3Dc" {
		t.Errorf("scramEscape = %q", got)
	}
}

func FuzzSCRAMServer(f *testing.F) {
	f.Add(rfcClientFirst, rfcClientFinal)
	f.Add("y,,n=,r=abc", "c=eSws,r=abcXYZ,p="+zeroProof)
	f.Add("p=tls-server-end-point,,n=,r=abc", "")
	f.Add("n,,n=,r=abc,x=1", "c=biws,r=abcXYZ,x=2,p=AAAA")
	salt, _ := base64.StdEncoding.DecodeString(rfcSalt)
	v := SCRAMVerifier{Iterations: 4096, Salt: salt}
	f.Fuzz(func(t *testing.T, first, final string) {
		s := &scramServer{user: "u", verifier: &v}
		if _, err := s.clientFirst(first, "XYZ"); err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("clientFirst: error %v is not ErrProtocol", err)
			}
			return
		}
		if _, _, err := s.clientFinal(final); err != nil && !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrPasswordMismatch) {
			t.Fatalf("clientFinal: unexpected error %v", err)
		}
	})
}

func FuzzSCRAMClient(f *testing.F) {
	f.Add(rfcServerFirst, rfcServerFinal)
	f.Add("r=rOprNGfwEbeRWgbNEkqOx,s=,i=1", "e=other-error")
	keys := func(salt []byte, iterations int) ([]byte, []byte, error) {
		return make([]byte, 32), make([]byte, 32), nil
	}
	f.Fuzz(func(t *testing.T, first, final string) {
		c := &scramClient{user: "u"}
		c.clientFirst("", rfcClientNonce)
		if _, err := c.serverFirst(first, keys); err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("serverFirst: error %v is not ErrProtocol", err)
			}
			return
		}
		if err := c.serverFinal(final); err != nil && !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrServerSignature) {
			t.Fatalf("serverFinal: unexpected error %v", err)
		}
	})
}

func FuzzParseSecret(f *testing.F) {
	f.Add("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=")
	f.Add("md5ee69efad287c7423caf0b3229d71f567")
	f.Add("pencil")
	f.Add("SCRAM-SHA-256$1:$:")
	f.Fuzz(func(t *testing.T, s string) {
		sec := ParseSecret(s)
		if sec.Kind == SecretSCRAM {
			if again := ParseSecret(sec.Text()); again.Kind != SecretSCRAM || again.SCRAM.StoredKey != sec.SCRAM.StoredKey {
				t.Fatalf("SCRAM secret %q does not round-trip", s)
			}
			return
		}
		if sec.Text() != s {
			t.Fatalf("ParseSecret(%q).Text() = %q", s, sec.Text())
		}
	})
}
