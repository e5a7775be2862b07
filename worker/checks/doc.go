// Package checks is fleetscan's check engine: the built-in checks, which
// read an Inventory of a cluster's typed Kubernetes objects and report
// Findings, and the runner of custom CEL checks on the same objects. The
// texts of the checks are in worker/catalog, each attached here to its
// code by ID; custom checks are compiled by worker/policy. Both stay free
// of the Kubernetes types, for the server and the CLI; this package is
// the worker's.
//
// A check never reports a secret value: a check about credentials names
// the key and where it is, never what it holds.
package checks
