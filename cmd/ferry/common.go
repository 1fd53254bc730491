package main

import (
	"context"
	"flag"
	"time"

	"github.com/aws/smithy-go/middleware"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// commonFlags are the flags of every command that works on a migration.
type commonFlags struct {
	source, mapping, slot, publication, control string
}

func addCommonFlags(fs *flag.FlagSet) *commonFlags {
	c := &commonFlags{}
	fs.StringVar(&c.source, "source", "", "PostgreSQL URL of the source database (PG* variables fill the rest)")
	fs.StringVar(&c.mapping, "mapping", "", "mapping file (YAML)")
	fs.StringVar(&c.slot, "slot", "ferry", "logical replication slot (created by backfill; CDC continues from it)")
	fs.StringVar(&c.publication, "publication", "ferry", "publication of the mapped tables (created with publish_via_partition_root)")
	fs.StringVar(&c.control, "control-table", load.DefaultControlTable, "DynamoDB table holding ferry's run state and checkpoints")
	return c
}

func (c *commonFlags) validate() error {
	for _, f := range [][2]string{{"source", c.source}, {"mapping", c.mapping}} {
		if err := requireFlag(f[0], f[1]); err != nil {
			return err
		}
	}
	return nil
}

// backfillFlags are the flags of the copy (backfill, and sync's first run).
type backfillFlags struct {
	tables                  string
	workers, writers, chunk int
	shards                  int
	sink, progress          string
	restart                 bool
	onError, deadLetter     string
	retention               time.Duration
	metricsAddr             string
	lease                   time.Duration
	// nullState: --sink null with --control-table given, so the run keeps
	// its state (resume, chunk leases, --join) in the control table.
	nullState bool
	worker    string
	join      bool // ferry backfill --join (not a flag of sync)
}

func addBackfillFlags(fs *flag.FlagSet) *backfillFlags {
	b := &backfillFlags{}
	fs.StringVar(&b.tables, "tables", "", "comma-separated subset of mapped tables to copy (default: all)")
	fs.IntVar(&b.workers, "workers", 4, "snapshot connections reading chunks in parallel, of all tables from one queue, largest first")
	fs.IntVar(&b.writers, "writers", 8, "concurrent DynamoDB BatchWriteItem calls")
	fs.IntVar(&b.chunk, "chunk-rows", 5000, "rows per primary-key chunk (the unit of resume)")
	fs.IntVar(&b.shards, "shards", 2, "shards of a Kinesis stream that ferry creates")
	fs.DurationVar(&b.retention, "retention", defaultRetention, "retention of a Kinesis stream that ferry creates (whole hours, 24h to 8760h; existing streams keep theirs; its cost: plan --aws --retention):\n"+
		"verify --stream checks rows against the events the stream still holds, so keep the backfill's for as long as the migration is verified")
	fs.StringVar(&b.metricsAddr, "metrics-addr", "", "serve Prometheus metrics (/metrics) and the live status page (/) on this address, e.g. 127.0.0.1:9464 (empty: off)")
	fs.StringVar(&b.sink, "sink", "aws", "aws, or null to read and transform only (measures the source side; writes nothing, and keeps no state unless --control-table is given: then it resumes and --join workers share it)")
	fs.StringVar(&b.progress, "progress", "auto", "auto (bars on a terminal, log lines otherwise), bar, log or none")
	fs.BoolVar(&b.restart, "restart", false, "forget the recorded run (drops the slot) and copy everything again")
	fs.StringVar(&b.onError, "on-error", "stop", "a row that can never be written (item over 400 KB, record over 1 MiB, NaN, infinity, empty or too long key):\n"+
		"stop (backfill lists it and leaves its chunk pending, exit 1; sync stops naming table and key) or\n"+
		"skip (write it to the dead-letter file, count it, go on)")
	fs.StringVar(&b.deadLetter, "dead-letter", pipeline.DefaultDeadLetter, "JSON-lines file that skipped rows are appended to (--on-error=skip)")
	fs.DurationVar(&b.lease, "lease", pipeline.DefaultLease, "how long a chunk's lease in the control table lasts without renewal (renewed every third of it):\n"+
		"the chunks of a worker that died are taken over by the others that long after its last renewal")
	fs.StringVar(&b.worker, "worker-name", "", "this process's name in chunk leases and `ferry status`, unique among the workers (default host:pid:random)")
	return b
}

func (b *backfillFlags) validate() error {
	if b.workers < 1 || b.writers < 1 || b.chunk < 1 || b.shards < 1 {
		return usagef("--workers, --writers, --chunk-rows and --shards must be at least 1")
	}
	if b.sink != "aws" && b.sink != "null" {
		return usagef("--sink must be aws or null, not %q", b.sink)
	}
	if p := pipeline.ErrorPolicy(b.onError); p != pipeline.OnErrorStop && p != pipeline.OnErrorSkip {
		return usagef("--on-error must be stop or skip, not %q", b.onError)
	}
	if b.deadLetter == "" {
		return usagef("--dead-letter must name a file")
	}
	if b.lease < 300*time.Millisecond {
		return usagef("--lease must be at least 300ms (renewals every third of it), not %s", b.lease)
	}
	if b.join && (b.sink != "aws" && !b.nullState || b.restart) {
		return usagef("--join works with --sink aws (or --sink null with an explicit --control-table) and without --restart: a joining worker takes chunks of the coordinator's run, leased in the control table")
	}
	if r := b.retention; r < load.MinRetention || r > load.MaxRetention || r%time.Hour != 0 {
		return usagef("--retention must be whole hours from 24h to 8760h (365 days), not %s", r)
	}
	return nil
}

// policy returns the error policy and, under skip, the dead-letter file.
func (b *backfillFlags) policy() (pipeline.ErrorPolicy, *pipeline.DeadLetter) {
	p := pipeline.ErrorPolicy(b.onError)
	if p != pipeline.OnErrorSkip {
		return p, nil
	}
	return p, pipeline.NewDeadLetter(b.deadLetter)
}

func (b *backfillFlags) config(c *commonFlags, full, plan *transform.Plan) pipeline.BackfillConfig {
	cfg := pipeline.BackfillConfig{
		SourceURL: c.source, Plan: plan, Slot: c.slot, Publication: c.publication,
		Workers: b.workers, ChunkRows: b.chunk, Restart: b.restart,
		Join: b.join, Lease: b.lease, Worker: b.worker,
	}
	cfg.OnError, cfg.DeadLetter = b.policy()
	for _, tp := range full.Tables {
		cfg.PublishTables = append(cfg.PublishTables, tp.Source)
	}
	return cfg
}

// targets are the AWS clients and the control store, with tables and streams in place.
type targets struct {
	ddb     *dynamodb.Client
	kin     *kinesis.Client
	control *load.ControlStore
}

func (t *targets) dynamo(workers int) *load.DynamoWriter {
	return load.NewDynamoWriter(t.ddb, load.DynamoConfig{Workers: workers})
}

func (t *targets) kinesis() *load.KinesisWriter {
	return load.NewKinesisWriter(t.kin, load.KinesisConfig{})
}

// defaultRetention is the retention of the streams ferry creates (--retention).
const defaultRetention = 7 * 24 * time.Hour

// setupTargets connects to AWS and creates what the plan writes to; with
// mon (not nil), every AWS request attempt is counted in its metrics.
func setupTargets(ctx context.Context, c *commonFlags, plan *transform.Plan, bf *backfillFlags, mon *monitor) (*targets, error) {
	var opts []func(*middleware.Stack) error
	if mon != nil {
		opts = append(opts, mon.AWSMiddleware)
	}
	ddb, kin, err := awsClients(ctx, opts...)
	if err != nil {
		return nil, err
	}
	if err := ensureTargets(ctx, plan, ddb, kin, load.StreamOptions{Shards: bf.shards, Retention: bf.retention}); err != nil {
		return nil, err
	}
	ctl := load.NewControlStore(ddb, c.control)
	if err := ctl.Ensure(ctx); err != nil {
		return nil, usagef("control table %s: %v", c.control, err)
	}
	return &targets{ddb: ddb, kin: kin, control: ctl}, nil
}
