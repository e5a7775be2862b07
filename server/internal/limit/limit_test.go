package limit

import (
	"testing"
	"time"

	"github.com/fleetscan/fleetscan/server/internal/auth"
)

func TestLimiterIsPerPrincipal(t *testing.T) {
	l := New(10, 5)
	now := time.Unix(1000, 0)
	a := auth.Principal{Role: auth.RoleTenant, Name: "a", Tenant: "acme"}
	b := auth.Principal{Role: auth.RoleTenant, Name: "b", Tenant: "globex"}
	allowed := 0
	for range 20 {
		if l.Allow(a, now) {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("a burst of 20 calls at once: %d allowed, want the burst of 5", allowed)
	}
	if !l.Allow(b, now) {
		t.Error("another principal is limited by a's calls")
	}
	if !l.Allow(a, now.Add(100*time.Millisecond)) {
		t.Error("after 100ms at 10/s one call should be allowed again")
	}
	if l.Allow(a, now.Add(100*time.Millisecond)) {
		t.Error("two calls allowed after 100ms at 10/s")
	}
	if !New(0, 0).Allow(a, now) {
		t.Error("a zero rate should not limit")
	}
}

func TestIdleBucketsAreForgotten(t *testing.T) {
	l := New(1, 1)
	now := time.Unix(1000, 0)
	for i := range 100 {
		l.Allow(auth.Principal{Name: string(rune('a' + i%26)), Tenant: string(rune('A' + i/26))}, now)
	}
	l.Allow(auth.Principal{Name: "late"}, now.Add(2*forgetAfter))
	if n := len(l.buckets); n != 1 {
		t.Errorf("%d buckets kept after every other principal was idle for %v, want 1", n, 2*forgetAfter)
	}
}
