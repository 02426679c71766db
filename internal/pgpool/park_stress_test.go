package pgpool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/poolsuite/poolsuite/internal/netpark"
)

// TestParkStress: hundreds of clients alternate between idle (parked) and busy in
// random order, some closing while parked, with idle sweeps meanwhile, by turns hot
// (parked by the sweeps) or parking as soon as they are idle; each round waits until
// every idle client is parked again. Every query is answered, a client closed while
// parked is gone, and Shutdown with every remaining client parked closes them at
// once.
func TestParkStress(t *testing.T) {
	t.Parallel()
	n := 400
	if testing.Short() {
		n = 100
	}
	f := newFixture(t)
	cfg := f.config()
	cfg.AuthType = "trust"
	cfg.MaxClientConn = 2 * n
	cfg.ClientIdleTimeout = 10 * time.Minute // a timer per parked client
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := New(cfg, testLogger(t))
	needParker(t, pl)
	served := make(chan error, 1)
	go func() { served <- pl.Serve(ln) }()
	shut := false
	t.Cleanup(func() {
		if !shut {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			pl.Shutdown(ctx)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conns := connectIdle(ctx, t, f.pgconnString(ln.Addr().String()), n)
	clients := make([]*pgconn.PgConn, n)
	copy(clients, conns)
	allParked := func(want int) {
		t.Helper()
		waitFor(t, fmt.Sprint(want, " clients parked"), 20*time.Second, func() bool {
			if pl.parker.Parked() == want {
				return true
			}
			pl.sweepIdle()
			return false
		})
	}
	allParked(n)
	rnd := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
	live := n
	for round := 0; round < 5; round++ {
		// Odd rounds: never hot, a client parks as soon as it is idle; even ones:
		// a client's later queries are hot, and the sweeps park it.
		if round%2 == 1 {
			pl.hotGap.Store(0)
		} else {
			pl.hotGap.Store(int64(netpark.HotGap))
		}
		var busy []int
		for i, c := range clients {
			if c != nil && rnd.IntN(2) == 0 {
				busy = append(busy, i)
			}
		}
		rnd.Shuffle(len(busy), func(i, j int) { busy[i], busy[j] = busy[j], busy[i] })
		errs := make([]error, len(busy))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for k, i := range busy {
			c, queries := clients[i], 1+rnd.IntN(3)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for q := 0; q < queries && errs[k] == nil; q++ {
					want := fmt.Sprint(i*10 + q)
					res, err := c.Exec(ctx, "select "+want).ReadAll()
					switch {
					case err != nil:
						errs[k] = err
					case len(res) != 1 || len(res[0].Rows) != 1 || string(res[0].Rows[0][0]) != want:
						errs[k] = fmt.Errorf("client %d: select %s gave %+v", i, want, res)
					}
				}
			}()
		}
		close(start)
		pl.sweepIdle()
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		allParked(live)
		for i, c := range clients {
			if c != nil && rnd.IntN(20) == 0 {
				c.Close(ctx)
				clients[i] = nil
				live--
			}
		}
		waitFor(t, "closed clients gone", 10*time.Second, func() bool { return pl.nclients.Load() == int64(live) })
		allParked(live)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	shut = true
	if err := pl.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown with %d parked clients: %v", live, err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if n := pl.nclients.Load(); n != 0 {
		t.Fatalf("%d clients left after shutdown", n)
	}
}
