package admin

// SHOW SOCKETS and SHOW ACTIVE_SOCKETS are SHOW CLIENTS and SHOW SERVERS in one
// result, states prefixed cl_ and sv_, with PgBouncer's buffer columns after
// application_name. pgpool's buffers belong to each connection's goroutines and are not
// sampled, so those columns read 0; ACTIVE_SOCKETS lists the sockets linked to a peer
// (a client with its server connection and the other way round), where PgBouncer lists
// those whose buffers hold data.

// socketDebugCols are the columns SHOW SOCKETS adds to the socket columns.
var socketDebugCols = []string{"recv_pos", "pkt_pos", "pkt_remain", "send_pos", "send_remain", "pkt_avail", "send_avail"}

func showSockets(s *Snapshot, activeOnly bool) *Result {
	r := socketCols()
	for _, name := range socketDebugCols {
		r.Columns = append(r.Columns, int4Col(name))
	}
	base := len(socketCols().Columns)
	const stateCol, linkCol = 3, 14
	add := func(from *Result, prefix string) {
		for _, row := range from.Rows {
			if activeOnly && len(row[linkCol]) == 0 {
				continue
			}
			out := make([][]byte, 0, len(r.Columns))
			out = append(out, row[:base]...)
			state := string(row[stateCol])
			if state == ServerLogin {
				state = "login"
			}
			out[stateCol] = []byte(prefix + state)
			for range socketDebugCols {
				out = append(out, []byte("0"))
			}
			r.Rows = append(r.Rows, out)
		}
	}
	add(showClients(s), "cl_")
	add(showServers(s), "sv_")
	return r
}
