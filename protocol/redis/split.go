package redis

import (
	"errors"
	"strconv"
)

// Sharder maps a routing key to the shard that owns it, an index in [0, shards), or
// a negative number when no shard can take it (Split keeps such keys in a part of their
// own, with that Shard). Implementations apply hash tags themselves.
type Sharder interface {
	Shard(key []byte) int
}

// Errors for requests the proxy cannot route.
var (
	// ErrWrongArgs is a request with the wrong number of arguments for its command.
	ErrWrongArgs = errors.New("redis: wrong number of arguments")
	// ErrEvalCrossShard is an EVAL or EVALSHA whose keys live on different servers.
	ErrEvalCrossShard = errors.New("redis: EVAL keys live on different servers")
	// ErrEvalNoKeys is an EVAL or EVALSHA with no keys: the proxy cannot route it.
	ErrEvalNoKeys = errors.New("redis: EVAL without keys cannot be routed")
	// ErrEvalNumKeys is an EVAL or EVALSHA whose key count is not a number in range.
	ErrEvalNumKeys = errors.New("redis: EVAL key count out of range")
)

// EvalShard returns the shard of an EVAL/EVALSHA request (script, numkeys, keys...,
// args...): every key must be on the same shard.
func EvalShard(args [][]byte, sh Sharder) (int, error) {
	if len(args) < 3 {
		return 0, ErrWrongArgs
	}
	n, err := strconv.Atoi(string(args[2]))
	if err != nil || n < 0 || n > len(args)-3 {
		return 0, ErrEvalNumKeys
	}
	if n == 0 {
		return 0, ErrEvalNoKeys
	}
	shard := sh.Shard(args[3])
	for _, k := range args[4 : 3+n] {
		if sh.Shard(k) != shard {
			return 0, ErrEvalCrossShard
		}
	}
	return shard, nil
}

// CheckArgs reports ErrWrongArgs when args do not fit cmd (too few, or MSET with a key
// lacking its value).
func CheckArgs(cmd *Command, args [][]byte) error {
	if len(args) < cmd.MinArgs {
		return ErrWrongArgs
	}
	if cmd.Kind == MultiKeyValue && (len(args)-1)%2 != 0 {
		return ErrWrongArgs
	}
	return nil
}

// Part is the piece of a split command bound for one shard.
type Part struct {
	Shard int
	// Payload is the sub-request, a complete multi-bulk command. It is owned by the
	// Split and reused by its next Build.
	Payload []byte
	nkeys   int
}

// Split divides a multi-key command (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH) into one
// sub-command per shard and merges their replies in request order. A Split is reused
// from request to request to avoid allocation; it is not safe for concurrent use.
//
// Merge semantics when a part fails (its reply is an error, e.g. "-ERR Connection
// timed out" from a dead shard): the whole command is answered with the first failed
// part's error alone, whatever the command: an MGET array mixing values and errors is
// a reply no Redis server sends (clients put exception objects in the list, or fail
// on them), and a partial count or a partial OK would mislead. twemproxy too answers
// one error for the whole command.
type Split struct {
	Cmd   *Command
	Parts []Part

	keyPart   []int32 // per key: index in Parts
	keyIdx    []int32 // per key: position within its part
	shardPart []int32 // per shard + 1 (a negative shard maps to 0): index in Parts + 1, 0 when none
	elems     [][]byte
	elemStart []int
}

// Build splits the request args (command name first) of the multi-key command cmd.
// Call CheckArgs first.
func (s *Split) Build(cmd *Command, args [][]byte, sh Sharder) {
	s.Cmd = cmd
	for i := range s.Parts {
		s.Parts[i].Payload = s.Parts[i].Payload[:0]
		s.Parts[i].nkeys = 0
	}
	s.Parts = s.Parts[:0]
	s.keyPart = s.keyPart[:0]
	s.keyIdx = s.keyIdx[:0]
	step := 1
	if cmd.Kind == MultiKeyValue {
		step = 2
	}
	for i := 1; i+step-1 < len(args); i += step {
		shard := sh.Shard(args[i])
		slot := max(shard+1, 0)
		for slot >= len(s.shardPart) {
			s.shardPart = append(s.shardPart, 0)
		}
		p := s.shardPart[slot] - 1
		if p < 0 {
			p = int32(len(s.Parts))
			s.shardPart[slot] = p + 1
			if len(s.Parts) < cap(s.Parts) {
				s.Parts = s.Parts[:len(s.Parts)+1]
				s.Parts[p].Shard = shard
				s.Parts[p].Payload = s.Parts[p].Payload[:0]
				s.Parts[p].nkeys = 0
			} else {
				s.Parts = append(s.Parts, Part{Shard: shard})
			}
		}
		s.keyPart = append(s.keyPart, p)
		s.keyIdx = append(s.keyIdx, int32(s.Parts[p].nkeys))
		s.Parts[p].nkeys++
	}
	name := args[0]
	for i := range s.Parts {
		pt := &s.Parts[i]
		s.shardPart[max(pt.Shard+1, 0)] = 0
		pt.Payload = AppendArrayLen(pt.Payload, 1+pt.nkeys*step)
		pt.Payload = AppendBulk(pt.Payload, name)
	}
	for k, p := range s.keyPart {
		pt := &s.Parts[p]
		a := 1 + k*step
		pt.Payload = AppendBulk(pt.Payload, args[a])
		if step == 2 {
			pt.Payload = AppendBulk(pt.Payload, args[a+1])
		}
	}
}

// Merge appends to dst the client's reply built from the parts' replies (replies[i]
// answers Parts[i]; each a complete reply, possibly an error).
func (s *Split) Merge(dst []byte, replies [][]byte) []byte {
	if len(s.Parts) == 1 {
		return append(dst, replies[0]...)
	}
	switch s.Cmd.Kind {
	case MultiKeyValue:
		for _, r := range replies {
			if IsError(r) {
				return append(dst, r...)
			}
			if len(r) == 0 || r[0] != '+' {
				return AppendError(dst, "ERR unexpected reply from server")
			}
		}
		return AppendSimple(dst, "OK")
	case MultiKey:
		if s.Cmd.Name == "MGET" {
			return s.mergeMGET(dst, replies)
		}
		var sum int64
		for _, r := range replies {
			if IsError(r) {
				return append(dst, r...)
			}
			n, ok := ReplyInt(r)
			if !ok {
				return AppendError(dst, "ERR unexpected reply from server")
			}
			sum += n
		}
		return AppendInt(dst, sum)
	}
	return AppendError(dst, "ERR cannot merge "+s.Cmd.Name)
}

func (s *Split) mergeMGET(dst []byte, replies [][]byte) []byte {
	for _, r := range replies {
		if IsError(r) {
			return append(dst, r...)
		}
	}
	s.elems = s.elems[:0]
	s.elemStart = s.elemStart[:0]
	for i, r := range replies {
		s.elemStart = append(s.elemStart, len(s.elems))
		var ok bool
		s.elems, ok = ArrayElements(s.elems, r)
		if !ok || len(s.elems)-s.elemStart[i] != s.Parts[i].nkeys {
			return AppendError(dst, "ERR unexpected reply from server")
		}
	}
	dst = AppendArrayLen(dst, len(s.keyPart))
	for k, p := range s.keyPart {
		dst = append(dst, s.elems[s.elemStart[p]+int(s.keyIdx[k])]...)
	}
	return dst
}
