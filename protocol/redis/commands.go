package redis

// Kind says how a command is routed.
type Kind uint8

// Command kinds.
const (
	// Unsupported commands are refused with "-ERR unsupported command 'X'".
	Unsupported Kind = iota
	// SingleKey commands go to the server owning Args[KeyIndex].
	SingleKey
	// MultiKey commands (MGET, DEL, UNLINK, EXISTS, TOUCH) take keys only; they are
	// split per server and their replies merged.
	MultiKey
	// MultiKeyValue commands (MSET) take key-value pairs; split and merged like
	// MultiKey.
	MultiKeyValue
	// Eval commands (EVAL, EVALSHA) name their keys after a key count; every key must
	// live on one server.
	Eval
	// Local commands (PING, QUIT, AUTH, ECHO, SELECT) are answered by the proxy.
	Local
	// NoKey commands (COMMAND, LOLWUT) go to any one server.
	NoKey
)

// Command describes one command of the table.
type Command struct {
	Name string // upper case
	Kind Kind
	// KeyIndex is the argument holding the routing key for SingleKey commands
	// (1 for nearly all of them).
	KeyIndex int
	// MinArgs is the fewest arguments, command name included, the proxy needs to
	// route the command. Fewer get the wrong-number-of-arguments error.
	MinArgs int
	// ReadOnly commands may be served by a replica under the pool's read policy.
	ReadOnly bool
}

