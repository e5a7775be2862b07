// Package catalog is fleetscan's catalog of built-in checks as data: what
// each check is called, what it is about, how severe it is, whose it is and
// how to fix it; the kinds fleetscan reads; and how a finding is
// identified (Fingerprint, the same on both sides of the worker's stream)
// and bounded (the caps). It imports no Kubernetes API types, so that the
// server, the CLI and the report writers, which only name, count and store
// findings, do not link k8s.io/api, client-go and the engine that reads
// them (TestNoKubernetesTypes keeps it so).
//
// The checks themselves are closures over typed Kubernetes objects in
// worker/checks, which attaches each to its entry here by ID and fails at
// start-up when one has no entry or an entry no check. The entries are kept
// in files named as the checks' files (pod.go here for checks/pod.go, and
// so on), in the same order and under the same variable names, so that a
// check's text and its code are found side by side.
package catalog
