package pgpool

import (
	"testing"

	"github.com/poolsuite/poolsuite/protocol/postgres"
)

// TestSessionServerLost: when the server connection dies, the pins of state that
// lived in its session (a lock, LISTEN, an unfollowed SET) go, and so does a pending
// check; pgpool's own statement-tracking reasons stay.
func TestSessionServerLost(t *testing.T) {
	var s session
	s.note(postgres.StateChange{Takes: postgres.StateAdvisoryLock | postgres.StateListen, Recheck: true}, true)
	s.pin(pinPipeline)
	if was := s.serverLost(); was.String() != "advisory_lock,listen,set,pipeline" {
		t.Fatalf("pins before: %q", was)
	}
	if s.pins != pinPipeline || s.pinCheck {
		t.Fatalf("after the loss: pins %q, check %v", s.pins, s.pinCheck)
	}
}
