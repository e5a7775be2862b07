package harness

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
)

// cutter breaks some of the connections it dials after a random number
// of bytes have crossed them either way, in the middle of a frame as
// often as not: a network that drops connections at arbitrary points.
type cutter struct {
	// prob is the share of connections that are cut; maxBytes bounds the
	// budget of one.
	prob     float64
	maxBytes int64
	// left is how many more cuts may happen, so that a run ends.
	left atomic.Int64
	cuts atomic.Int64

	mu  sync.Mutex
	rnd *rand.Rand
}

func newCutter(seed uint64, prob float64, maxBytes, maxCuts int64) *cutter {
	c := &cutter{prob: prob, maxBytes: maxBytes, rnd: rand.New(rand.NewPCG(seed, 7))}
	c.left.Store(maxCuts)
	return c
}

func (c *cutter) dial(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil || c == nil {
		return conn, err
	}
	c.mu.Lock()
	cut := c.rnd.Float64() < c.prob
	budget := 1 + c.rnd.Int64N(c.maxBytes)
	c.mu.Unlock()
	if !cut {
		return conn, nil
	}
	cc := &cutConn{Conn: conn, c: c}
	cc.budget.Store(budget)
	return cc, nil
}

type cutConn struct {
	net.Conn
	c      *cutter
	budget atomic.Int64
	dead   atomic.Bool
}

var errCut = errors.New("connection cut by the load harness")

func (cc *cutConn) spend(n int) error {
	if cc.budget.Add(-int64(n)) >= 0 {
		return nil
	}
	if !cc.dead.CompareAndSwap(false, true) {
		return errCut
	}
	if cc.c.left.Add(-1) < 0 {
		cc.dead.Store(false)
		cc.budget.Store(1 << 62) // out of cuts: this one lives
		return nil
	}
	cc.c.cuts.Add(1)
	cc.Conn.Close()
	return errCut
}

func (cc *cutConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	if err == nil {
		err = cc.spend(n)
	}
	return n, err
}

func (cc *cutConn) Write(p []byte) (int, error) {
	if err := cc.spend(len(p)); err != nil {
		return 0, err
	}
	return cc.Conn.Write(p)
}
