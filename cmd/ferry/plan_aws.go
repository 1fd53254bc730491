package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pricing"
	"github.com/ferry-migrate/ferry/transform"
)

// awsFlags are plan --aws's knobs.
type awsFlags struct {
	sample        int
	window        time.Duration
	backfillHours float64
	warmWCU       float64
	retention     time.Duration
	lambdaBatch   float64
	lambdaMemory  float64
	lambdaMillis  float64
	pricesFile    string
}

// exactCountMax: tables estimated above this many rows are not counted
// (count(*) reads the whole table); the estimate is used and said so.
const exactCountMax = 5_000_000

// measureAWS measures the pricing inputs from the source: each table's rows,
// its items' and records' encoded sizes over a random sample, and the change
// and WAL rates over a window.
func measureAWS(ctx context.Context, source string, plan *transform.Plan, f awsFlags, notes *[]string) (pricing.Inputs, []tableSample, error) {
	conn, err := extract.Connect(ctx, source)
	if err != nil {
		return pricing.Inputs{}, nil, usageError{err}
	}
	defer conn.Close(context.Background())
	in := pricing.Inputs{BackfillHours: f.backfillHours, WarmWCU: f.warmWCU, RetentionHours: f.retention.Hours(), Streams: len(plan.Streams()),
		LambdaBatch: f.lambdaBatch, LambdaMemoryMB: f.lambdaMemory, LambdaMillis: f.lambdaMillis}
	var samples []tableSample
	before, wal0, err := changeCounters(ctx, conn, plan)
	if err != nil {
		return in, nil, err
	}
	start := time.Now()
	for _, tp := range plan.Tables {
		s, err := sampleTable(ctx, conn, tp, f.sample)
		if err != nil {
			return in, nil, err
		}
		if s.estimated {
			*notes = append(*notes, fmt.Sprintf("%s: rows estimated from pg_class.reltuples (over %d: not counted)", s.t.Name, exactCountMax))
		}
		samples = append(samples, s)
	}
	// The rest of the window: the change rate is what the source does
	// meanwhile (ferry's own reads above change nothing).
	if rest := f.window - time.Since(start); rest > 0 {
		select {
		case <-ctx.Done():
			return in, nil, ctx.Err()
		case <-time.After(rest):
		}
	}
	after, wal1, err := changeCounters(ctx, conn, plan)
	if err != nil {
		return in, nil, err
	}
	secs := time.Since(start).Seconds()
	in.WALBytesPerSec = float64(wal1-wal0) / secs
	for i := range samples {
		name := samples[i].t.Name
		samples[i].t.ChangesPerSec = float64(after[name]-before[name]) / secs
		in.Tables = append(in.Tables, samples[i].t)
	}
	*notes = append(*notes, fmt.Sprintf("change and WAL rates measured over %.1f s (pg_stat_user_tables, pg_current_wal_lsn)", secs))
	return in, samples, nil
}

// tableSample is a table's measured inputs and its sample's size.
type tableSample struct {
	t         pricing.Table
	sampled   int
	itemBytes float64
	estimated bool
}

