// Package server assembles fleetscan-server: the bbolt store, the
// scheduler, the worker ingest and the gRPC API behind authentication.
// New opens everything; Serve runs until its context ends and then shuts
// down gracefully.
package server
