package kv

import (
	"encoding/json"
	"errors"
	"fmt"
)

// The messages of the upgrade control socket (a unix SOCK_SEQPACKET socket, so every
// message arrives whole with its file descriptor). Each is one JSON object; a message
// that carries a socket carries exactly one descriptor (SCM_RIGHTS).
const (
	opHello     = "hello"     // new → old: the new process asks to take over
	opListener  = "listener"  // old → new: one listening socket (with its fd)
	opListeners = "listeners" // old → new: every listener was sent; carries the old pid
	opReady     = "ready"     // new → old: the new process serves; hand over
	opClient    = "client"    // old → new: one client connection (with its fd) and its state
	opDone      = "done"      // old → new: every client was handed over or closed
)

// Kinds of listeners passed with opListener.
const (
	kindPool    = "pool"
	kindStats   = "stats"
	kindMetrics = "metrics"
)

// Bounds of a control message.
const (
	maxCtlMsg   = 16 << 10 // the largest message
	maxCtlState = 1 << 10  // the largest session state of a client
)

// upgradeVersion is the control protocol's version; a hello of another version is
// refused.
const upgradeVersion = 1

// ctlMsg is one control message.
type ctlMsg struct {
	Op      string `json:"op"`
	Version int    `json:"version,omitempty"` // hello
	Pid     int    `json:"pid,omitempty"`     // hello, listeners
	Kind    string `json:"kind,omitempty"`    // listener
	Pool    string `json:"pool,omitempty"`    // listener (kind pool), client
	Listen  string `json:"listen,omitempty"`  // listener: the pool's listen key or the stats/metrics address
	State   []byte `json:"state,omitempty"`   // client: the Session's exported state
}

// ErrBadControl reports a control message that breaks the upgrade protocol.
var ErrBadControl = errors.New("kv: invalid upgrade control message")

// wantsFD reports whether a message of op carries one file descriptor.
func wantsFD(op string) bool { return op == opListener || op == opClient }

func (m *ctlMsg) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > maxCtlMsg {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadControl, len(b))
	}
	return b, nil
}

// decodeCtl parses one control message that arrived with nfds descriptors and checks
// it: a known op, the descriptors it must carry, the fields it needs.
func decodeCtl(b []byte, nfds int) (ctlMsg, error) {
	var m ctlMsg
	if len(b) > maxCtlMsg {
		return m, fmt.Errorf("%w: %d bytes", ErrBadControl, len(b))
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrBadControl, err)
	}
	want := 0
	if wantsFD(m.Op) {
		want = 1
	}
	if nfds != want {
		return m, fmt.Errorf("%w: %q with %d descriptors", ErrBadControl, m.Op, nfds)
	}
	switch m.Op {
	case opHello:
		if m.Version != upgradeVersion {
			return m, fmt.Errorf("%w: version %d, want %d", ErrBadControl, m.Version, upgradeVersion)
		}
	case opListener:
		switch {
		case m.Kind == kindPool && m.Pool != "" && m.Listen != "":
		case (m.Kind == kindStats || m.Kind == kindMetrics) && m.Listen != "":
		default:
			return m, fmt.Errorf("%w: listener kind %q pool %q listen %q", ErrBadControl, m.Kind, m.Pool, m.Listen)
		}
	case opListeners:
		if m.Pid <= 0 {
			return m, fmt.Errorf("%w: listeners without the old pid", ErrBadControl)
		}
	case opClient:
		if m.Pool == "" || len(m.State) > maxCtlState {
			return m, fmt.Errorf("%w: client of pool %q with %d bytes of state", ErrBadControl, m.Pool, len(m.State))
		}
	case opReady, opDone:
	default:
		return m, fmt.Errorf("%w: op %q", ErrBadControl, m.Op)
	}
	return m, nil
}