// commandTable lists every command twemproxy routes (its notes/redis.md and its
// request parser), and a few of its unsupported ones by name so their error says so.
// Where twemproxy's key position is the first argument even though that argument is a
// key count (ZDIFF, ZINTER, ZUNION), the first real key is used instead: those commands
// only read, so this changes no key placement and routes to where the keys are.
var commandTable = buildTable([]Command{
	// Keys.
	{Name: "DEL", Kind: MultiKey, MinArgs: 2},
	{Name: "UNLINK", Kind: MultiKey, MinArgs: 2},
	{Name: "TOUCH", Kind: MultiKey, MinArgs: 2, ReadOnly: true},
	{Name: "EXISTS", Kind: MultiKey, MinArgs: 2, ReadOnly: true},
	{Name: "DUMP", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "RESTORE", Kind: SingleKey, MinArgs: 4},
	{Name: "COPY", Kind: SingleKey, MinArgs: 3},
	{Name: "EXPIRE", Kind: SingleKey, MinArgs: 3},
	{Name: "EXPIREAT", Kind: SingleKey, MinArgs: 3},
	{Name: "PEXPIRE", Kind: SingleKey, MinArgs: 3},
	{Name: "PEXPIREAT", Kind: SingleKey, MinArgs: 3},
	{Name: "PERSIST", Kind: SingleKey, MinArgs: 2},
	{Name: "TTL", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "PTTL", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "TYPE", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "SORT", Kind: SingleKey, MinArgs: 2},
	{Name: "MOVE", Kind: SingleKey, MinArgs: 3},

	// Strings.
	{Name: "APPEND", Kind: SingleKey, MinArgs: 3},
	{Name: "BITCOUNT", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "BITPOS", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "BITFIELD", Kind: SingleKey, MinArgs: 2},
	{Name: "DECR", Kind: SingleKey, MinArgs: 2},
	{Name: "DECRBY", Kind: SingleKey, MinArgs: 3},
	{Name: "GET", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "GETBIT", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "GETDEL", Kind: SingleKey, MinArgs: 2},
	{Name: "GETEX", Kind: SingleKey, MinArgs: 2},
	{Name: "GETRANGE", Kind: SingleKey, MinArgs: 4, ReadOnly: true},
	{Name: "GETSET", Kind: SingleKey, MinArgs: 3},
	{Name: "INCR", Kind: SingleKey, MinArgs: 2},
	{Name: "INCRBY", Kind: SingleKey, MinArgs: 3},
	{Name: "INCRBYFLOAT", Kind: SingleKey, MinArgs: 3},
	{Name: "MGET", Kind: MultiKey, MinArgs: 2, ReadOnly: true},
	{Name: "MSET", Kind: MultiKeyValue, MinArgs: 3},
	{Name: "PSETEX", Kind: SingleKey, MinArgs: 4},
	{Name: "SET", Kind: SingleKey, MinArgs: 3},
	{Name: "SETBIT", Kind: SingleKey, MinArgs: 4},
	{Name: "SETEX", Kind: SingleKey, MinArgs: 4},
	{Name: "SETNX", Kind: SingleKey, MinArgs: 3},
	{Name: "SETRANGE", Kind: SingleKey, MinArgs: 4},
	{Name: "STRLEN", Kind: SingleKey, MinArgs: 2, ReadOnly: true},

	// Hashes.
	{Name: "HDEL", Kind: SingleKey, MinArgs: 3},
	{Name: "HEXISTS", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "HGET", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "HGETALL", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "HINCRBY", Kind: SingleKey, MinArgs: 4},
	{Name: "HINCRBYFLOAT", Kind: SingleKey, MinArgs: 4},
	{Name: "HKEYS", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "HLEN", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "HMGET", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "HMSET", Kind: SingleKey, MinArgs: 4},
	{Name: "HRANDFIELD", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "HSET", Kind: SingleKey, MinArgs: 4},
	{Name: "HSETNX", Kind: SingleKey, MinArgs: 4},
	{Name: "HSCAN", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "HSTRLEN", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "HVALS", Kind: SingleKey, MinArgs: 2, ReadOnly: true},

	// Lists.
	{Name: "LINDEX", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "LINSERT", Kind: SingleKey, MinArgs: 5},
	{Name: "LLEN", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "LMOVE", Kind: SingleKey, MinArgs: 5},
	{Name: "LPOP", Kind: SingleKey, MinArgs: 2},
	{Name: "LPOS", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "LPUSH", Kind: SingleKey, MinArgs: 3},
	{Name: "LPUSHX", Kind: SingleKey, MinArgs: 3},
	{Name: "LRANGE", Kind: SingleKey, MinArgs: 4, ReadOnly: true},
	{Name: "LREM", Kind: SingleKey, MinArgs: 4},
	{Name: "LSET", Kind: SingleKey, MinArgs: 4},
	{Name: "LTRIM", Kind: SingleKey, MinArgs: 4},
	{Name: "RPOP", Kind: SingleKey, MinArgs: 2},
	{Name: "RPOPLPUSH", Kind: SingleKey, MinArgs: 3},
	{Name: "RPUSH", Kind: SingleKey, MinArgs: 3},
	{Name: "RPUSHX", Kind: SingleKey, MinArgs: 3},

	// Sets.
	{Name: "SADD", Kind: SingleKey, MinArgs: 3},
	{Name: "SCARD", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "SDIFF", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "SDIFFSTORE", Kind: SingleKey, MinArgs: 3},
	{Name: "SINTER", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "SINTERSTORE", Kind: SingleKey, MinArgs: 3},
	{Name: "SISMEMBER", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "SMISMEMBER", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "SMEMBERS", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "SMOVE", Kind: SingleKey, MinArgs: 4},
	{Name: "SPOP", Kind: SingleKey, MinArgs: 2},
	{Name: "SRANDMEMBER", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "SREM", Kind: SingleKey, MinArgs: 3},
	{Name: "SUNION", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "SUNIONSTORE", Kind: SingleKey, MinArgs: 3},
	{Name: "SSCAN", Kind: SingleKey, MinArgs: 3, ReadOnly: true},

	// Sorted sets.
	{Name: "ZADD", Kind: SingleKey, MinArgs: 4},
	{Name: "ZCARD", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "ZCOUNT", Kind: SingleKey, MinArgs: 4, ReadOnly: true},
	{Name: "ZDIFF", Kind: SingleKey, KeyIndex: 2, MinArgs: 3, ReadOnly: true},
	{Name: "ZDIFFSTORE", Kind: SingleKey, MinArgs: 4},
	{Name: "ZINCRBY", Kind: SingleKey, MinArgs: 4},
	{Name: "ZINTER", Kind: SingleKey, KeyIndex: 2, MinArgs: 3, ReadOnly: true},
	{Name: "ZINTERSTORE", Kind: SingleKey, MinArgs: 4},
	{Name: "ZLEXCOUNT", Kind: SingleKey, MinArgs: 4, ReadOnly: true},
	{Name: "ZMSCORE", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "ZPOPMIN", Kind: SingleKey, MinArgs: 2},
	{Name: "ZPOPMAX", Kind: SingleKey, MinArgs: 2},
	{Name: "ZRANDMEMBER", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "ZRANGE", Kind: SingleKey, MinArgs: 4, ReadOnly: true},
	{Name: "ZRANGEBYLEX", Kind: SingleKey, MinArgs: 4, ReadOnly: true},
	{Name: "ZRANGEBYSCORE", Kind: SingleKey, MinArgs: 4, ReadOnly: true},
	{Name: "ZRANGESTORE", Kind: SingleKey, MinArgs: 5},
	{Name: "ZRANK", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "ZREM", Kind: SingleKey, MinArgs: 3},
	{Name: "ZREMRANGEBYRANK", Kind: SingleKey, MinArgs: 4},
	{Name: "ZREMRANGEBYLEX", Kind: SingleKey, MinArgs: 4},
	{Name: "ZREMRANGEBYSCORE", Kind: SingleKey, MinArgs: 4},
	{Name: "ZREVRANGE", Kind: SingleKey, MinArgs: 4, ReadOnly: true},
	{Name: "ZREVRANGEBYLEX", Kind: SingleKey, MinArgs: 4, ReadOnly: true},
	{Name: "ZREVRANGEBYSCORE", Kind: SingleKey, MinArgs: 4, ReadOnly: true},
	{Name: "ZREVRANK", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "ZUNION", Kind: SingleKey, KeyIndex: 2, MinArgs: 3, ReadOnly: true},
	{Name: "ZSCAN", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "ZSCORE", Kind: SingleKey, MinArgs: 3, ReadOnly: true},
	{Name: "ZUNIONSTORE", Kind: SingleKey, MinArgs: 4},

	// HyperLogLog.
	{Name: "PFADD", Kind: SingleKey, MinArgs: 2},
	{Name: "PFCOUNT", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "PFMERGE", Kind: SingleKey, MinArgs: 2},

	// Geo.
	{Name: "GEOADD", Kind: SingleKey, MinArgs: 5},
	{Name: "GEODIST", Kind: SingleKey, MinArgs: 4, ReadOnly: true},
	{Name: "GEOHASH", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "GEOPOS", Kind: SingleKey, MinArgs: 2, ReadOnly: true},
	{Name: "GEORADIUS", Kind: SingleKey, MinArgs: 6},
	{Name: "GEORADIUSBYMEMBER", Kind: SingleKey, MinArgs: 5},
	{Name: "GEOSEARCH", Kind: SingleKey, MinArgs: 4, ReadOnly: true},
	{Name: "GEOSEARCHSTORE", Kind: SingleKey, MinArgs: 5},

	// Scripting.
	{Name: "EVAL", Kind: Eval, MinArgs: 3},
	{Name: "EVALSHA", Kind: Eval, MinArgs: 3},

	// Answered by the proxy.
	{Name: "PING", Kind: Local, MinArgs: 1},
	{Name: "QUIT", Kind: Local, MinArgs: 1},
	{Name: "AUTH", Kind: Local, MinArgs: 2},
	{Name: "ECHO", Kind: Local, MinArgs: 2},
	{Name: "SELECT", Kind: Local, MinArgs: 2},

	// Sent to any one server.
	{Name: "COMMAND", Kind: NoKey, MinArgs: 1},
	{Name: "LOLWUT", Kind: NoKey, MinArgs: 1},
})

func buildTable(cmds []Command) map[string]*Command {
	m := make(map[string]*Command, len(cmds))
	for i := range cmds {
		c := &cmds[i]
		if c.Kind == SingleKey && c.KeyIndex == 0 {
			c.KeyIndex = 1
		}
		m[c.Name] = c
	}
	return m
}

// maxNameLen is longer than any command name in the table.
const maxNameLen = 24

// Lookup returns the table entry for the command name (any case), or nil for a command
// the proxy does not support. It does not allocate.
func Lookup(name []byte) *Command {
	if len(name) == 0 || len(name) > maxNameLen {
		return nil
	}
	var up [maxNameLen]byte
	for i, c := range name {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	return commandTable[string(up[:len(name)])]
}

// Commands returns every command of the table, in no particular order.
func Commands() []Command {
	out := make([]Command, 0, len(commandTable))
	for _, c := range commandTable {
		out = append(out, *c)
	}
	return out
}
