package replicaset

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func TestAddrs(t *testing.T) {
	for in, want := range map[string][]string{
		"a:1":           {"a:1"},
		"a:1,b:2":       {"a:1", "b:2"},
		" a:1 , ,b:2, ": {"a:1", "b:2"},
		"":              nil,
		"dns:///x:8443": {"dns:///x:8443"},
	} {
		if got := Addrs(in); !slices.Equal(got, want) {
			t.Errorf("Addrs(%q) = %q, want %q", in, got, want)
		}
	}
}

// replica serves the health service on a loopback port.
func replica(t *testing.T) (addr string, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String(), s.Stop
}

// TestMovesToAnotherReplica: with two replicas, a connection uses one,
// and when it goes away the next call goes to the other.
func TestMovesToAnotherReplica(t *testing.T) {
	a, stopA := replica(t)
	b, stopB := replica(t)
	target, opts := Dial(a + "," + b)
	conn, err := grpc.NewClient(target, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	check := func() string {
		t.Helper()
		for {
			var p peer.Peer
			_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true), grpc.Peer(&p))
			// A call sent on a connection the client has not yet seen
			// close fails Unavailable; the next one goes elsewhere, as a
			// worker's next attempt does.
			if status.Code(err) == codes.Unavailable && ctx.Err() == nil {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			return p.Addr.String()
		}
	}
	first := check()
	if first != a && first != b {
		t.Fatalf("call went to %s, not a replica (%s, %s)", first, a, b)
	}
	stops := map[string]func(){a: stopA, b: stopB}
	stops[first]()
	second := check()
	if second == first {
		t.Fatalf("call went to the stopped replica %s", first)
	}
}
