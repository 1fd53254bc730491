package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/load/ddbjson"
)

// Item is one DynamoDB item (or key).
type Item = map[string]types.AttributeValue

// DynamoDB BatchWriteItem limit and writer defaults.
const (
	MaxBatchWriteItems   = 25
	DefaultDynamoWorkers = 8
)

// WriteRequest is one put or delete for BatchWriteItem.
type WriteRequest struct {
	Table string
	// KeyID is the identity of the item's primary key (e.g. pk+"\x00"+sk).
	// It is used to never put two writes for one key in one batch and to keep
	// the writes for one key in order. Required.
	KeyID string
	// Exactly one of Put, PutJSON and Delete is set; Delete holds only the
	// key attributes. PutJSON is an item already in DynamoDB's JSON wire
	// form (the backfill's): it is sent as written, without ever becoming
	// an SDK item.
	Put     Item
	PutJSON ddbjson.Item
	Delete  Item
	// Ref is opaque to the writer and returned in failures.
	Ref any
}

func (r WriteRequest) validate() error {
	var errs []error
	if r.Table == "" {
		errs = append(errs, errors.New("no table"))
	}
	if r.KeyID == "" {
		errs = append(errs, errors.New("no KeyID"))
	}
	n := 0
	for _, set := range []bool{r.Put != nil, r.PutJSON.JSON != nil, r.Delete != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		errs = append(errs, errors.New("need exactly one of Put, PutJSON and Delete"))
	}
	if r.PutJSON.JSON != nil {
		errs = append(errs, r.PutJSON.Valid())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("table %q key %q: %w: %w", r.Table, keyText(r.KeyID), ErrInvalidRequest, err)
	}
	return nil
}

// DynamoConfig configures a [DynamoWriter].
type DynamoConfig struct {
	// Workers is the number of BatchWriteItem calls in flight per Write
	// call. Default 8.
	Workers int
	// Backoff paces the retries of UnprocessedItems. Default: see [Backoff].
	Backoff Backoff
	// Logger receives retry and failure messages. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every invalid field, joined.
func (c DynamoConfig) Validate() error {
	var errs []error
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("dynamo: Workers %d is negative", c.Workers))
	}
	errs = append(errs, c.Backoff.Validate())
	return errors.Join(errs...)
}

