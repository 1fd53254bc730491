package pipeline

import (
	"cmp"
	"container/heap"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// The backfill copies the chunks of every table from one queue, over
// --workers snapshot connections: no table waits for another to finish, and
// no worker idles at a table's end while the table's last chunks are copied.
//
// The queue hands out the largest pieces of work first (longest processing
// time first, the classic rule for finishing a set of jobs on N workers
// early): the tail of the run is then made of the smallest chunks, and the
// workers finish at about the same time. A table's piece is its largest
// chunk: every chunk of a table with a primary key holds --chunk-rows rows
// but the last, while a table without one is a single chunk of any size,
// which must start first or it runs alone at the end. Between tables of
// equal pieces the table with more rows goes first, and a table's chunks go
// in key order, so that tables finish one after another rather than all at
// the end: their progress lines close early and at most about --workers
// tables are open at once.
//
// Tables join the queue as they are planned (a resumed run's recorded plans
// at once). Planning reads each table's key once, so the planner begins with
// the tables estimated smallest: the first chunks are ready within
// milliseconds, and the big tables, whose planning takes longest, are
// planned while the workers copy the small ones. The queue's order then
// decides among the tables planned so far.
//
// Every chunk is recorded done on its own (leasedChunk) when its rows
// are durable, whatever the order in which tables or chunks finish; a table
// is complete when all its chunks are, and the run when all its tables are.

// tableCopy is one table's part of a backfill: its plan, the chunks left to
// copy and the statistics that the workers copying its chunks add to. It is
// safe for concurrent use.
type tableCopy struct {
	tp    *transform.TablePlan
	name  string
	order int // position in the plan: the summary's order, the queue's last tie-break

	// Set once, when the table is planned (before any chunk is queued).
	plan     *chunkPlan
	todo     []extract.Chunk // the chunks not done by an earlier run
	doneRows int64           // rows of the chunks done by an earlier run
	piece    int64           // rows of its largest chunk (estimated): the queue's first key

	began   sync.Once
	mu      sync.Mutex
	started bool
	start   time.Time // when its first chunk started
	pending int       // chunks queued or being copied
	closed  bool      // TableDone was called
	st      TableStats
}

func newTableCopy(tp *transform.TablePlan, order int) *tableCopy {
	name := tp.Source.QualifiedName()
	return &tableCopy{tp: tp, name: name, order: order, st: TableStats{Table: name}}
}

// setPlan records the table's chunks, leaving out those an earlier run
// finished (done: chunk index → rows).
func (t *tableCopy) setPlan(plan *chunkPlan, done map[int]int64) {
	t.plan = plan
	t.st.Chunks = len(plan.Chunks)
	for _, ch := range plan.Chunks {
		if rows, ok := done[ch.Index]; ok {
			t.st.ChunksSkipped++
			t.doneRows += rows
			continue
		}
		t.todo = append(t.todo, ch)
	}
	t.pending = len(t.todo)
	t.piece = largestChunk(plan)
}

// largestChunk estimates the rows of a plan's largest chunk: all of them
// for a single chunk, else the rows spread evenly (every chunk but the last
// is full, so this is within a factor of two, and exact for many chunks;
// it only orders the queue).
func largestChunk(p *chunkPlan) int64 {
	n := int64(max(len(p.Chunks), 1))
	return (p.Rows + n - 1) / n
}

// begin marks the table started when its first chunk starts: the progress
// sees TableStart once, before any of the table's Add calls (a second worker
// starting a chunk of the table waits until it returned).
func (t *tableCopy) begin(p Progress) {
	t.began.Do(func() {
		t.mu.Lock()
		t.started, t.start = true, time.Now()
		t.mu.Unlock()
		p.TableStart(t.name, t.plan.Rows, t.doneRows)
	})
}

// add counts what copying one of its chunks did (also after an error).
func (t *tableCopy) add(rows int64, w SinkStats, fails []RowFailure) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.Rows += rows
	t.st.Items += w.Items
	t.st.Records += w.Records
	t.st.Retries += w.Retries
	t.st.Failures = append(t.st.Failures, fails...)
}

// elsewhere counts a chunk another worker recorded done in this run.
func (t *tableCopy) elsewhere() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.ChunksElsewhere++
}

// lost counts a chunk whose lease was lost while this worker copied it
// (its rows count to the worker that records it); what the sink did for
// it still counts.
func (t *tableCopy) lost(w SinkStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.ChunksLost++
	t.st.Retries += w.Retries
}

// chunkDone is called after a chunk's rows were counted (add) and its
// outcome recorded; after the table's last chunk the progress sees
// TableDone.
func (t *tableCopy) chunkDone(p Progress) {
	t.mu.Lock()
	t.pending--
	last := t.pending == 0
	t.mu.Unlock()
	if last {
		t.finish(p)
	}
}

