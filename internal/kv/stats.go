package kv

import (
	"net"
	"os"
	"sort"
	"strconv"
	"sync/atomic"
	"time"
)

// serverStats are one server's counters, named as in twemproxy's stats.
type serverStats struct {
	serverEOF     atomic.Int64 // connections closed by the server or broken
	serverErr     atomic.Int64 // connections that failed to open
	timedOut      atomic.Int64 // connections closed by a timeout (server_timedout)
	connections   atomic.Int64 // open connections
	ejectedAt     atomic.Int64 // unix microseconds of the last ejection
	requests      atomic.Int64
	requestBytes  atomic.Int64
	responses     atomic.Int64
	responseBytes atomic.Int64
	inQueue       atomic.Int64
	inQueueBytes  atomic.Int64
	outQueue      atomic.Int64
	outQueueBytes atomic.Int64

	// Beyond twemproxy, for Prometheus.
	timeouts atomic.Int64 // requests failed by a timeout
	errors   atomic.Int64 // requests failed by a broken connection or a timeout
	failures atomic.Int64 // failures reported for ejection
	ejects   atomic.Int64 // ejections
}

// poolStats are one pool's counters, named as in twemproxy's stats.
type poolStats struct {
	clientEOF         atomic.Int64
	clientErr         atomic.Int64
	clientConnections atomic.Int64
	serverEjects      atomic.Int64
	forwardError      atomic.Int64
	fragments         atomic.Int64
}

// Version is reported in the stats document.
var Version = "0.5.0-kvproxy"

// appendStatsJSON appends twemproxy's stats document: service, source, version,
// uptime, timestamp, total_connections, curr_connections, then one object per pool with
// its counters and one object per server keyed by its name.
func (p *Proxy) appendStatsJSON(dst []byte) []byte {
	host, _ := os.Hostname()
	now := time.Now()
	dst = append(dst, `{"service":"nutcracker","source":`...)
	dst = strconv.AppendQuote(dst, host)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendQuote(dst, Version)
	dst = appendField(dst, "uptime", int64(now.Sub(p.started)/time.Second))
	dst = appendField(dst, "timestamp", now.Unix())
	dst = appendField(dst, "total_connections", p.totalConns.Load())
	dst = appendField(dst, "curr_connections", p.currConns.Load())
	p.mu.Lock()
	pools := make([]*pool, 0, len(p.pools))
	for _, pl := range p.pools {
		pools = append(pools, pl)
	}
	p.mu.Unlock()
	sort.Slice(pools, func(i, j int) bool { return pools[i].name < pools[j].name })
	for _, pl := range pools {
		dst = append(dst, ',')
		dst = strconv.AppendQuote(dst, pl.name)
		dst = append(dst, `:{"client_eof":`...)
		dst = strconv.AppendInt(dst, pl.stats.clientEOF.Load(), 10)
		dst = appendField(dst, "client_err", pl.stats.clientErr.Load())
		dst = appendField(dst, "client_connections", pl.stats.clientConnections.Load())
		dst = appendField(dst, "server_ejects", pl.stats.serverEjects.Load())
		dst = appendField(dst, "forward_error", pl.stats.forwardError.Load())
		dst = appendField(dst, "fragments", pl.stats.fragments.Load())
		for _, s := range pl.state.Load().servers() {
			st := &s.stats
			dst = append(dst, ',')
			dst = strconv.AppendQuote(dst, s.name)
			dst = append(dst, `:{"server_eof":`...)
			dst = strconv.AppendInt(dst, st.serverEOF.Load(), 10)
			dst = appendField(dst, "server_err", st.serverErr.Load())
			dst = appendField(dst, "server_timedout", st.timedOut.Load())
			dst = appendField(dst, "server_connections", st.connections.Load())
			dst = appendField(dst, "server_ejected_at", st.ejectedAt.Load())
			dst = appendField(dst, "requests", st.requests.Load())
			dst = appendField(dst, "request_bytes", st.requestBytes.Load())
			dst = appendField(dst, "responses", st.responses.Load())
			dst = appendField(dst, "response_bytes", st.responseBytes.Load())
			dst = appendField(dst, "in_queue", st.inQueue.Load())
			dst = appendField(dst, "in_queue_bytes", st.inQueueBytes.Load())
			dst = appendField(dst, "out_queue", st.outQueue.Load())
			dst = appendField(dst, "out_queue_bytes", st.outQueueBytes.Load())
			dst = append(dst, '}')
		}
		dst = append(dst, '}')
	}
	return append(dst, '}', '\n')
}

func appendField(dst []byte, name string, v int64) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return strconv.AppendInt(dst, v, 10)
}

// serveStats answers every connection to ln with the stats document, then closes it,
// as twemproxy's stats port does. It returns when ln is closed.
func (p *Proxy) serveStats(ln net.Listener) {
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-p.closed:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			if isClosed(err) {
				return
			}
			p.log.Warn("stats accept failed", "err", err)
			if !p.pause(backoff) {
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(p.appendStatsJSON(nil))
		_ = c.Close()
	}
}