func (c DynamoConfig) withDefaults() DynamoConfig {
	if c.Workers <= 0 {
		c.Workers = DefaultDynamoWorkers
	}
	c.Backoff = c.Backoff.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Stats counts a writer's work since it was created.
type Stats struct {
	Written int64 // requests applied
	Retries int64 // retries of unprocessed items
	Batches int64 // BatchWriteItem calls
}

// Failure is a request that can never be written as it is.
type Failure struct {
	Req WriteRequest
	Err error
}

// dynamoAPI is the part of *dynamodb.Client the writer uses. Implementations
// must be safe for concurrent use.
type dynamoAPI interface {
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// DynamoWriter writes items to DynamoDB. It is safe for concurrent use.
type DynamoWriter struct {
	api dynamoAPI
	cfg DynamoConfig

	written, retries, batches atomic.Int64
	batchSeq                  atomic.Int64
}

// NewDynamoWriter returns a writer using client; zero config fields take
// their defaults.
func NewDynamoWriter(client *dynamodb.Client, cfg DynamoConfig) *DynamoWriter {
	return newDynamoWriter(client, cfg)
}

func newDynamoWriter(api dynamoAPI, cfg DynamoConfig) *DynamoWriter {
	return &DynamoWriter{api: api, cfg: cfg.withDefaults()}
}

// Stats returns the counters so far.
func (w *DynamoWriter) Stats() Stats {
	return Stats{Written: w.written.Load(), Retries: w.retries.Load(), Batches: w.batches.Load()}
}

// indexed is a request with its position in the Write call.
type indexed struct {
	i   int
	req WriteRequest
}

type indexedFailure struct {
	i int
	f Failure
}

// Write writes all requests, in order per (Table, KeyID): a later write for
// a key is never applied before an earlier one. Requests go out as
// BatchWriteItem calls of at most 25 requests (a batch may span tables),
// never two for one key in a batch, up to Workers calls in flight.
//
// UnprocessedItems are retried with the Backoff. A batch rejected with a
// ValidationException is retried item by item (PutItem/DeleteItem); the
// requests that are still rejected, and requests that are malformed
// (wrapping [ErrInvalidRequest]), are returned as Failures in input order;
// the rest are written.
//
// A non-retryable error of a whole request, an exhausted retry budget
// (wrapping [ErrRetriesExhausted]) or ctx cancellation stops the call and
// returns an error, with the failures found so far; requests not yet
// reported may or may not have been written. Write blocks until done and is
// safe for concurrent use (calls do not order against each other).
func (w *DynamoWriter) Write(ctx context.Context, reqs []WriteRequest) ([]Failure, error) {
	return w.WriteCounted(ctx, reqs, nil)
}

// WriteCounted is Write that also counts the requests it applied and the
// retries it made in t (nil: not counted), as well as in the writer's Stats.
// A call that returns an error has counted what it did before it stopped.
func (w *DynamoWriter) WriteCounted(ctx context.Context, reqs []WriteRequest, t *Tally) ([]Failure, error) {
	var failures []indexedFailure
	valid := make([]indexed, 0, len(reqs))
	for i, r := range reqs {
		if err := r.validate(); err != nil {
			failures = append(failures, indexedFailure{i, Failure{Req: r, Err: err}})
			continue
		}
		valid = append(valid, indexed{i, r})
	}
	var err error
	for _, round := range splitRounds(valid) {
		var f []indexedFailure
		f, err = w.writeRound(ctx, round, t)
		failures = append(failures, f...)
		if err != nil {
			break
		}
	}
	slices.SortFunc(failures, func(a, b indexedFailure) int { return a.i - b.i })
	out := make([]Failure, len(failures))
	for i, f := range failures {
		out[i] = f.f
	}
	return out, err
}

type tableKey struct{ table, key string }

// splitRounds puts the n-th write of each (Table, KeyID) into round n,
// keeping input order inside a round: each round holds every key at most
// once, and running rounds one after the other keeps per-key order.
func splitRounds(reqs []indexed) [][]indexed {
	seen := make(map[tableKey]int, len(reqs))
	var rounds [][]indexed
	for _, r := range reqs {
		k := tableKey{r.req.Table, r.req.KeyID}
		n := seen[k]
		seen[k] = n + 1
		if n == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[n] = append(rounds[n], r)
	}
	return rounds
}

// writeRound writes requests with distinct keys, in batches of 25, up to
// Workers batches at once. Puts in the wire form go in batches of their
// own (their body is written by ferry, the others' by the SDK); inside a
// round keys are distinct, so the order between batches does not matter.
func (w *DynamoWriter) writeRound(ctx context.Context, reqs []indexed, t *Tally) ([]indexedFailure, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.cfg.Workers)
	var (
		mu       sync.Mutex
		failures []indexedFailure
	)
	for _, batch := range batches(reqs) {
		g.Go(func() error {
			f, err := w.writeBatch(gctx, batch, t)
			if len(f) > 0 {
				mu.Lock()
				failures = append(failures, f...)
				mu.Unlock()
			}
			return err
		})
	}
	err := g.Wait()
	return failures, err
}

// batches cuts a round into batches of at most 25 requests, the puts in
// the wire form apart from the others.
func batches(reqs []indexed) [][]indexed {
	wire := 0
	for _, r := range reqs {
		if r.req.PutJSON.JSON != nil {
			wire++
		}
	}
	if wire == 0 || wire == len(reqs) {
		return chunk(reqs, nil)
	}
	split := make([]indexed, 0, len(reqs))
	for _, r := range reqs {
		if r.req.PutJSON.JSON != nil {
			split = append(split, r)
		}
	}
	for _, r := range reqs {
		if r.req.PutJSON.JSON == nil {
			split = append(split, r)
		}
	}
	return chunk(split[wire:], chunk(split[:wire], nil))
}

// chunk appends reqs cut into batches of at most 25 to out.
func chunk(reqs []indexed, out [][]indexed) [][]indexed {
	for start := 0; start < len(reqs); start += MaxBatchWriteItems {
		end := min(start+MaxBatchWriteItems, len(reqs))
		out = append(out, reqs[start:end:end])
	}
	return out
}

// errUnprocessed is a batch step's report that requests are left: the one
// failure the partial-batch retry loops retry.
var errUnprocessed = errors.New("requests left unprocessed")

// writeBatch writes up to 25 requests with distinct keys, retrying
// UnprocessedItems until all are in or the budget is spent. Only the
// unprocessed items are retried; an error of the whole call ends it.
func (w *DynamoWriter) writeBatch(ctx context.Context, batch []indexed, t *Tally) ([]indexedFailure, error) {
	id := w.batchSeq.Add(1)
	pending := batch
	var failures []indexedFailure
	err := RetryLoop{
		Backoff:   w.cfg.Backoff,
		Retryable: func(err error) bool { return errors.Is(err, errUnprocessed) },
		OnRetry: func(attempt int, _ error) {
			w.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "dynamodb: retrying unprocessed items",
				slog.String("table", batchTables(pending)), slog.Int64("batch", id),
				slog.Int("attempt", attempt), slog.Int("items", len(pending)))
		},
		GiveUp: func(_, reason error) error {
			return fmt.Errorf("dynamodb batch %d (table %s): %d unprocessed items: %w",
				id, batchTables(pending), len(pending), reason)
		},
	}.Do(ctx, func(attempt int) error {
		if attempt > 0 {
			w.retries.Add(1)
			t.addRetry()
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("dynamodb batch %d: %w", id, err)
		}
		w.batches.Add(1)
		var out *dynamodb.BatchWriteItemOutput
		var err error
		if pending[0].req.PutJSON.JSON != nil {
			out, err = batchWriteJSON(ctx, w.api, pending)
		} else {
			out, err = w.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: requestItems(pending)})
		}
		if err != nil {
			if isValidation(err) {
				failures, err = w.writeOneByOne(ctx, id, pending, err, t)
				return err
			}
			return fmt.Errorf("dynamodb batch %d (table %s): BatchWriteItem: %w", id, batchTables(pending), err)
		}
		next := unprocessed(pending, out.UnprocessedItems)
		w.written.Add(int64(len(pending) - len(next)))
		t.addDone(int64(len(pending) - len(next)))
		if len(next) == 0 {
			return nil
		}
		pending = next
		return errUnprocessed
	})
	return failures, err
}

