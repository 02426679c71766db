package memcache

// Command is a text (ASCII or meta) command.
type Command uint8

// Text commands.
const (
	CmdUnknown        Command = iota // not a memcached command
	CmdGet                           // get <key>+
	CmdGets                          // gets <key>+
	CmdGat                           // gat <exptime> <key>+
	CmdGats                          // gats <exptime> <key>+
	CmdSet                           // set <key> <flags> <exptime> <bytes> [noreply]
	CmdAdd                           // add ...
	CmdReplace                       // replace ...
	CmdAppend                        // append ...
	CmdPrepend                       // prepend ...
	CmdCas                           // cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]
	CmdDelete                        // delete <key> [0] [noreply]
	CmdIncr                          // incr <key> <value> [noreply]
	CmdDecr                          // decr <key> <value> [noreply]
	CmdTouch                         // touch <key> <exptime> [noreply]
	CmdVersion                       // version
	CmdQuit                          // quit
	CmdVerbosity                     // verbosity <n> [noreply]
	CmdFlushAll                      // flush_all [delay] [noreply]
	CmdStats                         // stats [args]
	CmdMetaGet                       // mg <key> <flags>*
	CmdMetaSet                       // ms <key> <datalen> <flags>*
	CmdMetaDelete                    // md <key> <flags>*
	CmdMetaArithmetic                // ma <key> <flags>*
	CmdMetaNoop                      // mn
	CmdMetaDebug                     // me <key> [b]
)

var commandNames = [...]string{
	CmdUnknown: "", CmdGet: "get", CmdGets: "gets", CmdGat: "gat", CmdGats: "gats",
	CmdSet: "set", CmdAdd: "add", CmdReplace: "replace", CmdAppend: "append",
	CmdPrepend: "prepend", CmdCas: "cas", CmdDelete: "delete", CmdIncr: "incr",
	CmdDecr: "decr", CmdTouch: "touch", CmdVersion: "version", CmdQuit: "quit",
	CmdVerbosity: "verbosity", CmdFlushAll: "flush_all", CmdStats: "stats",
	CmdMetaGet: "mg", CmdMetaSet: "ms", CmdMetaDelete: "md", CmdMetaArithmetic: "ma",
	CmdMetaNoop: "mn", CmdMetaDebug: "me",
}

// String returns the command's name as sent on the wire.
func (c Command) String() string {
	if int(c) < len(commandNames) {
		return commandNames[c]
	}
	return ""
}

func lookupCommand(name []byte) Command {
	for i := CmdGet; i <= CmdMetaDebug; i++ {
		if string(name) == commandNames[i] {
			return i
		}
	}
	return CmdUnknown
}

// IsRetrieval reports get, gets, gat and gats: the multi-key commands answered by
// VALUE blocks and END.
func (c Command) IsRetrieval() bool { return c >= CmdGet && c <= CmdGats }

// IsStorage reports the classic commands followed by a data block.
func (c Command) IsStorage() bool { return c >= CmdSet && c <= CmdCas }

// IsMeta reports the meta commands.
func (c Command) IsMeta() bool { return c >= CmdMetaGet }
