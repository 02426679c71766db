package testenv

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// lowestPort is the bottom of the range freePort draws from, below the ephemeral
// range; portRange is where Linux says where that range starts; portSlots is how many
// test processes may hold a share of the range at once.
const (
	lowestPort = 10000
	portRange  = "/proc/sys/net/ipv4/ip_local_port_range"
	portSlots  = 16
)

// ports is this process's share of the range (see claimSlot), and where its next
// port is looked for.
var ports struct {
	sync.Mutex
	claimed bool
	lock    *os.File // held open, and locked, for the life of the process
	lo, hi  int      // the share: [lo, hi); hi == 0 when the process has none
	next    int
	random  map[int]bool // without a share: the ports drawn at random so far
}

// freePort returns a port between lowestPort and the start of the kernel's ephemeral
// range that binds on 127.0.0.1 now.
//
// From below the ephemeral range, since a port the kernel chose for a listener on
// port 0 is one any outgoing connection (tests open thousands, with other packages'
// tests beside them) may take as its local port between the check and the server's
// bind: "address already in use".
//
// From this process's own share of the range, taken in turn: go test runs several
// packages' test processes at once, and two of them drawing at random could both
// find a port free and both start a server on it (the one that binds second fails;
// worse, its test may reach the other's server). Within the share, ports come in
// order from a random start, so one is handed out again only after all the others
// have been. A process that finds no share free (more than portSlots at once) draws
// at random from the whole range; where the range starts too low to leave room, the
// kernel chooses.
func freePort() (int, error) {
	ports.Lock()
	defer ports.Unlock()
	top := ephemeralStart()
	if !ports.claimed {
		ports.claimed = true
		if f, lo, hi, ok := claimSlot(os.TempDir(), top); ok {
			ports.lock, ports.lo, ports.hi = f, lo, hi
			ports.next = lo + rand.IntN(hi-lo)
		}
	}
	if ports.hi > 0 {
		for n := 0; n < ports.hi-ports.lo; n++ {
			port := ports.next
			if ports.next++; ports.next == ports.hi {
				ports.next = ports.lo
			}
			if binds(port) {
				return port, nil
			}
		}
		return 0, fmt.Errorf("free port: none free in %d-%d", ports.lo, ports.hi-1)
	}
	if top <= lowestPort+1000 {
		return kernelPort()
	}
	if ports.random == nil {
		ports.random = map[int]bool{}
	}
	for tries := 0; tries < 1000; tries++ {
		port := lowestPort + rand.IntN(top-lowestPort)
		if !ports.random[port] && binds(port) {
			ports.random[port] = true
			return port, nil
		}
	}
	return 0, errors.New("free port: none found in 1000 tries")
}

// ephemeralStart is where the kernel's ephemeral range starts (Linux's default when
// it cannot be read).
func ephemeralStart() int {
	top := 32768
	if b, err := os.ReadFile(portRange); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				top = v
			}
		}
	}
	return top
}

// claimSlot takes the first of portSlots shares of [lowestPort, top) whose lock file
// in dir no other process holds (flock, released by the kernel when the process
// ends), and returns the locked file, to be kept open, with the share's bounds.
func claimSlot(dir string, top int) (f *os.File, lo, hi int, ok bool) {
	size := (top - lowestPort) / portSlots
	if size < 100 {
		return nil, 0, 0, false
	}
	for k := 0; k < portSlots; k++ {
		path := filepath.Join(dir, fmt.Sprintf("poolsuite-test-ports-%d.lock", k))
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
		if err != nil {
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return f, lowestPort + k*size, lowestPort + (k+1)*size, true
	}
	return nil, 0, 0, false
}

// binds reports whether port binds on 127.0.0.1 now.
func binds(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// kernelPort returns a port the kernel chose for a listener on 127.0.0.1.
func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