func requestItems(reqs []indexed) map[string][]types.WriteRequest {
	m := make(map[string][]types.WriteRequest)
	for _, r := range reqs {
		var wr types.WriteRequest
		if r.req.Put != nil {
			wr.PutRequest = &types.PutRequest{Item: r.req.Put}
		} else {
			wr.DeleteRequest = &types.DeleteRequest{Key: r.req.Delete}
		}
		m[r.req.Table] = append(m[r.req.Table], wr)
	}
	return m
}

// unprocessed maps UnprocessedItems back to the pending requests, keeping
// their order. When an entry matches no request (the service changed its
// form), every pending request is sent again: inside a round keys are
// distinct and writes unconditional, so resending a written one is harmless.
func unprocessed(pending []indexed, um map[string][]types.WriteRequest) []indexed {
	n := 0
	for _, l := range um {
		n += len(l)
	}
	if n == 0 {
		return nil
	}
	if n > len(pending) {
		return pending
	}
	used := make([]bool, len(pending))
	for table, list := range um {
		for _, wr := range list {
			j := matchRequest(pending, used, table, wr)
			if j < 0 {
				return pending
			}
			used[j] = true
		}
	}
	next := make([]indexed, 0, n)
	for j, p := range pending {
		if used[j] {
			next = append(next, p)
		}
	}
	return next
}

func matchRequest(pending []indexed, used []bool, table string, wr types.WriteRequest) int {
	for j, p := range pending {
		if used[j] || p.req.Table != table {
			continue
		}
		if wr.PutRequest != nil && p.req.Put != nil && itemsEqual(p.req.Put, wr.PutRequest.Item) ||
			wr.PutRequest != nil && p.req.PutJSON.JSON != nil && keyMatches(p.req.PutJSON, wr.PutRequest.Item) ||
			wr.DeleteRequest != nil && p.req.Delete != nil && itemsEqual(p.req.Delete, wr.DeleteRequest.Key) {
			return j
		}
	}
	return -1
}

// writeOneByOne writes a batch that DynamoDB rejected as invalid one item at
// a time, to find the items that can never be written.
func (w *DynamoWriter) writeOneByOne(ctx context.Context, id int64, pending []indexed, cause error, t *Tally) ([]indexedFailure, error) {
	w.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "dynamodb: batch rejected, writing its items one by one",
		slog.String("table", batchTables(pending)), slog.Int64("batch", id), slog.Any("error", cause))
	var failures []indexedFailure
	for _, p := range pending {
		err := w.writeOne(ctx, p.req)
		switch {
		case err == nil:
			w.written.Add(1)
			t.addDone(1)
		case isValidation(err):
			w.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "dynamodb: item rejected",
				slog.String("table", p.req.Table), slog.Int64("batch", id),
				slog.String("key", p.req.KeyID), slog.Any("error", err))
			failures = append(failures, indexedFailure{p.i, Failure{Req: p.req,
				Err: fmt.Errorf("table %s key %q: %w", p.req.Table, keyText(p.req.KeyID), err)}})
		default:
			return failures, fmt.Errorf("dynamodb batch %d: table %s key %q: %w", id, p.req.Table, keyText(p.req.KeyID), err)
		}
	}
	return failures, nil
}

func (w *DynamoWriter) writeOne(ctx context.Context, r WriteRequest) error {
	if r.PutJSON.JSON != nil {
		return putItemJSON(ctx, w.api, r)
	}
	if r.Put != nil {
		_, err := w.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: &r.Table, Item: r.Put})
		return err
	}
	_, err := w.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &r.Table, Key: r.Delete})
	return err
}

// batchTables names the distinct tables of a batch, for messages.
func batchTables(reqs []indexed) string {
	var names []string
	for _, r := range reqs {
		if !slices.Contains(names, r.req.Table) {
			names = append(names, r.req.Table)
		}
	}
	return strings.Join(names, ",")
}

// keyText renders a KeyID (partition and sort key joined by NUL) for people:
// "pk / sk".
func keyText(id string) string { return strings.ReplaceAll(id, "\x00", " / ") }
