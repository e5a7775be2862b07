package store

import (
	"context"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// maxGroup bounds the writes committed in one transaction.
const maxGroup = 1000

// groupCommit commits the writes of many callers together (DB.batch): the
// writes queued while a transaction commits go, all of them, into the
// next one. bbolt's own Batch closed a transaction 2 ms after its first
// write, however busy the disk: under a fleet scan its small transactions
// queued for the single writer, each waiting for the fsyncs of all before
// it, and a job's last batch and its completion waited seconds.
type groupCommit struct {
	mu    sync.Mutex
	queue []*groupWrite
	// leading: a caller is committing; the next write queued takes over
	// when it is done.
	leading bool
}

type groupWrite struct {
	fn func(*txn) error
	// done receives the write's result, or, before it, lead: the caller
	// is to commit what is queued.
	done chan groupResult
}

type groupResult struct {
	err  error
	lead bool
}

// batch runs fn in a write transaction shared with concurrent callers: fn
// may run more than once, when another write of its transaction fails.
// The caller whose write finds no transaction running commits the queue,
// its own write first, then hands over to the first write queued
// meanwhile, so that no caller commits for others for long.
func (s *DB) batch(fn func(*txn) error) error {
	w := &groupWrite{fn: fn, done: make(chan groupResult, 1)}
	g := &s.group
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead {
		if r := <-w.done; !r.lead {
			return r.err
		}
	}
	s.commitQueued()
	return (<-w.done).err
}

// commitQueued commits the writes queued, up to maxGroup, and hands the
// lead to the next.
func (s *DB) commitQueued() {
	g := &s.group
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	group := slices.Clone(g.queue[:n])
	g.queue = slices.Delete(g.queue, 0, n)
	g.mu.Unlock()

	s.commitGroup(group)

	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 {
		g.leading = false
		return
	}
	g.queue[0].done <- groupResult{lead: true}
}

// commitGroup runs the writes in one transaction and tells each its
// result. A write that fails rolls back the others: it runs alone, so that
// its error is its own, and the others again without it.
func (s *DB) commitGroup(group []*groupWrite) {
	for len(group) > 0 {
		failed := -1
		err := s.committingGroup(func(tx *bolt.Tx) error {
			for i, w := range group {
				if err := s.writeTxn(tx).run(w.fn); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			err = s.wrote(s.reported(err))
			for _, w := range group {
				w.done <- groupResult{err: err}
			}
			return
		}
		w := group[failed]
		w.done <- groupResult{err: s.update(w.fn)}
		group = slices.Delete(group, failed, failed+1)
	}
}

// committingGroup runs a group's transaction, its commit included, in a
// CPU slot, as a commit: its CPU (the completions' writes, building the
// pages of the records) is the heavy half of ingest, which leaves a core
// to the API (see DB.completing). Outside a slot, the commits of the
// groups took enough of the second core to double tenant ListFindings p99
// in a rescan (43 → 83–85 ms under make load). Waiting for the disk in
// the slot costs little now that a group waits once for all its writes.
func (s *DB) committingGroup(fn func(*bolt.Tx) error) error {
	if err := s.cpu.acquire(context.Background(), prioCommit, 0, nil); err != nil {
		return err
	}
	defer s.cpu.release()
	return s.db.Update(fn)
}