func sampleTable(ctx context.Context, conn *pgx.Conn, tp *transform.TablePlan, n int) (tableSample, error) {
	s := tableSample{t: pricing.Table{Name: tp.Source.QualifiedName()}}
	if est := tp.Source.EstimatedRows; est > exactCountMax {
		s.t.Rows, s.estimated = est, true
	} else if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+tp.Source.Ident()).Scan(&s.t.Rows); err != nil {
		return s, fmt.Errorf("count %s: %w", tp.Source.QualifiedName(), err)
	}
	if s.t.Rows == 0 || n <= 0 {
		return s, nil
	}
	k := extract.KeyChunk{Limit: n}
	if p := 1.5 * float64(n) / float64(s.t.Rows); p < 1 {
		k.Where = fmt.Sprintf("random() < %g", p) // about n rows from the whole table
	}
	rows, _, err := extract.ReadKeyChunk(ctx, conn, tp.Source, k)
	if err != nil {
		return s, err
	}
	var writes, items, recBytes, putUnits float64
	now := time.Now()
	src := transform.RecordSource{DB: "sample"}
	for _, row := range rows {
		item, _, err := tp.Item(row, extract.Position{})
		if err != nil {
			continue // a row the target cannot hold: not written, not priced
		}
		size := pricing.ItemSize(item)
		copies := 1
		for _, g := range tp.GSIs {
			if _, ok := item[g.PK.Name]; ok {
				copies++ // GSIs project every attribute: the same size again
			}
		}
		writes += float64(pricing.WriteUnits(size) * copies)
		items += float64(size)
		s.sampled++
		if tp.Stream != "" {
			_, data, err := tp.Record(&extract.Change{Table: tp.Source, Op: extract.OpRead, After: row, Commit: now}, src, now)
			if err == nil {
				recBytes += float64(len(data))
				putUnits += float64(pricing.PutUnits(len(data)))
			}
		}
	}
	if s.sampled > 0 {
		c := float64(s.sampled)
		s.t.WritesPerRow, s.itemBytes = writes/c, items/c
		s.t.RecordBytes, s.t.PutUnitsPerRecord = recBytes/c, putUnits/c
	}
	return s, nil
}

// changeCounters returns, per mapped table, its inserts + updates + deletes
// so far (a partitioned table's are its partitions'), and the WAL position.
func changeCounters(ctx context.Context, conn *pgx.Conn, plan *transform.Plan) (map[string]int64, uint64, error) {
	out := map[string]int64{}
	for _, tp := range plan.Tables {
		var n int64
		err := conn.QueryRow(ctx, `
			SELECT coalesce(sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del), 0)::int8
			FROM pg_partition_tree(to_regclass($1)) t JOIN pg_stat_user_tables s ON s.relid = t.relid`, tp.Source.Ident()).Scan(&n)
		if err != nil {
			return nil, 0, fmt.Errorf("change counters of %s: %w", tp.Source.QualifiedName(), err)
		}
		out[tp.Source.QualifiedName()] = n
	}
	var lsn string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		return nil, 0, fmt.Errorf("WAL position: %w", err)
	}
	pos, err := extract.ParseLSN(lsn)
	if err != nil {
		return nil, 0, err
	}
	return out, uint64(pos), nil
}

