// Package metrics exposes what a running `ferry backfill` or `ferry sync` is
// doing: Prometheus metrics at /metrics and a live status page at / (its data
// at /status.json), on the address of --metrics-addr.
//
// Most values are read on scrape from what the pipelines already keep: the
// backfill's progress events (a [pipeline.Progress] wrapper), sync's periodic
// [pipeline.SyncStatus], the writers' cumulative statistics and the
// dead-letter count. A few are observed as they happen: batch latencies
// (a [pipeline.Sink] wrapper and [pipeline.SyncObserver]), sync's retries,
// and every failed AWS request attempt (an SDK middleware, see
// [Metrics.AWSMiddleware]), which is where throttling shows.
//
// A Metrics is safe for concurrent use. Its hooks never block on the
// HTTP side: they update counters under a short lock.
package metrics

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
)

// DefaultSampleEvery is how often the status page's lag chart takes a
// sample; DefaultSamples of them cover the last hour.
const (
	DefaultSampleEvery = 10 * time.Second
	DefaultSamples     = 360
)

// Metrics collects ferry's metrics and the status page's state.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	batch  *prometheus.HistogramVec // by pipeline: backfill, sync
	commit prometheus.Histogram     // commit → applied, sync

	mu      sync.Mutex
	command string
	slot    string
	tables  map[string]*tableState
	order   []string // tables in the order they started
	retries map[string]int64
	throttl map[string]int64
	dynamo  *load.DynamoWriter
	kinesis *load.KinesisWriter
	// base holds the counts of writers replaced by WatchWriters (sync
	// starts again with new ones when it adds tables), so counters only grow.
	base   writerCounts
	dead   *pipeline.DeadLetter
	sync   *pipeline.SyncStatus
	syncAt time.Time
	budget int64
	lag    *ring
	slotFn func(context.Context) (*SlotState, error)
	verify func(context.Context) (*pipeline.VerifyRecord, error)
}

type tableState struct {
	estimated, read int64
	before          int64 // rows of finished chunks of earlier runs
	done            bool
}

