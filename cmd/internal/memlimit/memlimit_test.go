package memlimit

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
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

// TestPace: the worker's target unless GOGC is set, in which case the
// runtime's setting (from GOGC) stays.
func TestPace(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })

	t.Setenv("GOGC", "")
	if got := Pace(); got != GCPercent {
		t.Errorf("Pace() = %d without GOGC, want %d", got, GCPercent)
	}
	if now := debug.SetGCPercent(GCPercent); now != GCPercent {
		t.Errorf("GC percent is %d without GOGC, want %d", now, GCPercent)
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
