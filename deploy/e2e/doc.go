// Package e2e holds fleetscan's end-to-end tests against real Kubernetes
// API servers: two control planes (etcd and kube-apiserver, built from
// their Go modules by build-tools.sh) started on loopback as two clusters
// of a fleet, scanned by the real fleetscan-server and fleetscan-worker
// binaries. The tests carry the build tag e2e and run with `make e2e`; see
// README.md in this directory.
package e2e