// New returns an empty Metrics for the command ("backfill" or "sync") on
// the slot, with Go runtime and process collectors registered beside
// ferry's own.
func New(command, slot string) *Metrics {
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		now:     time.Now,
		command: command,
		slot:    slot,
		tables:  map[string]*tableState{},
		retries: map[string]int64{},
		throttl: map[string]int64{},
		lag:     newRing(DefaultSamples, DefaultSampleEvery),
	}
	m.batch = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_batch_duration_seconds",
		Help:    "Time to make one batch durable in DynamoDB and Kinesis, by pipeline (backfill, sync).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"pipeline"})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ferry_commit_to_applied_seconds",
		Help:    "Time from a source commit to its change being durable in both targets (per batch, its oldest change).",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
	})
	m.reg.MustRegister(m.batch, m.commit, collector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// writerCounts are the writers' cumulative counts.
type writerCounts struct {
	items, records, dynamoRetries, kinesisRetries int64
}

func (m *Metrics) writerCounts() writerCounts {
	c := m.base
	if m.dynamo != nil {
		st := m.dynamo.Stats()
		c.items += st.Written
		c.dynamoRetries += st.Retries
	}
	if m.kinesis != nil {
		st := m.kinesis.Stats()
		c.records += st.Put
		c.kinesisRetries += st.Retries
	}
	return c
}

// WatchWriters makes the writers' cumulative statistics (items and records
// written, entries retried) part of the metrics. Writers it watched before
// keep their counts.
func (m *Metrics) WatchWriters(d *load.DynamoWriter, k *load.KinesisWriter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.base = m.writerCounts()
	m.dynamo, m.kinesis = d, k
}

// WatchDeadLetter makes the dead-letter file's count a metric (nil: none).
func (m *Metrics) WatchDeadLetter(d *pipeline.DeadLetter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dead = d
}

// SetWALBudget records sync's retained-WAL budget (--wal-budget).
func (m *Metrics) SetWALBudget(b int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.budget = b
}

// SetSlotSource sets how the status page reads the slot's state.
func (m *Metrics) SetSlotSource(fn func(context.Context) (*SlotState, error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.slotFn = fn
}

// SetVerifySource sets how the status page reads the last verify's verdict
// (nil record: verify has not run).
func (m *Metrics) SetVerifySource(fn func(context.Context) (*pipeline.VerifyRecord, error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.verify = fn
}

// Progress wraps a backfill's progress (next may be nil) so that every
// event also updates the per-table metrics.
func (m *Metrics) Progress(next pipeline.Progress) pipeline.Progress {
	return &progress{m: m, next: next}
}

type progress struct {
	m    *Metrics
	next pipeline.Progress
}

func (p *progress) table(name string) *tableState {
	t := p.m.tables[name]
	if t == nil {
		t = &tableState{}
		p.m.tables[name] = t
		p.m.order = append(p.m.order, name)
	}
	return t
}

func (p *progress) TableStart(table string, rows, doneRows int64) {
	p.m.mu.Lock()
	t := p.table(table)
	t.estimated, t.before, t.read = rows, doneRows, doneRows
	p.m.mu.Unlock()
	if p.next != nil {
		p.next.TableStart(table, rows, doneRows)
	}
}

func (p *progress) Add(table string, rows int64) {
	p.m.mu.Lock()
	p.table(table).read += rows
	p.m.mu.Unlock()
	if p.next != nil {
		p.next.Add(table, rows)
	}
}

// TableDone settles the table's count on the rows the backfill read (Add
// counts the rows of written batches; rows that failed were read too).
func (p *progress) TableDone(st *pipeline.TableStats) {
	p.m.mu.Lock()
	t := p.table(st.Table)
	t.done = true
	t.read = max(t.read, t.before+st.Rows)
	p.m.mu.Unlock()
	if p.next != nil {
		p.next.TableDone(st)
	}
}

// SeedBackfill shows a backfill that an earlier process ran (as recorded in
// the control table), for a sync that starts with it complete: each table
// with the rows of its finished chunks, done when every chunk is.
func (m *Metrics) SeedBackfill(tables []pipeline.RecordedTable) {
	slices.SortFunc(tables, func(a, b pipeline.RecordedTable) int { return strings.Compare(a.Table, b.Table) })
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rt := range tables {
		if _, ok := m.tables[rt.Table]; ok {
			continue
		}
		m.tables[rt.Table] = &tableState{estimated: rt.Planned, read: rt.Rows, before: rt.Rows, done: rt.ChunksDone >= rt.Chunks}
		m.order = append(m.order, rt.Table)
	}
}

// Sink wraps a backfill's sink so that each batch's latency is observed.
func (m *Metrics) Sink(next pipeline.Sink) pipeline.Sink {
	return &timedSink{Sink: next, h: m.batch.WithLabelValues("backfill")}
}

type timedSink struct {
	pipeline.Sink
	h prometheus.Observer
}

func (s *timedSink) Write(ctx context.Context, b *pipeline.Batch) (pipeline.SinkStats, []pipeline.RowFailure, error) {
	start := time.Now()
	st, f, err := s.Sink.Write(ctx, b)
	if err == nil {
		s.h.Observe(time.Since(start).Seconds())
	}
	return st, f, err
}

// SyncStatus wraps sync's status callback (next may be nil): the status is
// kept for scrapes and the page, and sampled into the lag chart.
func (m *Metrics) SyncStatus(next func(pipeline.SyncStatus)) func(pipeline.SyncStatus) {
	return func(st pipeline.SyncStatus) {
		m.mu.Lock()
		now := m.now()
		m.sync, m.syncAt = &st, now
		m.lag.add(LagSample{Time: now, Seconds: st.LagSeconds, Bytes: st.LagBytes, RetainedWAL: st.RetainedWAL})
		m.mu.Unlock()
		if next != nil {
			next(st)
		}
	}
}

// BatchApplied implements [pipeline.SyncObserver].
func (m *Metrics) BatchApplied(changes int, took time.Duration, oldest, _ time.Time) {
	m.batch.WithLabelValues("sync").Observe(took.Seconds())
	if !oldest.IsZero() && changes > 0 {
		m.commit.Observe(max(0, m.now().Sub(oldest).Seconds()))
	}
}

// Retry implements [pipeline.SyncObserver].
func (m *Metrics) Retry(what string) {
	kind := "sync_other"
	switch what {
	case "applying a batch":
		kind = "sync_batch"
	case "checkpoint":
		kind = "sync_checkpoint"
	}
	m.mu.Lock()
	m.retries[kind]++
	m.mu.Unlock()
}

var _ pipeline.SyncObserver = (*Metrics)(nil)

// AWSMiddleware adds a step to an AWS client's middleware stack (append it
// to aws.Config.APIOptions) that sees every attempt of every request, after
// the SDK's retry step: each failed attempt that the SDK may retry is
// counted by kind (throttle, server_error, transport), throttles also per
// service.
func (m *Metrics) AWSMiddleware(stack *middleware.Stack) error {
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("FerryMetrics",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleFinalize(ctx, in)
			if err != nil {
				m.attemptFailed(awsmiddleware.GetServiceID(ctx), err)
			}
			return out, md, err
		}), "Retry", middleware.After)
}

// throttleCodes are the error codes of a throttled request.
var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"Throttling":                             true,
	"ThrottledException":                     true,
	"RequestLimitExceeded":                   true,
	"TooManyRequestsException":               true,
	"LimitExceededException":                 true,
	"RequestThrottled":                       true,
	"SlowDown":                               true,
}

// attemptKind classifies a failed attempt: "" for one that is no retry
// (a client error such as a failed condition, or a cancelled context).
func attemptKind(err error) string {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && throttleCodes[ae.ErrorCode()] {
		return "throttle"
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		if re.HTTPStatusCode() >= 500 {
			return "server_error"
		}
		return ""
	}
	if ae != nil {
		return ""
	}
	return "transport"
}

func (m *Metrics) attemptFailed(service string, err error) {
	kind := attemptKind(err)
	if kind == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retries["aws_"+kind]++
	if kind == "throttle" {
		m.throttl[serviceLabel(service)]++
	}
}

func serviceLabel(id string) string {
	switch id {
	case "DynamoDB":
		return "dynamodb"
	case "Kinesis":
		return "kinesis"
	case "":
		return "unknown"
	}
	return id
}
