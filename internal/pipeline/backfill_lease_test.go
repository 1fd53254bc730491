package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/load"
)

// leaseTable is an in-memory control table of leases with the conditions
// of load.LeaseStore, shared by the fake workers of a test.
type leaseTable struct {
	mu     sync.Mutex
	now    time.Time
	leases map[string]load.Lease
	keeps  map[string]context.CancelCauseFunc // key → the holder's Keep
}

func newLeaseTable() *leaseTable {
	return &leaseTable{now: time.Unix(1_700_000_000, 0), leases: map[string]load.Lease{}, keeps: map[string]context.CancelCauseFunc{}}
}

func (t *leaseTable) clock() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.now
}

func (t *leaseTable) advance(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.now = t.now.Add(d)
}

// worker returns a worker's view of the table (a chunkLeases).
func (t *leaseTable) worker(name string) *fakeLeases {
	return &fakeLeases{t: t, owner: name, d: 10 * time.Second}
}

type fakeLeases struct {
	t     *leaseTable
	owner string
	d     time.Duration
}

func (f *fakeLeases) Owner() string           { return f.owner }
func (f *fakeLeases) Duration() time.Duration { return f.d }

// write applies a conditional write: ok says whether the condition holds
// on the stored lease.
func (f *fakeLeases) write(key string, ok func(cur load.Lease, exists bool) bool, hold bool, value []byte) (load.Lease, error) {
	t := f.t
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, exists := t.leases[key]
	if !ok(cur, exists) {
		return load.Lease{}, fmt.Errorf("fake %s: %w", key, load.ErrLeaseLost)
	}
	if stop := t.keeps[key]; stop != nil && cur.Owner != f.owner {
		stop(load.ErrLeaseLost) // the former owner's Keep notices at once
		delete(t.keeps, key)
	}
	next := load.Lease{Key: key, Counter: cur.Counter + 1, Value: cur.Value}
	if hold {
		next.Owner, next.Expires = f.owner, t.now.Add(f.d)
	}
	if value != nil {
		next.Value = value
	}
	t.leases[key] = next
	return next, nil
}

func (f *fakeLeases) Acquire(_ context.Context, key string) (load.Lease, error) {
	l, err := f.write(key, func(c load.Lease, _ bool) bool { return c.Owner == "" && c.Value == nil }, true, nil)
	if errors.Is(err, load.ErrLeaseLost) {
		return l, load.ErrLeaseHeld
	}
	return l, err
}

func (f *fakeLeases) Get(_ context.Context, key string) (load.Lease, bool, error) {
	f.t.mu.Lock()
	defer f.t.mu.Unlock()
	l, ok := f.t.leases[key]
	return l, ok, nil
}

func (f *fakeLeases) mine(l load.Lease) func(load.Lease, bool) bool {
	return func(c load.Lease, _ bool) bool { return c.Owner == f.owner && c.Counter == l.Counter }
}

func (f *fakeLeases) TakeOver(_ context.Context, l load.Lease) (load.Lease, error) {
	if !l.Expired(f.t.clock()) {
		return load.Lease{}, load.ErrLeaseHeld
	}
	return f.write(l.Key, func(c load.Lease, _ bool) bool { return c.Counter == l.Counter }, true, nil)
}

func (f *fakeLeases) Release(_ context.Context, l load.Lease) error {
	_, err := f.write(l.Key, f.mine(l), false, nil)
	return err
}

func (f *fakeLeases) Finish(_ context.Context, l load.Lease, value []byte) error {
	_, err := f.write(l.Key, f.mine(l), false, value)
	return err
}

// Keep does not renew (the tests move the clock instead); it ends the
// held context when another worker takes the lease.
func (f *fakeLeases) Keep(ctx context.Context, l load.Lease) (context.Context, func() (load.Lease, error)) {
	held, cancel := context.WithCancelCause(ctx)
	f.t.mu.Lock()
	f.t.keeps[l.Key] = cancel
	f.t.mu.Unlock()
	return held, func() (load.Lease, error) {
		f.t.mu.Lock()
		if f.t.keeps[l.Key] != nil && f.t.leases[l.Key].Owner == f.owner {
			delete(f.t.keeps, l.Key)
		}
		f.t.mu.Unlock()
		err := context.Cause(held)
		if !errors.Is(err, load.ErrLeaseLost) {
			err = nil
		}
		cancel(nil)
		return l, err
	}
}

