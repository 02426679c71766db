package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends systemd's service notifications (sd_notify's protocol: one
// datagram of "KEY=value" lines to the unixgram socket NOTIFY_SOCKET names). A nil
// *Notifier does nothing, so a program calls it whether or not it runs under systemd.
type Notifier struct {
	mu   sync.Mutex
	conn *net.UnixConn

	watchdog time.Duration // interval of WATCHDOG=1 pings; 0: none
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// NewNotifier connects to the socket NOTIFY_SOCKET names ("@name" for an abstract
// one) and returns nil, nil when the variable is unset. WATCHDOG_USEC (for this
// process, when WATCHDOG_PID is unset or names it) sets the interval of the pings
// StartWatchdog sends: half of it, as systemd advises. The socket is connected at
// once, so it keeps working after the process gives up root.
func NewNotifier() (*Notifier, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil, nil
	}
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
		return nil, fmt.Errorf("NOTIFY_SOCKET %q: %w", path, ErrNotifySocket)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("NOTIFY_SOCKET: %w", err)
	}
	n := &Notifier{conn: conn, stop: make(chan struct{})}
	n.watchdog = watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
	return n, nil
}

// ErrNotifySocket reports a NOTIFY_SOCKET that is neither a path nor an abstract name.
var ErrNotifySocket = errors.New("not an absolute path or @name")

// watchdogInterval is half of WATCHDOG_USEC (usec) when the watchdog is meant for
// the process pid (WATCHDOG_PID empty or pid), else 0.
func watchdogInterval(usec, wpid string, pid int) time.Duration {
	if usec == "" {
		return 0
	}
	if wpid != "" && wpid != strconv.Itoa(pid) {
		return 0
	}
	n, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || n == 0 {
		return 0
	}
	return time.Duration(n) * time.Microsecond / 2
}

// Notify sends state, one or more "KEY=value" lines, as one datagram.
func (n *Notifier) Notify(state string) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		return net.ErrClosed
	}
	_, err := n.conn.Write([]byte(state))
	return err
}

// Ready tells the service manager the program is serving (READY=1).
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Reloading tells it a reload starts (RELOADING=1, with the MONOTONIC_USEC systemd
// 253 and later expect); Ready follows when the reload is done.
func (n *Notifier) Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return n.Notify("RELOADING=1")
	}
	usec := ts.Sec*1_000_000 + ts.Nsec/1000
	return n.Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
}

// Stopping tells it the program is shutting down (STOPPING=1).
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// WatchdogInterval returns the interval of the watchdog pings, 0 when systemd asked
// for none.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// StartWatchdog sends WATCHDOG=1 every WatchdogInterval until Close, when systemd
// asked for a watchdog; otherwise it does nothing.
func (n *Notifier) StartWatchdog() {
	if n == nil || n.watchdog <= 0 {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(n.watchdog)
		defer t.Stop()
		for {
			select {
			case <-n.stop:
				return
			case <-t.C:
				n.Notify("WATCHDOG=1")
			}
		}
	}()
}

// Close stops the watchdog and closes the socket.
func (n *Notifier) Close() error {
	if n == nil {
		return nil
	}
	n.stopOnce.Do(func() { close(n.stop) })
	n.wg.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		return nil
	}
	err := n.conn.Close()
	n.conn = nil
	return err
}
