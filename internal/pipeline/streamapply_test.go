package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// fakeState is the control table's applier state in memory. onFence, when
// set, runs before each Fence read (to raise a fence "concurrently").
type fakeState struct {
	mu         sync.Mutex
	fences     map[string]load.Fence
	positions  map[string]load.ShardPosition
	reads      int
	onFence    func(reads int)
	barriers   []string
	barrierErr error
}

func newFakeState() *fakeState {
	return &fakeState{fences: map[string]load.Fence{}, positions: map[string]load.ShardPosition{}}
}

func (s *fakeState) Fence(_ context.Context, table string) (load.Fence, error) {
	s.mu.Lock()
	s.reads++
	hook, n := s.onFence, s.reads
	s.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fences[table], nil
}

func (s *fakeState) RaiseFence(_ context.Context, table, v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fences[table]
	if f.Truncated == "" || older(f.Truncated, v) {
		f.Truncated = v
	}
	s.fences[table] = f
	return nil
}

func (s *fakeState) MarkSwept(_ context.Context, table, v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fences[table]
	if f.Swept == "" || older(f.Swept, v) {
		f.Swept = v
	}
	s.fences[table] = f
	return nil
}

func (s *fakeState) SaveShardPosition(_ context.Context, p load.ShardPosition) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.positions[p.Shard]; !ok || older(cur.Version, p.Version) {
		s.positions[p.Shard] = p
	}
	return nil
}

func (s *fakeState) MarkBarrier(_ context.Context, id string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.barrierErr != nil {
		return s.barrierErr
	}
	s.barriers = append(s.barriers, id)
	return nil
}

// streamRig is a stream applier on fakes, for the film table of filmPlan.
type streamRig struct {
	t      *testing.T
	tp     *transform.TablePlan
	items  *fakeItems
	state  *fakeState
	a      *StreamApplier
	sweeps int
	dead   []RowFailure
}

