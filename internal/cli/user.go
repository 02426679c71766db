package cli

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// ErrRunAsRoot reports a process that would go on running as root: PgBouncer
// refuses to ("PgBouncer should not run as root"), and so do pgpool and kvproxy.
var ErrRunAsRoot = errors.New("should not run as root")

// ErrSwitchUser reports a user switch that cannot be made: the user is unknown, or
// the process is neither root nor already that user.
var ErrSwitchUser = errors.New("cannot switch user")

// Credentials are the ids a process switches to.
type Credentials struct {
	Name   string
	UID    int
	GID    int
	Groups []int // supplementary groups
}

// LookupCredentials finds the ids of the user name (a name or a numeric id).
func LookupCredentials(name string) (*Credentials, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var uerr error
		if u, uerr = user.LookupId(name); uerr != nil {
			return nil, fmt.Errorf("%w to %s: %w", ErrSwitchUser, name, err)
		}
	}
	c := &Credentials{Name: u.Username}
	if c.UID, err = strconv.Atoi(u.Uid); err != nil {
		return nil, fmt.Errorf("%w to %s: uid %q", ErrSwitchUser, name, u.Uid)
	}
	if c.GID, err = strconv.Atoi(u.Gid); err != nil {
		return nil, fmt.Errorf("%w to %s: gid %q", ErrSwitchUser, name, u.Gid)
	}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil {
				c.Groups = append(c.Groups, g)
			}
		}
	}
	if len(c.Groups) == 0 {
		c.Groups = []int{c.GID}
	}
	return c, nil
}

// CheckUser is checked before a program starts: as root it needs a user to switch
// to (name, from its configuration or -u), else ErrRunAsRoot; as another user, name
// must be empty or that same user, else ErrSwitchUser. allowRoot lifts the first
// rule (for tests and containers that mean it).
func CheckUser(name string, allowRoot bool) (*Credentials, error) {
	if name == "" {
		if os.Geteuid() == 0 && !allowRoot {
			return nil, ErrRunAsRoot
		}
		return nil, nil
	}
	c, err := LookupCredentials(name)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 && os.Geteuid() != c.UID {
		return nil, fmt.Errorf("%w to %s: only root can (running as uid %d)", ErrSwitchUser, name, os.Geteuid())
	}
	if c.UID == 0 && !allowRoot {
		return nil, fmt.Errorf("user %s: %w", name, ErrRunAsRoot)
	}
	return c, nil
}

// SwitchUser gives up root for c's ids: supplementary groups, then group, then
// user, for every thread (Go 1.16 and later). A nil c, or c already the process's
// user, does nothing.
func SwitchUser(c *Credentials) error {
	if c == nil || (os.Geteuid() == c.UID && os.Getegid() == c.GID) {
		return nil
	}
	if err := syscall.Setgroups(c.Groups); err != nil {
		return fmt.Errorf("%w to %s: setgroups: %w", ErrSwitchUser, c.Name, err)
	}
	if err := syscall.Setgid(c.GID); err != nil {
		return fmt.Errorf("%w to %s: setgid: %w", ErrSwitchUser, c.Name, err)
	}
	if err := syscall.Setuid(c.UID); err != nil {
		return fmt.Errorf("%w to %s: setuid: %w", ErrSwitchUser, c.Name, err)
	}
	if os.Geteuid() == 0 && c.UID != 0 {
		return fmt.Errorf("%w to %s: still root", ErrSwitchUser, c.Name)
	}
	return nil
}
