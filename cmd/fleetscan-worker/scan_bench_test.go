package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/fleetscan/fleetscan/worker/checks/checkstest"
)

// corpora caches the generated snapshots of a benchmark run by size:
// writing 100,000 objects as YAML takes longer than scanning them.
var corpora = struct {
	sync.Mutex
	root string
	dirs map[int]string
}{dirs: map[int]string{}}

func corpus(b *testing.B, n int) string {
	b.Helper()
	corpora.Lock()
	defer corpora.Unlock()
	if dir, ok := corpora.dirs[n]; ok {
		return dir
	}
	if corpora.root == "" {
		root, err := os.MkdirTemp("", "fleetscan-bench-")
		if err != nil {
			b.Fatal(err)
		}
		corpora.root = root
	}
	dir := filepath.Join(corpora.root, fmt.Sprint(n))
	if err := checkstest.WriteSnapshot(dir, checkstest.Objects(n), 500); err != nil {
		b.Fatal(err)
	}
	corpora.dirs[n] = dir
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if corpora.root != "" {
		os.RemoveAll(corpora.root)
	}
	os.Exit(code)
}

// scanCost is what one standalone scan of a snapshot cost.
type scanCost struct {
	cpu       time.Duration // user and system
	allocated uint64        // bytes
	peakHeap  uint64        // bytes of live and unswept objects, sampled
}

// scanOnce runs fleetscan-worker scan --snapshot dir -o json, writing the
// report nowhere, and measures it.
func scanOnce(b *testing.B, dir string) scanCost {
	b.Helper()
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(samples)
	allocBefore := samples[1].Value.Uint64()
	var peak uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	before := rusage(b)
	err := runScan(context.Background(), []string{"--snapshot", dir, "-o", "json"}, io.Discard, io.Discard)
	after := rusage(b)
	close(stop)
	<-done
	if err != nil && !errors.Is(err, errThreshold) {
		b.Fatal(err)
	}
	metrics.Read(samples)
	return scanCost{cpu: after - before, allocated: samples[1].Value.Uint64() - allocBefore, peakHeap: peak}
}

func rusage(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScan is the standalone scan, end to end (YAML files to the JSON
// report), of generated clusters of 1,000, 10,000 and 100,000 objects
// (checkstest.Objects): CPU time and bytes allocated per object, and the
// peak of the heap's objects, as printed figures.
func BenchmarkScan(b *testing.B) {
	gc := debug.SetGCPercent(100)
	defer debug.SetGCPercent(gc) // runScan paces the collector as the worker does
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			dir := corpus(b, n)
			var total scanCost
			b.ResetTimer()
			for range b.N {
				c := scanOnce(b, dir)
				total.cpu += c.cpu
				total.allocated += c.allocated
				total.peakHeap = max(total.peakHeap, c.peakHeap)
			}
			b.StopTimer()
			objects := float64(n) * float64(b.N)
			b.ReportMetric(float64(total.cpu.Microseconds())/objects, "cpu-µs/object")
			b.ReportMetric(float64(total.allocated)/objects, "alloc-B/object")
			b.ReportMetric(float64(total.peakHeap)/(1<<20), "peak-heap-MiB")
		})
	}
}

// BenchmarkScanScaling prints the ratio of CPU time per object of a scan
// of 100,000 objects to that of 10,000, from the same run: 1 is linear,
// more is worse than linear. Each round scans 10,000 objects ten times
// and 100,000 once, so that both sides do the same work for about as
// long and the machine's other work weighs on both alike, and each side
// keeps its best round of three: other work only ever adds CPU time. (The
// fastest of five single scans of 10,000, a quarter of a second each,
// against the fastest of three of 100,000 favoured the short scans, which
// catch a quiet moment more often.)
func BenchmarkScanScaling(b *testing.B) {
	gc := debug.SetGCPercent(100)
	defer debug.SetGCPercent(gc)
	small, large := corpus(b, 10_000), corpus(b, 100_000)
	var ratio float64
	b.ResetTimer()
	for range b.N {
		var cpuSmall, cpuLarge time.Duration
		for round := range 3 {
			var ten time.Duration
			for range 10 {
				ten += scanOnce(b, small).cpu
			}
			one := scanOnce(b, large).cpu
			if round == 0 || ten < cpuSmall {
				cpuSmall = ten
			}
			if round == 0 || one < cpuLarge {
				cpuLarge = one
			}
		}
		ratio += float64(cpuLarge) / float64(cpuSmall) // both for 100,000 objects
	}
	b.StopTimer()
	b.ReportMetric(ratio/float64(b.N), "cpu-per-object-100k/10k")
}

// BenchmarkParseFloor is the floor the issue measured the scan against:
// merely parsing the same generated files with go.yaml.in/yaml/v3 into
// node trees, nothing decoded or checked, in CPU time per object, for
// BenchmarkScan's figure to be read beside.
func BenchmarkParseFloor(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			dir := corpus(b, n)
			files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
			if err != nil || len(files) == 0 {
				b.Fatalf("no corpus in %s: %v", dir, err)
			}
			var cpu time.Duration
			docs := 0
			b.ResetTimer()
			for range b.N {
				before := rusage(b)
				for _, path := range files {
					f, err := os.Open(path)
					if err != nil {
						b.Fatal(err)
					}
					dec := yaml.NewDecoder(f)
					for {
						var node yaml.Node
						if err := dec.Decode(&node); errors.Is(err, io.EOF) {
							break
						} else if err != nil {
							b.Fatal(err)
						}
						docs++
					}
					f.Close()
				}
				cpu += rusage(b) - before
			}
			b.StopTimer()
			if docs != n*b.N {
				b.Fatalf("parsed %d documents, want %d", docs, n*b.N)
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(n*b.N), "cpu-µs/object")
		})
	}
}
