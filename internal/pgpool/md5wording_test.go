package pgpool

import (
	"regexp"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/protocol/postgres/auth"
)

// TestMD5SCRAMFailureWording: under auth_type = md5 a failed SCRAM exchange (a user
// whose secret is a SCRAM verifier, or an unknown one the mock asks SCRAM of) is told
// and logged as a failed password, as PostgreSQL words both methods' failures, so the
// words never depend on which method the secret (or the mock) chose.
func TestMD5SCRAMFailureWording(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	scram, err := auth.NewSCRAMSecret(f.password)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, user, db string
		authQuery      bool
	}{
		// A real user with a SCRAM verifier and a wrong password.
		{"scram-secret", f.user, f.db, false},
		// Every auth_file user has a verifier: an unknown user is asked SCRAM.
		{"unknown-user", "nosuchuser", f.db, false},
		// auth_query cannot run for a database that does not exist; the mock follows
		// PostgreSQL's default password_encryption (SCRAM).
		{"auth-query-no-database", "someuser", "nosuchdb", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.config()
			cfg.AuthType = "md5"
			cfg.Userlist = map[string]string{f.user: scram.Text()}
			if tt.authQuery {
				cfg.Userlist[f.pg.SuperUser] = f.pg.SuperPassword
				cfg.AuthUser = f.pg.SuperUser
			}
			_, addr, sink := startLoggedPooler(t, cfg)
			pe := wantSQLState(t, tryConnect(dsnFor(addr, tt.user, "wrong", tt.db)), CodeInvalidPassword)
			if want := `password authentication failed for user "` + tt.user + `"`; pe.Message != want {
				t.Errorf("client told %q, want %q", pe.Message, want)
			}
			sink.wait(t, linePrefix+`LOG `+clientPrefix(tt.db, tt.user)+`closing because: password authentication failed.* \(age=\d+s\)$`, 5*time.Second)
			if regexp.MustCompile(`SASL authentication failed`).MatchString(sink.String()) {
				t.Errorf("log words a failure under md5 as SASL's:\n%s", sink.String())
			}
		})
	}
}
