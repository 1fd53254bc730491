package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/metrics"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
)

// monitor is the --metrics-addr server of a backfill or sync: Prometheus
// metrics and the live status page (see internal/metrics). A nil *monitor
// is off.
type monitor struct {
	*metrics.Metrics
}

// startMetrics serves metrics and the status page on addr until ctx ends;
// nil when addr is empty. A failure to listen is a usage error (exit 2).
func startMetrics(ctx context.Context, command string, cf *commonFlags, addr string) (*monitor, error) {
	if addr == "" {
		return nil, nil
	}
	m := metrics.New(command, cf.slot)
	m.SetSlotSource(slotSource(cf.source, cf.slot))
	if _, err := m.Serve(ctx, addr); err != nil {
		return nil, usagef("--metrics-addr: %v", err)
	}
	return &monitor{m}, nil
}

// watchTargets adds the writers' statistics to the metrics and lets the
// status page read the last verify from the control table.
func (m *monitor) watchTargets(t *targets, slot string, d *load.DynamoWriter, k *load.KinesisWriter) {
	if m == nil {
		return
	}
	m.WatchWriters(d, k)
	m.SetVerifySource(func(ctx context.Context) (*pipeline.VerifyRecord, error) {
		r, err := pipeline.LoadVerifyRecord(ctx, t.control, slot)
		var rnf *types.ResourceNotFoundException
		if errors.As(err, &rnf) {
			return nil, nil
		}
		return r, err
	})
}

// seedBackfill shows the recorded backfill on the status page and in the
// per-table metrics of a sync that did not run it (a failure is logged).
func (m *monitor) seedBackfill(ctx context.Context, ctl *load.ControlStore, slot string) {
	if m == nil {
		return
	}
	tables, err := pipeline.RecordedBackfill(ctx, ctl, slot)
	if err != nil {
		slog.Warn("metrics: the recorded backfill is not shown", "slot", slot, "err", err)
		return
	}
	m.SeedBackfill(tables)
}

// slotSource reads the slot's state for the status page, at most every
// few seconds (each read is a connection to the source).
func slotSource(source, slot string) func(context.Context) (*metrics.SlotState, error) {
	var (
		mu   sync.Mutex
		last *metrics.SlotState
		at   time.Time
	)
	return func(ctx context.Context) (*metrics.SlotState, error) {
		mu.Lock()
		defer mu.Unlock()
		if last != nil && time.Since(at) < 3*time.Second {
			return last, nil
		}
		conn, err := extract.Connect(ctx, source)
		if err != nil {
			return last, redacted(err, source)
		}
		defer conn.Close(context.Background())
		info, ok, err := extract.LookupSlot(ctx, conn, slot)
		if err != nil {
			return last, redacted(err, source)
		}
		s := &metrics.SlotState{Name: slot, Exists: ok}
		if ok {
			s.Active, s.WALStatus, s.RetainedWAL = info.Active, info.WALStatus, info.RetainedBytes
			s.Confirmed, s.Restart = info.ConfirmedFlushLSN.String(), info.RestartLSN.String()
		}
		last, at = s, time.Now()
		return s, nil
	}
}

// redacted is err without the source URL's password (the status page shows
// it).
func redacted(err error, source string) error {
	return errors.New(extract.Redact(err.Error(), source))
}
