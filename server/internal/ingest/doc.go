// Package ingest runs the server's side of a worker's stream: it checks the
// worker's Hello against its credential, assigns the cluster's jobs,
// stores finding batches durably before acking them and completes jobs.
//
// One goroutine receives and handles the worker's messages in order (which
// is the back-pressure: the next batch is read only once the previous one
// is stored), one dispatches jobs when the scheduler wakes it, and one
// sends; the session returns only when all three have stopped.
package ingest
