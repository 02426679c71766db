package memcache

func (r *TextRequest) parseStorage(args [][]byte) error {
	args = r.trailingNoreply(args)
	want := 4
	if r.Cmd == CmdCas {
		want = 5
	}
	if len(args) != want {
		return protoErr(ErrProtocol, 0, "wrong number of arguments for "+r.Cmd.String())
	}
	if err := r.addKey(args[0]); err != nil {
		return err
	}
	flags, ok := parseUint(args[1], 1<<32-1)
	if !ok {
		return protoErr(ErrProtocol, 0, "bad flags")
	}
	exp, ok := parseInt(args[2])
	if !ok {
		return protoErr(ErrProtocol, 0, "bad exptime")
	}
	n, ok := parseUint(args[3], 1<<62)
	if !ok {
		return protoErr(ErrProtocol, 0, "bad data length")
	}
	if r.Cmd == CmdCas {
		cas, ok := parseUint(args[4], ^uint64(0))
		if !ok {
			return protoErr(ErrProtocol, 0, "bad cas unique")
		}
		r.CasUnique = cas
	}
	r.ClientFlags, r.Exptime, r.Bytes, r.HasData = uint32(flags), exp, int(n), true
	return nil
}
