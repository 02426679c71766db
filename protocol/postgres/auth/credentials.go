package auth

import "fmt"

// Credentials are what the pooler has to log in to PostgreSQL as a user. Authenticate
// returns them; Login uses them. Login prefers, for each method the server asks for:
//
//   - cleartext: Password;
//   - md5: Password, else MD5;
//   - SCRAM-SHA-256: Password, else ClientKey with SCRAM, which works only if the
//     server's verifier has the same salt and iteration count.
//
// Credentials are not modified by Login and may be shared between goroutines.
type Credentials struct {
	// Password is the cleartext password, "" when unknown.
	Password string
	// MD5 is the md5 secret ("md5" + hex(md5(password + user))), "" when unknown.
	MD5 string
	// SCRAM is the SCRAM-SHA-256 verifier the ClientKey belongs to, nil when unknown.
	SCRAM *SCRAMVerifier
	// ClientKey is the SCRAM ClientKey recovered from the client's proof (32 bytes),
	// nil when unknown. SHA-256(ClientKey) equals SCRAM.StoredKey.
	ClientKey []byte
}

// String returns a redacted description saying which credentials are present.
func (c Credentials) String() string {
	return fmt.Sprintf("credentials (password %t, md5 %t, scram verifier %t, client key %t; redacted)",
		c.Password != "", c.MD5 != "", c.SCRAM != nil, c.ClientKey != nil)
}

// GoString is String, so that %#v does not leak the secrets either.
func (c Credentials) GoString() string { return c.String() }
