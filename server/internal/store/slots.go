package store

import (
	"context"
	"slices"
	"sync"
)

// Priorities of the work that takes a CPU slot (cpuSlots).
const (
	// prioCommit: making finished jobs visible, and the transaction of a
	// group of writes (DB.batch) that does. It goes first, so that a
	// JobDone waits for at most the slice of work that holds the slot, not
	// for every plan queued before it.
	prioCommit = iota
	// prioPlan: decoding, fingerprinting and reading a job's findings,
	// batch by batch as they are staged or all at once at JobDone.
	prioPlan
	numPrios
)

// cpuSlots bounds the goroutines doing CompleteJob's CPU work at once. A
// waiter is served before every waiter of a lower priority, and within
// its own in the order of its ticket: commits in the order they come,
// plans by job, the oldest job's first. Served in the order they came,
// the batches of a large job each waited behind a batch of every other
// job streaming, and it finished last of all.
type cpuSlots struct {
	mu      sync.Mutex
	free    int
	tickets uint64
	waiting [numPrios][]slotWaiter
}

type slotWaiter struct {
	granted chan struct{}
	ticket  uint64
}

func newCPUSlots(n int) *cpuSlots { return &cpuSlots{free: n} }

// ticket returns the next ticket: later than every ticket before.
func (c *cpuSlots) ticket() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tickets++
	return c.tickets
}

// enqueueLocked queues a waiter after every waiter of its priority with a
// ticket not later than its own.
func (c *cpuSlots) enqueueLocked(prio int, w slotWaiter) {
	q := c.waiting[prio]
	i, _ := slices.BinarySearchFunc(q, w.ticket+1, func(x slotWaiter, t uint64) int {
		switch {
		case x.ticket < t:
			return -1
		case x.ticket > t:
			return 1
		}
		return 0
	})
	c.waiting[prio] = slices.Insert(q, i, w)
}

func (c *cpuSlots) removeLocked(prio int, granted chan struct{}) bool {
	i := slices.IndexFunc(c.waiting[prio], func(w slotWaiter) bool { return w.granted == granted })
	if i < 0 {
		return false
	}
	c.waiting[prio] = slices.Delete(c.waiting[prio], i, i+1)
	return true
}

// acquire waits for a slot, or for ctx to end. A commit's ticket is taken
// now; a plan's is given (0: now). When promote is closed meanwhile, the
// waiter waits on as a commit.
func (c *cpuSlots) acquire(ctx context.Context, prio int, ticket uint64, promote <-chan struct{}) error {
	c.mu.Lock()
	if c.free > 0 {
		c.free--
		c.mu.Unlock()
		return nil
	}
	if ticket == 0 || prio == prioCommit {
		c.tickets++
		ticket = c.tickets
	}
	w := slotWaiter{granted: make(chan struct{}), ticket: ticket}
	c.enqueueLocked(prio, w)
	c.mu.Unlock()
	for done := false; !done; {
		select {
		case <-w.granted:
			return nil
		case <-promote:
			promote = nil
			c.mu.Lock()
			if prio != prioCommit && c.removeLocked(prio, w.granted) {
				prio = prioCommit
				c.tickets++
				w.ticket = c.tickets
				c.enqueueLocked(prio, w)
			}
			c.mu.Unlock()
		case <-ctx.Done():
			done = true
		}
	}
	c.mu.Lock()
	if c.removeLocked(prio, w.granted) {
		c.mu.Unlock()
		return ctx.Err()
	}
	c.mu.Unlock()
	// Granted as ctx ended: the slot goes to the next.
	c.release()
	return ctx.Err()
}

// release hands the slot to the first waiter of the highest priority, or
// frees it.
func (c *cpuSlots) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, q := range c.waiting {
		if len(q) > 0 {
			close(q[0].granted)
			c.waiting[p] = slices.Delete(q, 0, 1)
			return
		}
	}
	c.free++
}

// queued is how many wait at prio.
func (c *cpuSlots) queued(prio int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiting[prio])
}
