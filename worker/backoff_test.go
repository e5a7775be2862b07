package worker

import (
	"testing"
	"time"
)

// TestBackoffResetsOnlyAfterProgress: streams that are welcomed and then
// end before anything progresses wait longer each time, up to the
// maximum; one that made progress, or stayed up as long as the maximum
// wait, brings the wait back to the minimum.
func TestBackoffResetsOnlyAfterProgress(t *testing.T) {
	b := &backoff{min: 100 * time.Millisecond, max: 1600 * time.Millisecond}
	within := func(step string, got, interval time.Duration) {
		t.Helper()
		if got < interval/2 || got > interval {
			t.Errorf("%s: waited %v, want within [%v, %v]", step, got, interval/2, interval)
		}
	}
	for _, interval := range []time.Duration{100, 200, 400, 800, 1600, 1600} {
		within("no progress", b.after(false, time.Second), interval*time.Millisecond)
	}
	within("after progress", b.after(true, 0), 100*time.Millisecond)
	within("no progress again", b.after(false, 0), 200*time.Millisecond)
	within("a stream up as long as the longest wait", b.after(false, 1600*time.Millisecond), 100*time.Millisecond)
}
