package wire

import (
	"errors"
	"fmt"
)

// ErrMalformed reports a message whose framing cannot be valid (a length below the
// protocol's minimum, for example).
var ErrMalformed = errors.New("wire: malformed message")

// TooLargeError reports a message whose declared length exceeds the limit in force.
type TooLargeError struct {
	Type  byte // message type byte, 0 for a startup packet
	Size  int  // declared size in bytes
	Limit int  // the limit it exceeds
}

func (e *TooLargeError) Error() string {
	if e.Type == 0 {
		return fmt.Sprintf("wire: startup packet of %d bytes exceeds the limit of %d", e.Size, e.Limit)
	}
	return fmt.Sprintf("wire: message %q of %d bytes exceeds the limit of %d", e.Type, e.Size, e.Limit)
}

// MalformedError describes why a message is malformed; it matches ErrMalformed with errors.Is.
type MalformedError struct {
	Reason string
}

func (e *MalformedError) Error() string { return "wire: malformed message: " + e.Reason }

// Is reports whether target is ErrMalformed.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }
