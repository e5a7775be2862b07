package worker

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
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

// TestRetryDelayFromServer: a refusal that carries a RetryInfo (the
// server's disk is full) keeps the worker away that long, capped; other
// errors carry none.
func TestRetryDelayFromServer(t *testing.T) {
	withDelay := func(d time.Duration) error {
		st, err := status.New(codes.Unavailable, "the server's disk is full").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	for _, tt := range []struct {
		name string
		err  error
		want time.Duration
	}{
		{"disk full, 30s", withDelay(30 * time.Second), 30 * time.Second},
		{"an absurd delay is capped", withDelay(48 * time.Hour), 10 * time.Minute},
		{"no detail", status.Error(codes.Unavailable, "gone"), 0},
		{"not a status", errors.New("eof"), 0},
		{"nil", nil, 0},
	} {
		if got := retryDelay(tt.err); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
