package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
)

// StartupKind says what a startup packet asks for.
type StartupKind int

// The kinds of startup packet.
const (
	KindStartupMessage StartupKind = iota + 1 // protocol 3.x StartupMessage with parameters
	KindSSLRequest                            // SSLRequest: answer 'S' or 'N' before the next packet
	KindGSSENCRequest                         // GSSENCRequest: answer 'N' (or encrypt) before the next packet
	KindCancelRequest                         // CancelRequest: PID and secret of a BackendKeyData
)

// Startup is a decoded startup packet.
type Startup struct {
	Kind StartupKind
	// Minor is the protocol's minor version of a StartupMessage (major is always 3).
	Minor uint16
	// Params are a StartupMessage's parameters (user, database, options, ...).
	Params map[string]string
	// PID and Secret are a CancelRequest's key.
	PID, Secret uint32
}

// UnsupportedProtocolError reports a StartupMessage for a protocol other than 3.x.
type UnsupportedProtocolError struct {
	Major, Minor uint16
}

func (e *UnsupportedProtocolError) Error() string {
	return fmt.Sprintf("unsupported frontend protocol %d.%d: server supports 3.0", e.Major, e.Minor)
}

// DecodeStartup decodes a whole startup packet as ReadStartup returns it (length
// included). Malformed packets give a *MalformedError, protocols other than 3.x an
// *UnsupportedProtocolError. Params does not alias pkt.
func DecodeStartup(pkt []byte) (Startup, error) {
	if len(pkt) < 8 || int(binary.BigEndian.Uint32(pkt)) != len(pkt) {
		return Startup{}, &MalformedError{Reason: "startup packet length does not match its contents"}
	}
	code := binary.BigEndian.Uint32(pkt[4:])
	switch code {
	case SSLRequestCode, GSSENCRequest:
		if len(pkt) != 8 {
			return Startup{}, &MalformedError{Reason: "encryption request of wrong length"}
		}
		if code == SSLRequestCode {
			return Startup{Kind: KindSSLRequest}, nil
		}
		return Startup{Kind: KindGSSENCRequest}, nil
	case CancelRequest:
		if len(pkt) != 16 {
			return Startup{}, &MalformedError{Reason: "cancel request of wrong length"}
		}
		return Startup{Kind: KindCancelRequest, PID: binary.BigEndian.Uint32(pkt[8:]), Secret: binary.BigEndian.Uint32(pkt[12:])}, nil
	}
	if code>>16 != 3 {
		return Startup{}, &UnsupportedProtocolError{Major: uint16(code >> 16), Minor: uint16(code)}
	}
	var sm pgproto3.StartupMessage
	if err := sm.Decode(pkt[4:]); err != nil {
		return Startup{}, &MalformedError{Reason: "parameter list not terminated as the protocol requires"}
	}
	return Startup{Kind: KindStartupMessage, Minor: uint16(code), Params: sm.Parameters}, nil
}
