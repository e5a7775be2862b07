// Package checks is fleetscan's check engine and its catalog of built-in
// checks. The worker runs it on an Inventory of a cluster's objects; the
// server imports it for the catalog texts and for Fingerprint, so that a
// finding is identified the same way on both sides of the stream.
//
// A check reads typed Kubernetes objects and reports Findings. It never
// reports a secret value: a check about credentials names the key and where
// it is, never what it holds.
package checks