// printAWS prints the inputs, the prices and every figure with how it is
// computed.
func printAWS(w io.Writer, in pricing.Inputs, samples []tableSample, p pricing.Prices, e pricing.Estimate, notes []string) {
	fmt.Fprintf(w, "\nAWS estimate (prices: %s, read %s from %s)\n\n", p.Region, p.Date, p.Source)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\trows\tsampled\titem bytes\twrite units/row\trecord bytes\tPUT units/record\tchanges/s\t")
	for _, s := range samples {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.3f\t%.0f\t%.3f\t%.2f\t\n", s.t.Name, s.t.Rows, s.sampled, s.itemBytes,
			s.t.WritesPerRow, s.t.RecordBytes, s.t.PutUnitsPerRecord, s.t.ChangesPerSec)
	}
	tw.Flush()
	fmt.Fprintf(w, "  (write units/row: ⌈item bytes / 1 KB⌉ × (1 + GSIs the item is in), averaged over the sample; PUT units: ⌈record bytes / 25 KB⌉)\n")
	fmt.Fprintf(w, "  WAL: %.0f bytes/s\n\n", in.WALBytesPerSec)

	fmt.Fprintln(w, "Backfill")
	fmt.Fprintf(w, "  DynamoDB write units: Σ rows × write units/row = %.0f\n", e.WriteUnits)
	fmt.Fprintf(w, "  on demand: %.0f / 1e6 × $%g = $%.2f\n", e.WriteUnits, p.DynamoWritePerMillion, e.BackfillOnDemand)
	fmt.Fprintf(w, "  provisioned (for the copy's duration, any rate): %.0f / 3600 WCU-hours × $%g = $%.2f\n", e.WriteUnits, p.DynamoWCUHour, e.BackfillProvisioned)
	fmt.Fprintf(w, "  duration at a new on-demand table's %g writes/s: %.0f / %g / 3600 = %s\n", pricing.OnDemandStartWCU, e.WriteUnits, pricing.OnDemandStartWCU, hours(e.HoursAtStart))
	if in.WarmWCU > 0 {
		fmt.Fprintf(w, "  duration with warm throughput %g writes/s (--warm-wcu): %s\n", in.WarmWCU, hours(e.HoursWarm))
	}
	fmt.Fprintf(w, "  WAL the slot retains meanwhile: WAL/s × duration = %s (start) / %s (warm)\n", humanBytes(int64(e.WALRetainedAtStart)), humanBytes(int64(e.WALRetainedWarm)))
	if e.Records > 0 {
		fmt.Fprintf(w, "  Kinesis: %.0f records, %s, %.0f PUT units; shards to take them in %g h (--backfill-hours): max(⌈bytes/s / 1 MB⌉, ⌈records/s / 1000⌉) = %d\n",
			e.Records, humanBytes(int64(e.RecordBytes)), e.PutUnits, in.BackfillHours, e.BackfillShards)
		fmt.Fprintf(w, "  Kinesis PUT units: %.0f / 1e6 × $%g = $%.4f\n", e.PutUnits, p.KinesisPutPerMillion, e.PutUnits/1e6*p.KinesisPutPerMillion)
	}
	fmt.Fprintln(w, "\nSteady-state CDC, per month (730 h) at the measured change rate")
	fmt.Fprintf(w, "  changes: %.2f/s; DynamoDB write units: Σ changes/s × write units/row = %.2f/s\n", e.ChangesPerSec, e.CDCWriteUnitsPerSec)
	fmt.Fprintf(w, "  DynamoDB on demand: %.2f × 2,628,000 s / 1e6 × $%g = $%.2f\n", e.CDCWriteUnitsPerSec, p.DynamoWritePerMillion, e.CDCDynamoMonth)
	if e.Records > 0 {
		fmt.Fprintf(w, "  Kinesis shards: max(%d streams, ⌈%.0f bytes/s / 1 MB⌉, ⌈%.2f records/s / 1000⌉) = %d; × 730 h × $%g = $%.2f\n",
			max(1, in.Streams), e.CDCBytesPerSec, e.ChangesPerSec, e.CDCShards, p.KinesisShardHour, e.CDCKinesisShardMonth)
		fmt.Fprintf(w, "  Kinesis PUT units: $%.2f\n", e.CDCKinesisPutMonth)
		fmt.Fprintf(w, "  retention %s (--retention): beyond 24 h, %d shards × 730 h × $%g = $%.2f\n", time.Duration(in.RetentionHours*float64(time.Hour)), e.CDCShards, p.KinesisExtendedRetentionSH, e.CDCRetentionMonth)
	}
	if in.LambdaBatch > 0 {
		fmt.Fprintf(w, "  Lambda applier (sync --apply stream): changes/s / %g per batch × 2,628,000 s invocations, %g ms at %g MB: $%.2f\n",
			in.LambdaBatch, in.LambdaMillis, in.LambdaMemoryMB, e.CDCLambdaMonth)
	}
	total := e.CDCDynamoMonth + e.CDCKinesisShardMonth + e.CDCKinesisPutMonth + e.CDCRetentionMonth
	fmt.Fprintf(w, "  total: $%.2f direct apply, $%.2f with the Lambda applier\n", total, total+e.CDCLambdaMonth)
	fmt.Fprintln(w, "\nKnobs: item size and GSIs (write units/row: exclude columns, sparse GSIs with when); --warm-wcu or provisioned capacity (backfill duration and WAL retained);")
	fmt.Fprintln(w, "  --backfill-hours (shards during the copy); --retention (extended retention); --lambda-batch/--lambda-memory (Lambda); --prices FILE (your prices).")
	fmt.Fprintln(w, "Assumptions: standard table class, provisioned-mode streams, the change rate of the window lasts, one event per change, GSIs project all attributes;")
	fmt.Fprintln(w, "  storage, reads and data transfer are not priced.")
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func hours(h float64) string {
	if h < 1 {
		return fmt.Sprintf("%.1f min", h*60)
	}
	return fmt.Sprintf("%.1f h", h)
}