// finish closes the table: its duration is set and the progress sees
// TableDone, once. A table with nothing left to copy is started and
// finished at once; a run that stops finishes the tables it started.
func (t *tableCopy) finish(p Progress) {
	t.begin(p)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	if len(t.todo) > 0 {
		t.st.Duration = time.Since(t.start)
	}
	st := t.stats()
	t.mu.Unlock()
	p.TableDone(st)
}

// stats returns a copy of the table's statistics; t.mu is held.
func (t *tableCopy) stats() *TableStats {
	st := t.st
	st.Failures = slices.Clone(t.st.Failures)
	return &st
}

// result returns the table's statistics for the summary, nil when it never
// started. A table still open (the run stopped) is finished first.
func (t *tableCopy) result(p Progress) *TableStats {
	t.mu.Lock()
	started := t.started
	t.mu.Unlock()
	if !started {
		return nil
	}
	t.finish(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats()
}

// chunkJob is one chunk of one table.
type chunkJob struct {
	table *tableCopy
	chunk extract.Chunk
}

// before reports whether a is handed out before b (see the top of the file).
func (a chunkJob) before(b chunkJob) bool {
	ta, tb := a.table, b.table
	switch {
	case ta.piece != tb.piece:
		return ta.piece > tb.piece
	case ta.plan.Rows != tb.plan.Rows:
		return ta.plan.Rows > tb.plan.Rows
	case ta.order != tb.order:
		return ta.order < tb.order
	}
	return a.chunk.Index < b.chunk.Index
}

// chunkQueue is the backfill's queue of chunks, shared by its workers: a
// planner adds tables, workers take chunks, largest first (chunkJob.before).
// It is safe for concurrent use.
type chunkQueue struct {
	mu      sync.Mutex
	jobs    jobHeap
	later   int // chunks put back (retry) and not yet queued again
	closed  bool
	changed chan struct{} // closed (and replaced) when jobs are added or the queue closes
}

func newChunkQueue() *chunkQueue {
	return &chunkQueue{changed: make(chan struct{})}
}

// add queues the table's chunks left to copy (tableCopy.setPlan was
// called). Adding to a closed queue panics: the planner closes it after
// its last table.
func (q *chunkQueue) add(t *tableCopy) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		panic("pipeline: chunk added to a closed queue")
	}
	for _, ch := range t.todo {
		heap.Push(&q.jobs, chunkJob{table: t, chunk: ch})
	}
	q.wake()
}

// close says that no more tables come: workers end once the queue is
// empty. It may be called more than once.
func (q *chunkQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		q.wake()
	}
}

// retry queues job again after d: a chunk another worker holds (or took
// over from this one), to be looked at again once its lease may have run
// out. Until then the workers do not end: the chunk may still fall to them.
func (q *chunkQueue) retry(job chunkJob, d time.Duration) {
	q.mu.Lock()
	q.later++
	q.mu.Unlock()
	time.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.later--
		heap.Push(&q.jobs, job)
		q.wake()
	})
}

// wake lets every waiting worker look again; q.mu is held.
func (q *chunkQueue) wake() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// next blocks until a chunk is available and returns the first one; ok is
// false when the queue is closed and empty, with no chunk to retry. It returns ctx's error when ctx
// ends first.
func (q *chunkQueue) next(ctx context.Context) (job chunkJob, ok bool, err error) {
	for {
		q.mu.Lock()
		if len(q.jobs) > 0 {
			job = heap.Pop(&q.jobs).(chunkJob)
			q.mu.Unlock()
			return job, true, nil
		}
		if q.closed && q.later == 0 {
			q.mu.Unlock()
			return chunkJob{}, false, nil
		}
		changed := q.changed
		q.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return chunkJob{}, false, ctx.Err()
		}
	}
}

// work takes chunks and runs fn on each, until the queue is closed and
// empty (nil), fn fails (its error) or ctx ends (ctx's error). Each worker
// of a backfill runs it on its own connection.
func (q *chunkQueue) work(ctx context.Context, fn func(context.Context, chunkJob) error) error {
	for {
		job, ok, err := q.next(ctx)
		if err != nil || !ok {
			return err
		}
		if err := fn(ctx, job); err != nil {
			return err
		}
	}
}

// jobHeap is a container/heap of chunks, the first by chunkJob.before on top.
type jobHeap []chunkJob

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].before(h[j]) }
func (h jobHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)        { *h = append(*h, x.(chunkJob)) }
func (h *jobHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	old[n-1] = chunkJob{}
	*h = old[:n-1]
	return x
}

// planningOrder returns the tables in the order the planner plans them:
// smallest estimate first (tables without an estimate count as empty),
// plan order between equals.
func planningOrder(tables []*tableCopy) []*tableCopy {
	out := slices.Clone(tables)
	slices.SortStableFunc(out, func(a, b *tableCopy) int {
		return cmp.Compare(max(a.tp.Source.EstimatedRows, 0), max(b.tp.Source.EstimatedRows, 0))
	})
	return out
}
