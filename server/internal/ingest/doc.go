// Package ingest runs the server's side of a worker's stream: it checks the
// worker's Hello against its credential, assigns the cluster's jobs one at
// a time (within the scheduler's fleet-wide cap), stores finding batches
// durably before acking them and completes jobs.
//
// Three goroutines serve a stream. One receives and passes each message
// on an unbuffered channel; the session loop handles them in order and is
// the only one that touches the store, so the next batch is read only once
// the previous one is stored (that is the back-pressure); it also
// dispatches jobs when the scheduler wakes it. One sends. The handler
// returns once the loop and the sender have stopped; a receiver blocked in
// Recv can only return after that, and touches nothing but its channel.
package ingest
