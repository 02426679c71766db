package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// poolbench's own load generators: connections that each send one request at a time
// for a bounded time, recording every request's latency.

// maxLatencySamples bounds the latencies one load run keeps (the later ones are counted
// but not kept).
const maxLatencySamples = 4 << 20

// errReply is returned for an error reply from the server or proxy (Redis "-ERR ...",
// memcached "SERVER_ERROR ..."): the connection stays usable.
var errReply = errors.New("poolbench: error reply")

// errProtocol is returned for a reply poolbench cannot read.
var errProtocol = errors.New("poolbench: unexpected reply")

// maxBulk bounds the values a reply may carry.
const maxBulk = 1 << 20

// readRESP reads one Redis reply (nested arrays included) from r. An error reply
// returns errReply after the whole reply was read.
func readRESP(r *bufio.Reader) error {
	return readRESPDepth(r, 0)
}

func readRESPDepth(r *bufio.Reader, depth int) error {
	if depth > 8 {
		return errProtocol
	}
	line, err := readLine(r)
	if err != nil {
		return err
	}
	if len(line) == 0 {
		return errProtocol
	}
	switch line[0] {
	case '+', ':':
		return nil
	case '-':
		return errReply
	case '$':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil || n < -1 || n > maxBulk {
			return errProtocol
		}
		if n == -1 {
			return nil
		}
		return discardCRLF(r, n)
	case '*':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil || n < -1 || n > 1024 {
			return errProtocol
		}
		var replyErr error
		for range n {
			if err := readRESPDepth(r, depth+1); errors.Is(err, errReply) {
				replyErr = err
			} else if err != nil {
				return err
			}
		}
		return replyErr
	}
	return errProtocol
}

// readLine reads a line ending in CRLF, without it; lines are bounded by r's buffer.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errProtocol
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errProtocol
	}
	return line[:len(line)-2], nil
}

// discardCRLF skips n bytes of data and the CRLF after them.
func discardCRLF(r *bufio.Reader, n int) error {
	if _, err := r.Discard(n); err != nil {
		return err
	}
	end, err := readLine(r)
	if err != nil {
		return err
	}
	if len(end) != 0 {
		return errProtocol
	}
	return nil
}

// readMemcacheGet reads the reply to a text-protocol get: VALUE lines with their data,
// then END. Error replies (ERROR, CLIENT_ERROR, SERVER_ERROR) return errReply.
func readMemcacheGet(r *bufio.Reader) error {
	for range 64 {
		line, err := readLine(r)
		if err != nil {
			return err
		}
		s := string(line)
		if s == "END" {
			return nil
		}
		var key string
		var flags uint32
		var n int
		if _, err := fmt.Sscanf(s, "VALUE %s %d %d", &key, &flags, &n); err == nil {
			if n < 0 || n > maxBulk {
				return errProtocol
			}
			if err := discardCRLF(r, n); err != nil {
				return err
			}
			continue
		}
		return memcacheLineErr(s)
	}
	return errProtocol
}

// readMemcacheStored reads the reply to a text-protocol set.
func readMemcacheStored(r *bufio.Reader) error {
	line, err := readLine(r)
	if err != nil {
		return err
	}
	if string(line) == "STORED" {
		return nil
	}
	return memcacheLineErr(string(line))
}

func memcacheLineErr(s string) error {
	for _, p := range []string{"ERROR", "CLIENT_ERROR", "SERVER_ERROR", "NOT_STORED"} {
		if len(s) >= len(p) && s[:len(p)] == p {
			return errReply
		}
	}
	return errProtocol
}

// loadConn is one connection of a load generator.
type loadConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

// loadOp sends one request on c and reads its reply; class is the latency class of
// the request (0 or 1, e.g. healthy keys and keys on a frozen shard).
type loadOp func(c *loadConn, rng *rand.Rand) (class int, err error)

// loadRun is one run of a load generator.
type loadRun struct {
	addr       string
	conns      int
	duration   time.Duration
	reqTimeout time.Duration // a request not answered by then is an error; the connection is opened again
	op         loadOp
	during     func(ctx context.Context) // runs beside the load, if set; the run waits for it
}

// loadResult is what a load run measured.
type loadResult struct {
	lat      [2][]float64 // latencies in milliseconds by class, every request (errors too)
	requests int64
	errors   int64
	seconds  float64
}

// recorder collects the latencies of the connections, bounded by maxLatencySamples.
type recorder struct {
	mu       sync.Mutex
	res      loadResult
	kept     int
	failures []error
}

