package kv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SessionExporter is implemented by a Session whose protocol state can move with its
// connection to a new process at an upgrade (see doc.go, Upgrade). The state is taken
// between requests and is at most 1 KB. At an upgrade, clients whose Session does not
// implement it are closed between requests instead.
type SessionExporter interface {
	ExportState() []byte
}

// SessionImporter is implemented by a Codec that can resume a session exported by
// SessionExporter. A client handed over to a Codec without ImportSession starts a new
// session.
type SessionImporter interface {
	ImportSession(state []byte) (Session, error)
}

// ErrUpgrading: a Reload was refused because the Proxy is handing over to a new
// process.
var ErrUpgrading = errors.New("kv: an upgrade is under way")

// ErrPeerRefused: a process of another user connected to the upgrade socket.
var ErrPeerRefused = errors.New("kv: upgrade socket peer is of another user")

// Timeouts of the control socket.
const (
	upgradeHelloTimeout = 10 * time.Second // the new process' hello, and each message sent
	upgradeReadyTimeout = time.Minute      // the new process' start, once it has the listeners
	handoffQueue        = 64               // clients waiting for the control socket
)

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// sendCtl sends one control message, with the socket of f when f is not nil.
func sendCtl(conn *net.UnixConn, m ctlMsg, f syscall.Conn) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	if f == nil {
		_, _, err = conn.WriteMsgUnix(b, nil, nil)
		return err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	if err := rc.Control(func(fd uintptr) { _, _, werr = conn.WriteMsgUnix(b, unix.UnixRights(int(fd)), nil) }); err != nil {
		return err
	}
	return werr
}

// recvCtl receives one control message and the descriptor it carries, if any.
func recvCtl(conn *net.UnixConn) (ctlMsg, *os.File, error) {
	buf := make([]byte, maxCtlMsg+1)
	oob := make([]byte, unix.CmsgSpace(4*8))
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return ctlMsg{}, nil, err
	}
	var fds []int
	if oobn > 0 {
		scms, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return ctlMsg{}, nil, fmt.Errorf("%w: %v", ErrBadControl, err)
		}
		for _, scm := range scms {
			if r, err := unix.ParseUnixRights(&scm); err == nil {
				fds = append(fds, r...)
			}
		}
	}
	if n == 0 && len(fds) == 0 {
		return ctlMsg{}, nil, io.EOF
	}
	m, err := decodeCtl(buf[:n], len(fds))
	if err == nil && flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		err = fmt.Errorf("%w: truncated", ErrBadControl)
	}
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return ctlMsg{}, nil, err
	}
	if len(fds) == 0 {
		return m, nil, nil
	}
	unix.CloseOnExec(fds[0])
	return m, os.NewFile(uintptr(fds[0]), "kvproxy-upgrade"), nil
}
