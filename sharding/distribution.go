package sharding

import (
	"errors"
	"fmt"
)

// Distribution says how a Ring maps hashes to servers.
type Distribution uint8

const (
	// Ketama is consistent hashing on a continuum of md5 points, about 160 per server in
	// proportion to weight: removing a server moves only its keys. twemproxy's default.
	Ketama Distribution = iota
	// Modula picks server hash % (total weight), each server owning weight slots in
	// server order: removing a server moves most keys.
	Modula
	// Random picks a live server at random for every request, ignoring key and weight.
	Random
)

// ErrUnknownDistribution is wrapped by ParseDistribution for a name it does not know.
var ErrUnknownDistribution = errors.New("sharding: unknown distribution")

var distributionNames = [...]string{Ketama: "ketama", Modula: "modula", Random: "random"}

// ParseDistribution returns the distribution named as in a nutcracker.yml distribution:
// key: "ketama", "modula" or "random" (case-sensitive).
func ParseDistribution(name string) (Distribution, error) {
	for d, n := range distributionNames {
		if n == name {
			return Distribution(d), nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownDistribution, name)
}

// String returns the distribution's nutcracker.yml name.
func (d Distribution) String() string {
	if int(d) < len(distributionNames) {
		return distributionNames[d]
	}
	return fmt.Sprintf("Distribution(%d)", d)
}
