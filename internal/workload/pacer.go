package workload

import (
	"context"
	"sync"
	"time"
)

// pacer hands out evenly spaced start times to the workers that share it:
// one slot every interval, whichever worker asks. A worker that is late for
// its slot starts at once; slots missed by more than slack are dropped rather
// than made up in a burst. Safe for concurrent use.
type pacer struct {
	interval time.Duration
	slack    time.Duration

	mu   sync.Mutex
	next time.Time
	now  func() time.Time // time.Now; replaced in tests
}

func newPacer(rate float64) *pacer {
	interval := time.Duration(float64(time.Second) / rate)
	return &pacer{interval: interval, slack: max(100*time.Millisecond, 2*interval), now: time.Now}
}

// reserve returns the start time of the caller's slot.
func (p *pacer) reserve() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.next.Before(now.Add(-p.slack)) {
		p.next = now
	}
	at := p.next
	p.next = at.Add(p.interval)
	return at
}

// wait blocks until the caller's slot starts or ctx is done (then it returns
// ctx's error).
func (p *pacer) wait(ctx context.Context) error {
	d := p.reserve().Sub(p.now())
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
