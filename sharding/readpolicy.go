package sharding

import (
	"errors"
	"fmt"
)

// ReadPolicy says which server of a shard (its primary or one of its replicas) serves a
// read. Writes always go to the primary.
type ReadPolicy uint8

const (
	// ReadPrimary sends every read to the primary. The default, and twemproxy's behaviour.
	ReadPrimary ReadPolicy = iota
	// ReadPreferPrimary reads from the primary while it is live, else from a live replica.
	ReadPreferPrimary
	// ReadReplica reads only from live replicas, never from the primary.
	ReadReplica
	// ReadPreferReplica reads from a live replica if there is one, else from the primary.
	ReadPreferReplica
)

// ErrUnknownReadPolicy is wrapped by ParseReadPolicy for a name it does not know.
var ErrUnknownReadPolicy = errors.New("sharding: unknown read policy")

var readPolicyNames = [...]string{
	ReadPrimary:       "primary",
	ReadPreferPrimary: "prefer-primary",
	ReadReplica:       "replica",
	ReadPreferReplica: "prefer-replica",
}

// ParseReadPolicy returns the policy with the given name: "primary", "prefer-primary",
// "replica" or "prefer-replica".
func ParseReadPolicy(name string) (ReadPolicy, error) {
	for p, n := range readPolicyNames {
		if n == name {
			return ReadPolicy(p), nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownReadPolicy, name)
}

// String returns the policy's name as ParseReadPolicy accepts it.
func (p ReadPolicy) String() string {
	if int(p) < len(readPolicyNames) {
		return readPolicyNames[p]
	}
	return fmt.Sprintf("ReadPolicy(%d)", p)
}
