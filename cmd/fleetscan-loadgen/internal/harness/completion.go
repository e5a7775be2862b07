package harness

import (
	"context"
	"math"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	workerv1 "github.com/fleetscan/fleetscan/proto/fleetscan/worker/v1"
)

// completions times each job's completion as its worker sees it: from
// sending JobDone to receiving the Ack(job_done) that lets it forget the
// job, which the server sends once the job is committed. The workers are
// real and keep no such figure, so it is taken on their streams.
type completions struct {
	mu sync.Mutex
	// sent is when each cluster's worker first sent a job's JobDone, by
	// job id: a JobDone sent again after a reconnect counts from the
	// first.
	sent []map[string]sentDone
	took []took
}

type sentDone struct {
	at    time.Time
	round int
}

type took struct {
	cluster, round int
	d              time.Duration
}

func newCompletions(clusters int) *completions {
	c := &completions{sent: make([]map[string]sentDone, clusters)}
	for i := range c.sent {
		c.sent[i] = map[string]sentDone{}
	}
	return c
}

// interceptor watches the streams of cluster i's worker; round is the
// round in progress.
func (c *completions) interceptor(i int, round *atomic.Int32) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &timedStream{ClientStream: cs, c: c, cluster: i, round: round}, nil
	}
}

type timedStream struct {
	grpc.ClientStream
	c       *completions
	cluster int
	round   *atomic.Int32
}

func (s *timedStream) SendMsg(m any) error {
	if d := jobDoneOf(m); d != nil && d.Error == "" {
		s.c.mu.Lock()
		if _, ok := s.c.sent[s.cluster][d.JobId]; !ok {
			s.c.sent[s.cluster][d.JobId] = sentDone{time.Now(), int(s.round.Load())}
		}
		s.c.mu.Unlock()
	}
	return s.ClientStream.SendMsg(m)
}

func (s *timedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if resp, ok := m.(*workerv1.ConnectResponse); ok && err == nil && resp.GetAck().GetJobDone() {
		s.c.mu.Lock()
		if sent, ok := s.c.sent[s.cluster][resp.GetAck().JobId]; ok {
			delete(s.c.sent[s.cluster], resp.GetAck().JobId)
			s.c.took = append(s.c.took, took{s.cluster, sent.round, time.Since(sent.at)})
		}
		s.c.mu.Unlock()
	}
	return err
}

func jobDoneOf(m any) *workerv1.JobDone {
	if req, ok := m.(*workerv1.ConnectRequest); ok {
		return req.GetJobDone()
	}
	return nil
}

// round summarizes the completions of a round, of the small clusters and
// of the large ones apart.
func (c *completions) round(r int, large func(i int) bool) (small, big Latency) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s, b []time.Duration
	for _, t := range c.took {
		switch {
		case t.round != r:
		case large(t.cluster):
			b = append(b, t.d)
		default:
			s = append(s, t.d)
		}
	}
	return summarize(s, 0), summarize(b, 0)
}

// bucketLatency summarizes the observations a Prometheus histogram gained
// between two scrapes (cumulative counts by upper bound): p50, p99 and
// max are the upper bounds of the buckets they fell in.
func bucketLatency(before, after map[string]int64) Latency {
	type bucket struct {
		le float64
		n  int64
	}
	var bs []bucket
	for le, n := range after {
		v := math.Inf(1)
		if le != "+Inf" {
			var err error
			if v, err = strconv.ParseFloat(le, 64); err != nil {
				continue
			}
		}
		bs = append(bs, bucket{v, n - before[le]})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if len(bs) == 0 || bs[len(bs)-1].n == 0 {
		return Latency{}
	}
	total := bs[len(bs)-1].n
	at := func(q float64) time.Duration {
		for _, b := range bs {
			if float64(b.n) >= q*float64(total) {
				if math.IsInf(b.le, 1) {
					return time.Duration(math.MaxInt64)
				}
				return time.Duration(b.le * float64(time.Second))
			}
		}
		return 0
	}
	return Latency{Calls: int(total), P50: at(0.5), P99: at(0.99), Max: at(1)}
}
