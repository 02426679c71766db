package sharding

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalidServer is wrapped by the errors ParseServer returns.
var ErrInvalidServer = errors.New("sharding: invalid server")

// ServerError is the error ParseServer returns. It wraps ErrInvalidServer.
type ServerError struct {
	Entry  string // the entry as given
	Reason string // what is wrong with it
}

// Error returns a message naming the entry and the reason.
func (e *ServerError) Error() string {
	return fmt.Sprintf("sharding: invalid server %q: %s", e.Entry, e.Reason)
}

// Unwrap returns ErrInvalidServer.
func (e *ServerError) Unwrap() error { return ErrInvalidServer }

// memcachedPort is the port twemproxy leaves out of a server's name, for compatibility
// with libmemcached's ketama.
const memcachedPort = 11211

// ServerSpec is one entry of a nutcracker.yml servers list, as ParseServer reads it.
type ServerSpec struct {
	// Name is what distributions hash: the name given after the weight, else "host:port"
	// as written, except that a port of 11211 is left out ("host"); for a unix socket
	// without a name it is the path followed by a colon ("/path:").
	Name string
	// Host is the host as written (an IP address or a hostname), or the socket path.
	Host string
	// Port is the TCP port, 0 for a unix socket.
	Port int
	// Weight is the weight, at least 1.
	Weight uint32
	// Unix reports whether the server is a unix socket (the entry starts with '/').
	Unix bool
	// Named reports whether the entry gave a name.
	Named bool
}

// Network returns "unix" or "tcp", for net.Dial.
func (s ServerSpec) Network() string {
	if s.Unix {
		return "unix"
	}
	return "tcp"
}

// Addr returns the address to dial: the socket path, or host and port joined by
// net.JoinHostPort (so an IPv6 host gets brackets).
func (s ServerSpec) Addr() string {
	if s.Unix {
		return s.Host
	}
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// ParseServer parses one servers entry the way twemproxy does, from the end of the
// string: "host:port:weight [name]" or "/path/to/socket:weight [name]". The name is what
// follows the last space; the weight follows the last colon before it, and for TCP the
// port follows the colon before that, so hosts may contain colons (IPv6) but names may not
// contain spaces and socket paths may not contain colons. The weight must be a positive
// decimal number and the port a decimal number from 1 to 65535. Errors are *ServerError.
func ParseServer(entry string) (ServerSpec, error) {
	var s ServerSpec
	if entry == "" {
		return s, &ServerError{entry, "empty entry"}
	}
	s.Unix = entry[0] == '/'
	rest := entry
	if i := strings.LastIndexByte(rest, ' '); i >= 0 {
		s.Name, s.Named = rest[i+1:], true
		rest = rest[:i]
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return s, errServerFormat(entry)
	}
	weight := rest[i+1:]
	rest = rest[:i]
	var port string
	if s.Unix {
		if strings.IndexByte(rest, ':') >= 0 {
			return s, errServerFormat(entry)
		}
	} else {
		j := strings.LastIndexByte(rest, ':')
		if j < 0 {
			return s, errServerFormat(entry)
		}
		port = rest[j+1:]
		rest = rest[:j]
	}
	s.Host = rest

	w, ok := atoi(weight)
	if !ok {
		return s, &ServerError{entry, fmt.Sprintf("invalid weight %q", weight)}
	}
	if w == 0 {
		return s, &ServerError{entry, "zero weight"}
	}
	s.Weight = uint32(w)

	if !s.Unix {
		p, ok := atoi(port)
		if !ok || p < 1 || p > math.MaxUint16 {
			return s, &ServerError{entry, fmt.Sprintf("invalid port %q", port)}
		}
		s.Port = p
	}

	if !s.Named {
		switch {
		case s.Unix:
			s.Name = s.Host + ":"
		case s.Port == memcachedPort:
			s.Name = s.Host
		default:
			s.Name = s.Host + ":" + port
		}
	}
	return s, nil
}

func errServerFormat(entry string) error {
	return &ServerError{entry, `not in "host:port:weight [name]" or "/path/to/socket:weight [name]" format`}
}

// atoi parses a non-empty string of ASCII digits that fits in an int32, as twemproxy's
// nc_atoi accepts numbers (no sign, no spaces, no base prefix).
func atoi(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > math.MaxInt32 {
			return 0, false
		}
	}
	return n, true
}

// CompareNames orders server names as twemproxy sorts servers: shorter names first, names
// of equal length by their bytes. It returns -1, 0 or +1.
func CompareNames(a, b string) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// SortServers sorts servers into twemproxy's order (CompareNames on Name), the order that
// modula indices and ketama tie-breaks follow.
func SortServers(servers []ServerSpec) {
	slices.SortStableFunc(servers, func(a, b ServerSpec) int { return CompareNames(a.Name, b.Name) })
}
