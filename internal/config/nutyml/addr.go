package nutyml

import (
	"net"
	"os"
	"strconv"
	"strings"
)

// maxUnixPath is the longest unix socket path (sun_path holds 108 bytes with the NUL).
const maxUnixPath = 107

func itoa(n int) string { return strconv.Itoa(n) }

// parseListen parses a listen: value as twemproxy does: "/path/to/socket [permissions]",
// or "host:port" split at the last colon. It returns a message if the value is invalid.
// twemproxy also resolves the host when it reads the file; parseListen does not, so an
// unknown host name shows only when the proxy starts listening.
func parseListen(v string) (Listen, string) {
	l := Listen{Raw: v}
	if v[0] == '/' {
		l.Unix = true
		l.Host = v
		if i := strings.LastIndexByte(v, ' '); i >= 0 {
			l.Host = v[:i]
			perm, ok := parsePerm(v[i+1:])
			if !ok {
				return Listen{}, "invalid file permissions in \"/path/to/socket permissions\": " + strconv.Quote(v[i+1:])
			}
			l.Perm = perm
		}
		if len(l.Host) > maxUnixPath {
			return Listen{}, "socket path longer than " + itoa(maxUnixPath) + " bytes"
		}
		return l, ""
	}
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		return Listen{}, strconv.Quote(v) + " is not in \"host:port\" format"
	}
	port, ok := parseNum(v[i+1:])
	if !ok || port < 1 || port > 65535 {
		return Listen{}, "invalid port in \"host:port\": " + strconv.Quote(v)
	}
	l.Host, l.Port = v[:i], port
	switch {
	case l.Host == "":
		return Listen{}, "no host in \"host:port\": " + strconv.Quote(v)
	case strings.HasPrefix(l.Host, "["):
		return Listen{}, "IPv6 addresses are written without brackets (\"::1:22121\"): " + strconv.Quote(v)
	}
	return l, ""
}

// parsePerm reads socket permissions the way twemproxy does (C strtol in base 8): leading
// spaces, an optional sign and octal digits; anything after the digits is ignored. The
// result must be at most 0777.
func parsePerm(s string) (os.FileMode, bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var n uint64
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '7'; i++ {
		n = n*8 + uint64(s[i]-'0')
		if n > 0777 {
			return 0, false
		}
	}
	if neg && n != 0 {
		return 0, false
	}
	return os.FileMode(n), true
}

// Addr returns the address to listen on: "host:port" (IPv6 hosts in brackets) or the
// socket path.
func (l Listen) Addr() string {
	if l.Unix {
		return l.Host
	}
	return net.JoinHostPort(l.Host, itoa(l.Port))
}

// parseReplica parses a replica: "host:port" or "/path/to/socket". It returns a message
// if the value is invalid.
func parseReplica(v string) (Replica, string) {
	if v[0] == '/' {
		if len(v) > maxUnixPath {
			return Replica{}, "socket path longer than " + itoa(maxUnixPath) + " bytes"
		}
		return Replica{Unix: true, Addr: v}, ""
	}
	host, port, ok := splitHostPort(v)
	if !ok || host == "" {
		return Replica{}, strconv.Quote(v) + " is not \"host:port\" or \"/path/to/socket\""
	}
	return Replica{Addr: net.JoinHostPort(host, itoa(port))}, ""
}

// splitHostPort splits "host:port" at the last colon; the port must be a decimal number
// from 1 to 65535. A bracketed IPv6 host loses its brackets. The host may be empty.
func splitHostPort(v string) (string, int, bool) {
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		return "", 0, false
	}
	port, ok := parseNum(v[i+1:])
	if !ok || port < 1 || port > 65535 {
		return "", 0, false
	}
	host := v[:i]
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host, port, true
}