func TestLeasedChunk(t *testing.T) {
	const key = "done:public.film:0"
	errCopy := errors.New("sink down")
	for _, tc := range []struct {
		name string
		// setup prepares the table (other workers' leases) before "me" tries.
		setup func(tb *leaseTable)
		// during runs inside my copy (another worker acts meanwhile).
		during    func(tb *leaseTable, held context.Context)
		value     []byte // what my copy returns
		copyErr   error
		want      chunkOutcome
		wantErr   error
		wantCopy  bool   // my copy ran
		wantValue string // the lease's stored value afterwards
		wantOwner string // the lease's owner afterwards
	}{
		{name: "free chunk: claimed, copied, recorded", value: []byte("me-rows"),
			want: chunkFinished, wantCopy: true, wantValue: "me-rows"},
		{name: "held by a live worker: skipped, looked at later",
			setup: func(tb *leaseTable) { mustAcquire(tb.worker("other"), key) },
			want:  chunkBusy, wantOwner: "other"},
		{name: "expired lease of a dead worker: taken over", value: []byte("me-rows"),
			setup: func(tb *leaseTable) { mustAcquire(tb.worker("dead"), key); tb.advance(11 * time.Second) },
			want:  chunkFinished, wantCopy: true, wantValue: "me-rows"},
		{name: "already done: not copied again",
			setup: func(tb *leaseTable) {
				w := tb.worker("other")
				if err := w.Finish(context.Background(), mustAcquire(w, key), []byte("other-rows")); err != nil {
					panic(err)
				}
			},
			want: chunkDoneElse, wantValue: "other-rows"},
		{name: "lease lost while copying: copy stopped, no done marker", value: []byte("me-rows"),
			during: func(tb *leaseTable, held context.Context) {
				tb.advance(11 * time.Second) // my renewals did not get through
				taker := tb.worker("taker")
				seen, _, _ := taker.Get(context.Background(), key)
				if _, err := taker.TakeOver(context.Background(), seen); err != nil {
					panic(err)
				}
				<-held.Done() // the copy's context ends: it stops writing
			},
			want: chunkLost, wantCopy: true, wantOwner: "taker"},
		{name: "done counted once: the taker records it, not the former owner", value: []byte("me-rows"),
			during: func(tb *leaseTable, held context.Context) {
				tb.advance(11 * time.Second)
				taker := tb.worker("taker")
				seen, _, _ := taker.Get(context.Background(), key)
				l, err := taker.TakeOver(context.Background(), seen)
				if err != nil {
					panic(err)
				}
				if err := taker.Finish(context.Background(), l, []byte("taker-rows")); err != nil {
					panic(err)
				}
			},
			want: chunkLost, wantCopy: true, wantValue: "taker-rows"},
		{name: "rows failed under stop: released, not recorded",
			want: chunkUnrecorded, wantCopy: true},
		{name: "copy failed: error, lease released for another worker", copyErr: errCopy,
			want: 0, wantErr: errCopy, wantCopy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newLeaseTable()
			if tc.setup != nil {
				tc.setup(tb)
			}
			me := tb.worker("me")
			copied := false
			at, err := leasedChunk(t.Context(), me, key, tb.clock, func(held context.Context) ([]byte, error) {
				copied = true
				if tc.during != nil {
					tc.during(tb, held)
				}
				return tc.value, tc.copyErr
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			out, wait := at.out, at.wait
			if out != tc.want {
				t.Errorf("outcome %s, want %s", out, tc.want)
			}
			if (out == chunkLost) != (at.lost != nil) {
				t.Errorf("outcome %s with reason %v", out, at.lost)
			}
			if copied != tc.wantCopy {
				t.Errorf("copied %v, want %v", copied, tc.wantCopy)
			}
			if tc.want == chunkBusy && (wait <= 0 || wait > 10*time.Second) {
				t.Errorf("busy: wait %s, want until the other's lease runs out (≤ 10s)", wait)
			}
			l, _, _ := me.Get(t.Context(), key)
			if string(l.Value) != tc.wantValue || l.Owner != tc.wantOwner {
				t.Errorf("lease afterwards: value %q owner %q, want %q and %q", l.Value, l.Owner, tc.wantValue, tc.wantOwner)
			}
		})
	}
}

// TestLeasedChunkRaceRecordsOnce: workers racing for the same chunks, with
// leases expiring under them, record every chunk exactly once.
func TestLeasedChunkRaceRecordsOnce(t *testing.T) {
	tb := newLeaseTable()
	const chunks, workers = 50, 4
	var mu sync.Mutex
	recorded := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		me := tb.worker(fmt.Sprint("w", w))
		wg.Go(func() {
			for i := range chunks {
				key := chunkKey("public.rental", i)
				for {
					at, err := leasedChunk(t.Context(), me, key, tb.clock, func(context.Context) ([]byte, error) {
						if i%7 == w { // this worker stalls: its lease runs out
							tb.advance(11 * time.Second)
						}
						return []byte(me.owner), nil
					})
					if err != nil {
						t.Error(err)
						return
					}
					out := at.out
					if out == chunkFinished {
						mu.Lock()
						recorded[key]++
						mu.Unlock()
					}
					if out != chunkBusy && out != chunkLost {
						break
					}
					tb.advance(time.Second)
				}
			}
		})
	}
	wg.Wait()
	if len(recorded) != chunks {
		t.Errorf("%d chunks recorded, want %d", len(recorded), chunks)
	}
	for k, n := range recorded {
		if n != 1 {
			t.Errorf("%s recorded %d times", k, n)
		}
	}
}

func mustAcquire(f *fakeLeases, key string) load.Lease {
	l, err := f.Acquire(context.Background(), key)
	if err != nil {
		panic(err)
	}
	return l
}
