// Package replicaset dials a fleetscan server given as the addresses of
// several replicas of it: one gRPC connection that uses one replica at a
// time, picked at random, and moves to another when it fails.
package replicaset

import (
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// Addrs splits a comma-separated list of addresses, dropping empty ones.
func Addrs(server string) []string {
	var out []string
	for a := range strings.SplitSeq(server, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// serviceConfig spreads clients over the addresses a target resolves to
// (a list, or a name with several addresses) rather than all taking the
// first: pick_first, each client with its own shuffled order.
const serviceConfig = `{"loadBalancingConfig": [{"pick_first": {"shuffleAddressList": true}}]}`

// Dial returns the target to give grpc.NewClient for server, a host:port
// or a comma-separated list of them, and the options it needs.
func Dial(server string) (string, []grpc.DialOption) {
	opts := []grpc.DialOption{grpc.WithDefaultServiceConfig(serviceConfig)}
	addrs := Addrs(server)
	if len(addrs) < 2 {
		return server, opts
	}
	r := manual.NewBuilderWithScheme("fleetscan-replicas")
	var state resolver.State
	for _, a := range addrs {
		host, _, _ := net.SplitHostPort(a)
		// Each replica's certificate is checked against its own name.
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: host})
	}
	r.InitialState(state)
	return r.Scheme() + ":///replicas", append(opts, grpc.WithResolvers(r))
}
