// Package harness runs a simulated fleet against a real fleetscan server:
// N workers, each a real worker.Worker speaking the worker protocol over
// gRPC on loopback with synthetic findings, a fleet scan, and an
// end-to-end check that every cluster's stored findings are exactly the
// ones its worker produced. It measures what the fleet scan costs.
package harness
