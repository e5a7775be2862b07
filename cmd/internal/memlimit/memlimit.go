// Package memlimit paces the Go garbage collector for a process whose
// live heap is most of its memory (the worker's inventory), and sets the
// runtime's soft memory limit from the memory limit of the container a
// binary runs in, so that the garbage collector works harder as the
// process nears the limit instead of the kernel killing it there.
package memlimit

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Share is the part of the container's limit given to the Go heap: the
// rest is for what the runtime does not count (stacks, the binary,
// memory returned to the kernel late).
const Share = 0.8

// unlimited is what cgroup v1 reports for no limit (a page-rounded
// MaxInt64); anything this large is no limit.
const unlimited = 1 << 60

// FromCgroup reads the memory limit of the cgroup the process runs in,
// under root (normally "/"): cgroup v2's memory.max for the process's own
// cgroup, or cgroup v1's memory.limit_in_bytes. It returns 0 when there is
// no limit or no cgroup file to read.
func FromCgroup(root string) (int64, error) {
	var candidates []string
	if f, err := os.Open(filepath.Join(root, "proc/self/cgroup")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// v2: "0::/path"; v1: "N:memory:/path" (or with other
			// controllers listed beside memory).
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			if parts[0] == "0" && parts[1] == "" {
				candidates = append(candidates, filepath.Join(root, "sys/fs/cgroup", parts[2], "memory.max"))
			}
			for _, c := range strings.Split(parts[1], ",") {
				if c == "memory" {
					candidates = append(candidates, filepath.Join(root, "sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
				}
			}
		}
		f.Close()
	}
	// Inside a container's cgroup namespace the own path is "/", but some
	// runtimes show the host's path: the root files are the container's.
	candidates = append(candidates, filepath.Join(root, "sys/fs/cgroup/memory.max"), filepath.Join(root, "sys/fs/cgroup/memory/memory.limit_in_bytes"))
	for _, path := range candidates {
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q is not a number of bytes", path, v)
		}
		if n <= 0 || n >= unlimited {
			return 0, nil
		}
		return n, nil
	}
	return 0, nil
}

// GCPercent is the garbage collector's target for the worker on a large
// live heap: the heap may grow 30% past what is live before a
// collection, not Go's default 100%. The worker's live heap is the
// inventory it scans, held until the checks are done, so the default
// doubles its peak: on a cluster of 49,039 objects (54 MiB live), peak
// RSS was 175 MiB at 100, 134 MiB at 25 and 129 MiB at 20. The cost of
// collecting is the bytes allocated over this percentage, whatever the
// size of the heap, so a lower percentage makes a large scan dearer per
// object than a small one, whose heap is under MinHeadroom. With the
// scan of session 9, 100,000 generated objects cost 1.29–1.35 times the
// CPU per object of 10,000 in process (BenchmarkScanScaling) at 30%, and
// 4.8 s for a peak RSS of 260 MB as a process; at 40%, 1.26 times for
// 275–279 MB; at 20% (the scan of mid-session) 1.50–1.55 times. The live
// cluster's worker peaked at 134 MiB at 30% as at 20%. Unlike a fixed soft limit, a percentage never makes the
// collector run back to back on a cluster larger than the limit: its
// cost stays proportional to what is live.
const GCPercent = 30

// MinHeadroom is how far the heap may always grow past what is live
// before a collection. 20% of a small live heap is a few MiB, so a scan
// of 10,000 objects (20 MiB live) collected every 4 MiB it allocated:
// 1.67 s of CPU against 1.15 s at Go's default, for 71 against 88 MiB
// peak RSS. With this floor the percentage only matters from 40 MiB live
// up, where it holds the peak.
const MinHeadroom = 12 << 20

// maxPercent bounds the target on a nearly empty heap.
const maxPercent = 500

// PercentFor is the target Pace keeps for a live heap of live bytes:
// GCPercent, or more where that would give less than MinHeadroom.
func PercentFor(live uint64) int {
	if live == 0 {
		return maxPercent
	}
	p := int((MinHeadroom*100 + live - 1) / live)
	return min(max(p, GCPercent), maxPercent)
}

var paceOnce sync.Once

// adjusted, when set by a test, is told each target the pacer sets.
var adjusted atomic.Pointer[func(int)]

// Pace paces the garbage collector to PercentFor the live heap, adjusted
// after every collection, unless GOGC is set (the operator's word wins).
// It returns the percentage in effect.
func Pace() int {
	if v := os.Getenv("GOGC"); v != "" {
		old := debug.SetGCPercent(100)
		debug.SetGCPercent(old)
		return old
	}
	p := PercentFor(liveHeap())
	debug.SetGCPercent(p)
	paceOnce.Do(func() { armPacer(p) })
	return p
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// gcTick is an object whose finalizer runs once after each collection
// that finds it unreachable; it is not tiny, so that it is freed alone.
type gcTick struct{ _ [32]byte }

// armPacer sets the target after the next collection, and so on after
// each one.
func armPacer(current int) {
	runtime.SetFinalizer(&gcTick{}, func(*gcTick) {
		if os.Getenv("GOGC") != "" {
			return
		}
		p := PercentFor(liveHeap())
		if p != current {
			debug.SetGCPercent(p)
		}
		if f := adjusted.Load(); f != nil {
			(*f)(p)
		}
		armPacer(p)
	})
}

// Apply sets the soft memory limit to Share of the container's limit,
// unless GOMEMLIMIT is set (the operator's word wins) or there is no
// limit. It returns the limit it set, 0 if none.
func Apply() (int64, error) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	limit, err := FromCgroup("/")
	if err != nil || limit == 0 {
		return 0, err
	}
	soft := int64(float64(limit) * Share)
	debug.SetMemoryLimit(soft)
	return soft, nil
}
