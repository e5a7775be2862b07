package checks_test

import (
	"context"
	"errors"
	"reflect"
	goruntime "runtime"
	"testing"

	"github.com/fleetscan/fleetscan/worker/checks"
	"github.com/fleetscan/fleetscan/worker/checks/checkstest"
	"github.com/fleetscan/fleetscan/worker/policy"
)

// TestRunInOrderOnAllCores: the per-workload checks run on every core,
// yet the findings come out in the order of a run on one core, each once:
// a report or a job's batches must not depend on scheduling.
func TestRunInOrderOnAllCores(t *testing.T) {
	inv := &checks.Inventory{}
	for _, o := range checkstest.Objects(3000) { // some 100 chunks of workloads
		inv.Add(o)
	}
	collect := func(procs int) []checks.Finding {
		defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(procs))
		var out []checks.Finding
		if _, err := checks.Run(context.Background(), inv, policy.Selection{}, func(f checks.Finding) error {
			out = append(out, f)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	one := collect(1)
	if len(one) < 1000 {
		t.Fatalf("only %d findings: the corpus no longer exercises the pool", len(one))
	}
	for _, procs := range []int{2, 4} {
		if got := collect(procs); !reflect.DeepEqual(got, one) {
			t.Errorf("GOMAXPROCS %d: %d findings, other than (or in another order than) the %d of one core", procs, len(got), len(one))
		}
	}
}

// TestRunStopsOnEmitError: an error from emit ends the run with that
// error, helpers included, however far they got.
func TestRunStopsOnEmitError(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(4))
	inv := &checks.Inventory{}
	for _, o := range checkstest.Objects(3000) {
		inv.Add(o)
	}
	stop := errors.New("stream closed")
	for _, after := range []int{0, 10, 2000} {
		n := 0
		_, err := checks.Run(context.Background(), inv, policy.Selection{}, func(checks.Finding) error {
			if n++; n > after {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Errorf("emit failing after %d findings: Run returned %v, want %v", after, err, stop)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := checks.Run(ctx, inv, policy.Selection{}, func(checks.Finding) error {
		if n++; n == 500 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled mid-run: Run returned %v, want context.Canceled", err)
	}
}
