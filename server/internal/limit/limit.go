// Package limit bounds how fast each principal may call the API, so that
// one runaway script or stolen token cannot starve everybody else.
package limit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fleetscan/fleetscan/server/internal/auth"
)

// forgetAfter is how long an idle principal's bucket is kept.
const forgetAfter = 10 * time.Minute

// Limiter is a token bucket per principal.
type Limiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	pruned  time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

// New returns a limiter of perSecond calls per principal, with bursts of
// burst; perSecond ≤ 0 allows everything.
func New(perSecond float64, burst int) *Limiter {
	return &Limiter{rate: rate.Limit(perSecond), burst: max(burst, 1), buckets: map[string]*bucket{}}
}

// Allow takes one call from the principal's bucket.
func (l *Limiter) Allow(p auth.Principal, now time.Time) bool {
	if l == nil || l.rate <= 0 {
		return true
	}
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%s", p.Role, p.Name, p.Tenant, p.ClusterID)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.pruned) > forgetAfter {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > forgetAfter {
				delete(l.buckets, k)
			}
		}
		l.pruned = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b.l.AllowN(now, 1)
}

func (l *Limiter) refuse() error {
	return status.Errorf(codes.ResourceExhausted, "rate limit: at most %g calls a second (bursts of %d) per token; slow down and retry", float64(l.rate), l.burst)
}

// UnaryInterceptor refuses calls over the limit. It runs after the
// authenticator; unauthenticated calls (health, reflection) are not
// limited here.
func (l *Limiter) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if p, ok := auth.FromContext(ctx); ok && !l.Allow(p, time.Now()) {
		return nil, l.refuse()
	}
	return handler(ctx, req)
}

// StreamInterceptor refuses streams opened over the limit (a worker
// reconnecting in a loop, a watcher re-watching).
func (l *Limiter) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if p, ok := auth.FromContext(ss.Context()); ok && !l.Allow(p, time.Now()) {
		return l.refuse()
	}
	return handler(srv, ss)
}