func (rc *recorder) add(lat [2][]float64, requests, errs int64, failure error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i := range lat {
		room := max(maxLatencySamples-rc.kept, 0)
		if len(lat[i]) > room {
			lat[i] = lat[i][:room]
		}
		rc.kept += len(lat[i])
		rc.res.lat[i] = append(rc.res.lat[i], lat[i]...)
	}
	rc.res.requests += requests
	rc.res.errors += errs
	if failure != nil && len(rc.failures) < 4 {
		rc.failures = append(rc.failures, failure)
	}
}

// runLoad runs l: l.conns connections each sending one request at a time until
// l.duration has passed. A connection that cannot be opened ends the run with an error.
func runLoad(ctx context.Context, l loadRun) (loadResult, error) {
	dial := func() (*loadConn, error) {
		c, err := net.DialTimeout("tcp", l.addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		return &loadConn{c: c, r: bufio.NewReaderSize(c, 16<<10), w: bufio.NewWriterSize(c, 4<<10)}, nil
	}
	conns := make([]*loadConn, l.conns)
	for i := range conns {
		c, err := dial()
		if err != nil {
			for _, c := range conns[:i] {
				c.c.Close()
			}
			return loadResult{}, err
		}
		conns[i] = c
	}
	rc := &recorder{}
	cctx, cancel := context.WithTimeout(ctx, l.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	if l.during != nil {
		wg.Add(1)
		go func() { defer wg.Done(); l.during(cctx) }()
	}
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			var lat [2][]float64
			var n, errs int64
			var failure error
			for cctx.Err() == nil {
				if c == nil {
					if c, failure = dial(); failure != nil {
						errs++
						c = nil
						continue
					}
				}
				t0 := time.Now()
				_ = c.c.SetDeadline(t0.Add(l.reqTimeout))
				class, err := l.op(c, rng)
				ms := float64(time.Since(t0).Microseconds()) / 1000
				n++
				if len(lat[class]) < maxLatencySamples/l.conns {
					lat[class] = append(lat[class], ms)
				}
				if err != nil {
					errs++
					if !errors.Is(err, errReply) {
						failure = err
						c.c.Close()
						c = nil
					}
				}
			}
			if c != nil {
				c.c.Close()
			}
			rc.add(lat, n, errs, failure)
		}()
	}
	wg.Wait()
	rc.res.seconds = time.Since(start).Seconds()
	for i := range rc.res.lat {
		slices.Sort(rc.res.lat[i])
	}
	return rc.res, nil
}

// loadSample turns r into a round's figures: latencies from class 0.
func loadSample(r loadResult) Sample {
	s := Sample{Requests: r.requests, Errors: r.errors, Seconds: r.seconds}
	if r.seconds > 0 {
		s.Throughput = float64(r.requests-r.errors) / r.seconds
	}
	fillLatencies(&s, r.lat[0])
	return s
}

// redisGet returns an op sending GET of a random key of keys; class 1 for the keys in
// frozen.
func redisGet(keys []string, frozen map[string]bool) loadOp {
	return func(c *loadConn, rng *rand.Rand) (int, error) {
		k := keys[rng.IntN(len(keys))]
		class := 0
		if frozen[k] {
			class = 1
		}
		fmt.Fprintf(c.w, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(k), k)
		if err := c.w.Flush(); err != nil {
			return class, err
		}
		return class, readRESP(c.r)
	}
}

// mcValue is the value the memcached load generator sets.
var mcValue = make([]byte, 32)

// memcacheOp returns an op sending test ("get" or "set") of a random key of
// keyspace keys.
func memcacheOp(test string, keyspace int) loadOp {
	return func(c *loadConn, rng *rand.Rand) (int, error) {
		k := "mc:" + strconv.Itoa(rng.IntN(keyspace))
		if test == "set" {
			fmt.Fprintf(c.w, "set %s 0 0 %d\r\n", k, len(mcValue))
			c.w.Write(mcValue)
			c.w.WriteString("\r\n")
			if err := c.w.Flush(); err != nil {
				return 0, err
			}
			return 0, readMemcacheStored(c.r)
		}
		fmt.Fprintf(c.w, "get %s\r\n", k)
		if err := c.w.Flush(); err != nil {
			return 0, err
		}
		return 0, readMemcacheGet(c.r)
	}
}

// roundTripOn sends req on c and reads one reply with read.
func roundTripOn(c *loadConn, req string, read func(*bufio.Reader) error) error {
	if _, err := io.WriteString(c.w, req); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	return read(c.r)
}
