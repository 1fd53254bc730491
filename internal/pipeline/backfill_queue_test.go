package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// testTable is a table of the queue tests: its rows split into chunks of
// chunkRows (one chunk when chunkRows is 0: a table without a primary key).
type testTable struct {
	name      string
	rows      int64
	chunkRows int64
	estimate  int64
	done      []int // chunks done by an earlier run
}

func (tt testTable) copy(order int) *tableCopy {
	tp := &transform.TablePlan{Source: &extract.Table{Schema: "public", Name: tt.name, EstimatedRows: tt.estimate}}
	t := newTableCopy(tp, order)
	plan := &chunkPlan{Rows: tt.rows}
	n := 1
	if tt.chunkRows > 0 {
		n = int(max((tt.rows+tt.chunkRows-1)/tt.chunkRows, 1))
	}
	for i := range n {
		plan.Chunks = append(plan.Chunks, extract.Chunk{Index: i})
	}
	done := map[int]int64{}
	for _, i := range tt.done {
		done[i] = tt.chunkRows
	}
	t.setPlan(plan, done)
	return t
}

// drain takes every chunk of a closed queue, as "table:chunk".
func drain(t *testing.T, q *chunkQueue) []string {
	t.Helper()
	var out []string
	for {
		job, ok, err := q.next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, fmt.Sprintf("%s:%d", job.table.tp.Source.Name, job.chunk.Index))
	}
}

func TestChunkQueueOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tables []testTable
		want   string
	}{
		{"largest table first, its chunks in key order",
			[]testTable{{name: "actor", rows: 200, chunkRows: 100}, {name: "rental", rows: 500, chunkRows: 100}},
			"rental:0 rental:1 rental:2 rental:3 rental:4 actor:0 actor:1"},
		{"a small table's single chunk after the full chunks of big ones",
			[]testTable{{name: "language", rows: 6, chunkRows: 100}, {name: "payment", rows: 300, chunkRows: 100}, {name: "film", rows: 80, chunkRows: 100}},
			"payment:0 payment:1 payment:2 film:0 language:0"},
		{"a table without a key (one chunk of all its rows) first",
			[]testTable{{name: "big", rows: 1000, chunkRows: 100}, {name: "nokey", rows: 400}},
			"nokey:0 big:0 big:1 big:2 big:3 big:4 big:5 big:6 big:7 big:8 big:9"},
		{"equal tables in plan order",
			[]testTable{{name: "b", rows: 100, chunkRows: 50}, {name: "a", rows: 100, chunkRows: 50}},
			"b:0 b:1 a:0 a:1"},
		{"chunks done by an earlier run are left out",
			[]testTable{{name: "rental", rows: 400, chunkRows: 100, done: []int{0, 2}}, {name: "staff", rows: 2, chunkRows: 100, done: []int{0}}},
			"rental:1 rental:3"},
		{"empty tables still have their one chunk",
			[]testTable{{name: "empty", rows: 0, chunkRows: 100}},
			"empty:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newChunkQueue()
			for i, tt := range tc.tables {
				q.add(tt.copy(i))
			}
			q.close()
			if got := strings.Join(drain(t, q), " "); got != tc.want {
				t.Errorf("order\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestChunkQueueLaterTablesJoin: a table planned later goes before the
// queued chunks of a smaller one, after the chunks already taken.
func TestChunkQueueLaterTablesJoin(t *testing.T) {
	q := newChunkQueue()
	q.add(testTable{name: "small", rows: 300, chunkRows: 100}.copy(0))
	first := drain1(t, q)
	q.add(testTable{name: "big", rows: 200, chunkRows: 200}.copy(1))
	q.close()
	got := append([]string{first}, drain(t, q)...)
	if want := "small:0 big:0 small:1 small:2"; strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
}

func drain1(t *testing.T, q *chunkQueue) string {
	job, ok, err := q.next(context.Background())
	if err != nil || !ok {
		t.Fatalf("next: ok %v, %v", ok, err)
	}
	return fmt.Sprintf("%s:%d", job.table.tp.Source.Name, job.chunk.Index)
}

// TestChunkQueueWaits: a worker waits for chunks while the queue is open,
// ends when it is closed and empty, and stops when its context ends.
func TestChunkQueueWaits(t *testing.T) {
	q := newChunkQueue()
	got := make(chan string)
	go func() {
		job, ok, err := q.next(context.Background())
		got <- fmt.Sprint(job.chunk.Index, ok, err)
		_, ok, err = q.next(context.Background())
		got <- fmt.Sprint(ok, err)
	}()
	select {
	case s := <-got:
		t.Fatalf("next returned %s from an empty open queue", s)
	case <-time.After(20 * time.Millisecond): // a wait that must not end: how long only bounds the test
	}
	q.add(testTable{name: "t", rows: 1, chunkRows: 10}.copy(0))
	if s := <-got; s != "0 true <nil>" {
		t.Errorf("first next: %s", s)
	}
	q.close()
	q.close()
	if s := <-got; s != "false <nil>" {
		t.Errorf("next on a closed empty queue: %s", s)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := newChunkQueue().next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("next after cancel: %v", err)
	}
}

// recProgress records progress events per table, and checks their order:
// TableStart, Adds, TableDone, each table once.
type recProgress struct {
	mu     sync.Mutex
	events map[string][]string
	errs   []string
}

func (p *recProgress) TableStart(table string, rows, done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.events[table]) > 0 {
		p.errs = append(p.errs, table+": TableStart after "+p.events[table][len(p.events[table])-1])
	}
	p.events[table] = append(p.events[table], fmt.Sprintf("start %d %d", rows, done))
}

func (p *recProgress) Add(table string, rows int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev := p.events[table]
	if len(ev) == 0 || strings.HasPrefix(ev[len(ev)-1], "done") {
		p.errs = append(p.errs, table+": Add outside TableStart…TableDone")
	}
	p.events[table] = append(ev, "add")
}

func (p *recProgress) TableDone(st *TableStats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev := p.events[st.Table]
	if len(ev) == 0 || strings.HasPrefix(ev[len(ev)-1], "done") {
		p.errs = append(p.errs, st.Table+": TableDone without TableStart, or twice")
	}
	p.events[st.Table] = append(ev, fmt.Sprintf("done rows=%d items=%d records=%d retries=%d chunks=%d skipped=%d failures=%d",
		st.Rows, st.Items, st.Records, st.Retries, st.Chunks, st.ChunksSkipped, len(st.Failures)))
}

// TestTablesInParallelKeepTheirOwnCounts: workers copy the chunks of
// several tables at once, finishing them out of order; each table sees
// TableStart before its rows and TableDone after its last chunk, once, and
// its counts are its own chunks' exactly.
func TestTablesInParallelKeepTheirOwnCounts(t *testing.T) {
	for _, workers := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(workers, " workers"), func(t *testing.T) {
			spec := []testTable{
				{name: "rental", rows: 1000, chunkRows: 100},
				{name: "actor", rows: 200, chunkRows: 100},
				{name: "film", rows: 330, chunkRows: 100, done: []int{1}},
				{name: "staff", rows: 2, chunkRows: 100, done: []int{0}},
				{name: "nokey", rows: 50},
			}
			p := &recProgress{events: map[string][]string{}}
			q := newChunkQueue()
			var tables []*tableCopy
			for i, tt := range spec {
				tc := tt.copy(i)
				tables = append(tables, tc)
				if len(tc.todo) == 0 {
					tc.finish(p)
				} else {
					q.add(tc)
				}
			}
			q.close()
			var running, most atomic.Int64
			var copied sync.Map // "table:chunk" → true
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					err := q.work(context.Background(), func(_ context.Context, job chunkJob) error {
						n := running.Add(1)
						defer running.Add(-1)
						for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
						}
						tc := job.table
						tc.begin(p)
						if _, dup := copied.LoadOrStore(fmt.Sprint(tc.name, ":", job.chunk.Index), true); dup {
							t.Errorf("%s chunk %d copied twice", tc.name, job.chunk.Index)
						}
						// Each chunk of 10 rows, two batches; one retry per
						// chunk; the actor table's rows all fail on worker 0.
						for range 2 {
							p.Add(tc.name, 5)
						}
						var fails []RowFailure
						if tc.tp.Source.Name == "actor" {
							fails = []RowFailure{{Table: tc.name}}
						}
						time.Sleep(time.Duration(w) * 100 * time.Microsecond) // workers of different speeds: chunks finish out of order
						tc.add(10, SinkStats{Items: 10, Records: 9, Retries: 1}, fails)
						tc.chunkDone(p)
						return nil
					})
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if most.Load() > int64(workers) {
				t.Errorf("%d chunks copied at once by %d workers", most.Load(), workers)
			}
			for _, e := range p.errs {
				t.Error(e)
			}
			want := map[string]string{
				"public.rental": "done rows=100 items=100 records=90 retries=10 chunks=10 skipped=0 failures=0",
				"public.actor":  "done rows=20 items=20 records=18 retries=2 chunks=2 skipped=0 failures=2",
				"public.film":   "done rows=30 items=30 records=27 retries=3 chunks=4 skipped=1 failures=0",
				"public.staff":  "done rows=0 items=0 records=0 retries=0 chunks=1 skipped=1 failures=0",
				"public.nokey":  "done rows=10 items=10 records=9 retries=1 chunks=1 skipped=0 failures=0",
			}
			for table, w := range want {
				ev := p.events[table]
				if len(ev) == 0 || ev[len(ev)-1] != w {
					t.Errorf("%s: events %v, want last %q", table, ev, w)
				}
			}
			if ev := p.events["public.film"]; len(ev) == 0 || ev[0] != "start 330 100" {
				t.Errorf("film: first event %v, want TableStart with 100 rows done before", ev)
			}
			var summary []string
			for _, tc := range tables {
				if st := tc.result(p); st != nil {
					summary = append(summary, st.Table)
				}
			}
			if want := "public.rental public.actor public.film public.staff public.nokey"; strings.Join(summary, " ") != want {
				t.Errorf("summary order %v, want the plan's: %s", summary, want)
			}
		})
	}
}

// TestWorkStopsAtTheFirstError: a failing chunk stops its worker with the
// error; a stopped run's open tables are closed once, with what they did.
func TestWorkStopsAtTheFirstError(t *testing.T) {
	p := &recProgress{events: map[string][]string{}}
	q := newChunkQueue()
	tc := testTable{name: "rental", rows: 500, chunkRows: 100}.copy(0)
	never := testTable{name: "film", rows: 5, chunkRows: 100}.copy(1)
	q.add(tc)
	q.add(never)
	q.close()
	boom := errors.New("boom")
	err := q.work(context.Background(), func(_ context.Context, job chunkJob) error {
		job.table.begin(p)
		if job.chunk.Index == 2 {
			job.table.add(3, SinkStats{Items: 3}, nil)
			return boom
		}
		job.table.add(100, SinkStats{Items: 100}, nil)
		job.table.chunkDone(p)
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("work: %v, want boom", err)
	}
	st := tc.result(p)
	if st == nil || st.Rows != 203 || st.Items != 203 {
		t.Fatalf("stopped table's stats %+v, want 203 rows", st)
	}
	tc.result(p) // a second call does not close it again
	if never.result(p) != nil {
		t.Error("a table that never started is in the summary")
	}
	for _, e := range p.errs {
		t.Error(e)
	}
	if ev := p.events["public.rental"]; !slices.Contains(ev, "done rows=203 items=203 records=0 retries=0 chunks=5 skipped=0 failures=0") {
		t.Errorf("rental events %v", ev)
	}
}

func TestPlanningOrder(t *testing.T) {
	var tables []*tableCopy
	for i, tt := range []testTable{{name: "rental", estimate: 16044}, {name: "unknown", estimate: -1}, {name: "actor", estimate: 200}, {name: "language", estimate: 6}, {name: "new", estimate: 0}} {
		tables = append(tables, tt.copy(i))
	}
	var got []string
	for _, t := range planningOrder(tables) {
		got = append(got, t.tp.Source.Name)
	}
	if want := "unknown new language actor rental"; strings.Join(got, " ") != want {
		t.Errorf("planning order %v, want %s", got, want)
	}
}

func TestLargestChunk(t *testing.T) {
	for _, tc := range []struct {
		rows   int64
		chunks int
		want   int64
	}{{0, 1, 0}, {7, 1, 7}, {1000, 10, 100}, {1001, 11, 91}, {1001, 2, 501}, {5, 0, 5}} {
		p := &chunkPlan{Rows: tc.rows, Chunks: make([]extract.Chunk, tc.chunks)}
		if got := largestChunk(p); got != tc.want {
			t.Errorf("largestChunk(%d rows, %d chunks) = %d, want %d", tc.rows, tc.chunks, got, tc.want)
		}
	}
}