func newStreamRig(t *testing.T) *streamRig {
	r := &streamRig{t: t, tp: filmPlan(t), items: newFakeItems(), state: newFakeState()}
	a, err := NewStreamApplier(StreamApplierConfig{
		Plan: &transform.Plan{Tables: []*transform.TablePlan{r.tp}}, Writer: r.items, State: r.state,
		Sweep: func(ctx context.Context, tp *transform.TablePlan, version string) (int64, error) {
			r.sweeps++
			var n int64
			for k, it := range r.items.items {
				if !older(version, versionOf(it)) {
					delete(r.items.items, k)
					n++
				}
			}
			return n, nil
		},
		DeadLetter: func(_ context.Context, f RowFailure) error { r.dead = append(r.dead, f); return nil },
		Backoff:    load.Backoff{Base: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
	return r
}

func at(lsn uint64, seq uint32) extract.Position {
	return extract.Position{LSN: extract.LSN(lsn), Seq: seq}
}

func filmRow(id, title, desc string) extract.Row {
	return extract.Row{{Text: id}, {Text: title}, {Text: desc}}
}

// rec is the stream record of a change of the film table.
func (r *streamRig) rec(op extract.Op, p extract.Position, before, after extract.Row) StreamRecord {
	ch := &extract.Change{Table: r.tp.Source, Op: op, Pos: p, Before: before, After: after, Commit: time.Unix(1, 0)}
	pk, data, err := r.tp.Record(ch, transform.RecordSource{DB: "pagila"}, time.Unix(2, 0))
	if err != nil {
		r.t.Fatal(err)
	}
	return StreamRecord{Stream: "film-changes", Shard: "shardId-000000000000", Sequence: fmt.Sprint(p.LSN), PartitionKey: pk, Data: data}
}

// titles is the stored items' titles by key.
func (r *streamRig) titles() string {
	var out []string
	for _, k := range sortedKeys(r.items.items) {
		out = append(out, k+"="+r.items.items[k]["title"].(*types.AttributeValueMemberS).Value)
	}
	return strings.Join(out, " ")
}

func sortedKeys(m map[string]load.Item) []string { return slices.Sorted(maps.Keys(m)) }

func (r *streamRig) apply(recs ...StreamRecord) BatchResult {
	r.t.Helper()
	res, err := r.a.Apply(r.t.Context(), recs)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

// TestStreamApplyDeliveries: the items come out the same whatever way the
// event source mapping delivers the records — in one batch, one by one, or
// again (a retry, a bisected batch, a replay after a crash).
func TestStreamApplyDeliveries(t *testing.T) {
	u := extract.Value{Unchanged: true}
	build := func(r *streamRig) []StreamRecord {
		return []StreamRecord{
			r.rec(extract.OpCreate, at(200, 1), nil, filmRow("1", "A", "long")),
			r.rec(extract.OpCreate, at(200, 2), nil, filmRow("2", "B", "d")),
			r.rec(extract.OpUpdate, at(201, 1), nil, extract.Row{{Text: "1"}, {Text: "A2"}, u}),  // leaves out description
			r.rec(extract.OpUpdate, at(202, 1), filmRow("2", "B", "d"), filmRow("3", "B3", "d")), // key change
			r.rec(extract.OpCreate, at(203, 1), nil, filmRow("4", "D", "d")),
			r.rec(extract.OpDelete, at(204, 1), filmRow("4", "", ""), nil),
		}
	}
	const want = "FILM#1=A2 FILM#3=B3"
	for _, tc := range []struct {
		name    string
		deliver func(r *streamRig, recs []StreamRecord)
	}{
		{"one batch", func(r *streamRig, recs []StreamRecord) { r.apply(recs...) }},
		{"one by one", func(r *streamRig, recs []StreamRecord) {
			for _, x := range recs {
				r.apply(x)
			}
		}},
		{"twice", func(r *streamRig, recs []StreamRecord) { r.apply(recs...); r.apply(recs...) }},
		{"bisected after a failure, then again", func(r *streamRig, recs []StreamRecord) {
			r.apply(recs[:3]...)
			r.apply(recs[3:]...)
			r.apply(recs...)
		}},
		{"a replay of an old prefix after everything", func(r *streamRig, recs []StreamRecord) {
			r.apply(recs...)
			r.apply(recs[2:]...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newStreamRig(t)
			tc.deliver(r, build(r))
			if got := r.titles(); got != want {
				t.Errorf("items %s, want %s", got, want)
			}
			if d := r.items.items["FILM#1"]["description"]; d == nil || d.(*types.AttributeValueMemberS).Value != "long" {
				t.Errorf("FILM#1 lost the description the partial update left out: %v", d)
			}
			if p := r.state.positions["shardId-000000000000"]; p.Version != at(204, 1).Version() {
				t.Errorf("shard position %q, want %q", p.Version, at(204, 1).Version())
			}
		})
	}
}

// TestStreamApplyFailures: a change DynamoDB can never hold is a dead letter
// and fails its record (the mapping's on-failure destination gets it after
// the retries); a transient failure fails the earliest record folded into
// the write, without a dead letter; a record the plan cannot read fails there,
// and nothing after it is applied.
func TestStreamApplyFailures(t *testing.T) {
	for _, tc := range []struct {
		name       string
		failKey    string
		err        error
		corrupt    int // index of a record replaced by one the plan cannot read (-1: none)
		wantFailed int
		wantDead   int
		wantItems  string
	}{
		{"poison row", "FILM#2", fmt.Errorf("item too large: %w", load.ErrInvalidRequest), -1, 1, 1, "FILM#1=A FILM#3=C"},
		{"throttled beyond the retries", "FILM#2", errors.New("ProvisionedThroughputExceededException"), -1, 1, 0, "FILM#1=A FILM#3=C"},
		{"stale plan", "", nil, 1, 1, 0, "FILM#1=A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newStreamRig(t)
			recs := []StreamRecord{
				r.rec(extract.OpCreate, at(200, 1), nil, filmRow("1", "A", "d")),
				r.rec(extract.OpCreate, at(200, 2), nil, filmRow("2", "B", "d")),
				r.rec(extract.OpCreate, at(200, 3), nil, filmRow("3", "C", "d")),
				r.rec(extract.OpUpdate, at(201, 1), nil, filmRow("2", "B2", "d")),
			}
			if tc.failKey != "" {
				r.items.fail[tc.failKey] = tc.err
			}
			if tc.corrupt >= 0 {
				recs[tc.corrupt].Data = []byte(strings.Replace(string(recs[tc.corrupt].Data), `"title"`, `"subtitle":"x","title"`, 1))
			}
			res := r.apply(recs...)
			if res.Failed != tc.wantFailed || len(r.dead) != tc.wantDead {
				t.Errorf("failed at %d (%v), %d dead letters; want %d, %d", res.Failed, res.FailReason, len(r.dead), tc.wantFailed, tc.wantDead)
			}
			if got := r.titles(); got != tc.wantItems {
				t.Errorf("items %s, want %s", got, tc.wantItems)
			}
			if tc.wantDead > 0 && r.dead[0].Key != "film_id=2" {
				t.Errorf("dead letter names %q", r.dead[0].Key)
			}
			var stale *transform.StalePlanError
			if tc.corrupt >= 0 && !errors.As(res.FailReason, &stale) {
				t.Errorf("reason %v, want a StalePlanError", res.FailReason)
			}
		})
	}
}

// TestStreamApplyTruncate: a TRUNCATE (one copy per shard) sweeps the table
// once and fences it: older changes delivered later are dropped, newer ones
// land.
func TestStreamApplyTruncate(t *testing.T) {
	r := newStreamRig(t)
	r.apply(r.rec(extract.OpCreate, at(200, 1), nil, filmRow("1", "A", "d")))
	trunc := r.rec(extract.OpTruncate, at(250, 1), nil, nil)
	res := r.apply(trunc, r.rec(extract.OpCreate, at(300, 1), nil, filmRow("2", "B", "d")))
	if res.Swept != 1 || r.sweeps != 1 {
		t.Errorf("swept %d items in %d sweeps, want 1 in 1", res.Swept, r.sweeps)
	}
	// Another shard's copy of the TRUNCATE, behind an older change of its own.
	other := r.rec(extract.OpCreate, at(240, 1), nil, filmRow("9", "OLD", "d"))
	res = r.apply(other, trunc)
	if r.sweeps != 1 || res.Fenced != 1 {
		t.Errorf("%d sweeps, %d fenced; want 1 sweep (done already), 1 fenced", r.sweeps, res.Fenced)
	}
	if got := r.titles(); got != "FILM#2=B" {
		t.Errorf("items %s, want FILM#2=B", got)
	}
}

// TestStreamApplyFenceRisesDuringWrites: a TRUNCATE applied by another
// invocation between this one's first fence read and its writes — its older
// write is removed after the second read (check after write).
func TestStreamApplyFenceRisesDuringWrites(t *testing.T) {
	r := newStreamRig(t)
	r.state.onFence = func(reads int) {
		if reads == 2 { // between the first read and the second: the concurrent TRUNCATE at 250 and its sweep
			r.state.mu.Lock()
			r.state.fences["public.film"] = load.Fence{Truncated: at(250, 1).Version(), Swept: at(250, 1).Version()}
			r.state.mu.Unlock()
		}
	}
	res := r.apply(r.rec(extract.OpCreate, at(240, 1), nil, filmRow("1", "OLD", "d")), r.rec(extract.OpCreate, at(260, 1), nil, filmRow("2", "NEW", "d")))
	if res.Applied != 2 {
		t.Fatalf("applied %d, want 2 (the fence rose after the first read)", res.Applied)
	}
	if got := r.titles(); got != "FILM#2=NEW" {
		t.Errorf("items %s, want FILM#2=NEW: the write below the risen fence must go", got)
	}
}

// barrier is a barrier record on the film stream.
func (r *streamRig) barrier(id string) StreamRecord {
	return StreamRecord{Stream: "film-changes", Shard: "shardId-000000000000", Sequence: "9" + id, PartitionKey: "film:1",
		Data: transform.BarrierRecord(id, 500, time.Unix(3, 0))}
}

// TestStreamApplyBarriers: a barrier is recorded only once every record
// before it in the batch is applied (verify then knows the row's earlier
// changes are in DynamoDB); one behind a failed record is not, and the
// record is reported from the failure on, so it comes again.
func TestStreamApplyBarriers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		failKey    string
		barrierErr error
		wantFailed int
		want       []string
	}{
		{"every record applied", "", nil, -1, []string{"b1", "b2"}},
		{"a write before the second barrier fails", "FILM#2", nil, 2, []string{"b1"}},
		{"a write before the first barrier fails", "FILM#1", nil, 0, nil},
		{"the barrier cannot be recorded", "", errors.New("control table unreachable"), 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newStreamRig(t)
			r.state.barrierErr = tc.barrierErr
			if tc.failKey != "" {
				r.items.fail[tc.failKey] = fmt.Errorf("item too large: %w", load.ErrInvalidRequest)
			}
			res := r.apply(
				r.rec(extract.OpCreate, at(300, 1), nil, filmRow("1", "A", "d")),
				r.barrier("b1"),
				r.rec(extract.OpCreate, at(301, 1), nil, filmRow("2", "B", "d")),
				r.barrier("b2"),
			)
			if res.Failed != tc.wantFailed {
				t.Errorf("Failed = %d, want %d (%v)", res.Failed, tc.wantFailed, res.FailReason)
			}
			if !slices.Equal(r.state.barriers, tc.want) {
				t.Errorf("barriers recorded %v, want %v", r.state.barriers, tc.want)
			}
			if res.Barriers != len(tc.want) {
				t.Errorf("Barriers = %d, want %d", res.Barriers, len(tc.want))
			}
		})
	}
}
