// Package worker is fleetscan-worker: it runs inside a cluster, dials out
// to the server, and scans the cluster whenever the server assigns a job.
// Run keeps one stream open, reconnecting with backoff when it breaks.
package worker
