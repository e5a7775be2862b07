// Package session runs the worker's side of one WorkerService.Connect
// stream: Hello, then jobs as the server assigns them, their findings sent
// in numbered batches with a bounded number awaiting the server's ack, and
// JobDone. One goroutine sends on the stream and one receives.
package session
