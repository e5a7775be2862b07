package memlimit

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func write(t *testing.T, root, path, content string) {
	t.Helper()
	p := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFromCgroup(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  int64
		ok    bool
	}{
		{"v2, own cgroup", map[string]string{
			"proc/self/cgroup": "0::/kubepods/burstable/pod1/c1\n",
			"sys/fs/cgroup/kubepods/burstable/pod1/c1/memory.max": "536870912\n",
			"sys/fs/cgroup/memory.max":                            "max\n",
		}, 512 << 20, true},
		{"v2, namespaced", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "268435456\n",
		}, 256 << 20, true},
		{"v2, no limit", map[string]string{
			"proc/self/cgroup":         "0::/user.slice\n",
			"sys/fs/cgroup/memory.max": "max\n",
		}, 0, true},
		{"v1", map[string]string{
			"proc/self/cgroup": "12:cpu,cpuacct:/docker/abc\n9:memory:/docker/abc\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "1073741824\n",
		}, 1 << 30, true},
		{"v1, no limit", map[string]string{
			"proc/self/cgroup":                           "9:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}, 0, true},
		{"no cgroup files", map[string]string{}, 0, true},
		{"garbage", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "lots\n",
		}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for p, c := range tt.files {
				write(t, root, p, c)
			}
			got, err := FromCgroup(root)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("FromCgroup = %d, %v; want %d, ok %v", got, err, tt.want, tt.ok)
			}
		})
	}
}

// TestPace: the pacer's target unless GOGC is set, in which case the
// runtime's setting (from GOGC) stays.
func TestPace(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })

	t.Setenv("GOGC", "")
	got := Pace()
	if got < GCPercent || got > maxPercent {
		t.Errorf("Pace() = %d without GOGC, want %d to %d", got, GCPercent, maxPercent)
	}
	if now := debug.SetGCPercent(got); now != got {
		t.Errorf("GC percent is %d without GOGC, want what Pace returned, %d", now, got)
	}

	t.Setenv("GOGC", "80")
	debug.SetGCPercent(80) // what the runtime read from GOGC at start
	if got := Pace(); got != 80 {
		t.Errorf("Pace() = %d with GOGC=80, want 80", got)
	}
	if now := debug.SetGCPercent(80); now != 80 {
		t.Errorf("GC percent is %d with GOGC=80, want the operator's 80", now)
	}
}

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		live uint64
		want int
	}{
		{0, maxPercent},
		{1 * mib, maxPercent}, // 1,200% capped
		{12 * mib, 100},
		{20 * mib, 60}, // a scan of 10,000 objects
		{60 * mib, GCPercent},
		{150 * mib, GCPercent}, // 100,000 objects
	} {
		if got := PercentFor(tt.live); got != tt.want {
			t.Errorf("PercentFor(%d MiB) = %d, want %d", tt.live/mib, got, tt.want)
		}
	}
}

// TestPacerFollowsLiveHeap: after collections the target falls to
// GCPercent while a large heap is live and rises again once it is freed.
func TestPacerFollowsLiveHeap(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	t.Setenv("GOGC", "")
	targets := make(chan int, 100)
	hook := func(p int) {
		select {
		case targets <- p:
		default:
		}
	}
	adjusted.Store(&hook)
	t.Cleanup(func() { adjusted.Store(nil) })
	Pace()

	await := func(what string, ok func(int) bool) {
		t.Helper()
		deadline := time.After(2 * time.Minute) // only so that a broken pacer fails instead of hanging
		for {
			runtime.GC()
			select {
			case p := <-targets:
				if ok(p) {
					return
				}
			case <-deadline:
				t.Fatalf("the pacer never set %s", what)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	live := make([]byte, 200<<20)
	await("GCPercent with 200 MiB live", func(p int) bool { return p == GCPercent })
	runtime.KeepAlive(live)
	live = nil
	await("more with the heap freed", func(p int) bool { return p > GCPercent })
	if now := debug.SetGCPercent(100); now <= GCPercent {
		t.Errorf("GC percent is %d with the heap freed", now)
	}
}
