// Command ferry-lambda is ferry's applier function: the bootstrap of a
// provided.al2023 AWS Lambda function that a Kinesis event source mapping
// invokes with the records `ferry sync --apply stream` publishes. It writes
// them to DynamoDB with the same version-conditional writes as `ferry sync`'s
// direct mode (internal/pipeline.StreamApplier), and reports the first record
// it could not apply as a batch item failure (ReportBatchItemFailures): the
// mapping delivers the records from it on again, and sends a record that never
// succeeds to its on-failure destination once the retries are spent.
//
// Build (see deploy/template.yaml):
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o build/ferry-lambda/bootstrap ./cmd/ferry-lambda
//	ferry plan --source … --mapping … --compile --out build/ferry-lambda/plan.json
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(log)
	h, err := newHandler(context.Background(), os.Getenv, log)
	if err != nil {
		// The runtime reports an init error; the mapping retries the batch
		// and the log says why.
		log.Error("ferry-lambda: cannot start", "err", err)
		os.Exit(2)
	}
	lambda.Start(h.handle)
}

// handler is the function's state across invocations of one instance.
type handler struct {
	applier  *pipeline.StreamApplier
	log      *slog.Logger
	function string // AWS_LAMBDA_FUNCTION_NAME, the metrics' dimension
}

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (*handler, error) {
	cfg, err := configFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	plan, err := transform.LoadCompiledPlan(cfg.plan)
	if err != nil {
		return nil, err
	}
	// The SDK's standard retries, without the client-side retry quota (under
	// sustained throttling it stops retrying altogether, and every write of
	// a batch would fail at its first throttle) and with backoff capped at
	// 1 s instead of 20 s: an invocation has its timeout to finish in, and a
	// write still failing after five attempts fails its records, which the
	// mapping delivers again.
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(func() aws.Retryer {
		return load.NewSDKRetryer(5, time.Second)
	}))
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	client := dynamodb.NewFromConfig(awsCfg)
	writer := load.NewDynamoWriter(client, load.DynamoConfig{})
	control := load.NewControlStore(client, cfg.control)
	a, err := pipeline.NewStreamApplier(pipeline.StreamApplierConfig{
		Plan:   plan,
		Writer: writer,
		State:  load.NewApplyState(client, cfg.control),
		Sweep:  pipeline.SweepWith(client, writer),
		// Records made with another definition than the plan's (a schema
		// change sync followed) are applied with their own, read here.
		Definitions: control,
		Workers:     cfg.workers,
		// Beyond the SDK's attempts, a few of the applier's own; a write that
		// still fails fails its records (delivered again by the mapping)
		// well inside the invocation's timeout.
		Backoff: load.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second, MaxAttempts: 3},
		DeadLetter: func(ctx context.Context, f pipeline.RowFailure) error {
			return pipeline.RecordDeadLetter(ctx, control, f)
		},
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("ferry-lambda ready", "plan", cfg.plan, "tables", len(plan.Tables), "control_table", cfg.control, "workers", cfg.workers)
	return &handler{applier: a, log: log, function: getenv("AWS_LAMBDA_FUNCTION_NAME")}, nil
}

// handle applies one batch. An error (the control table unreachable) makes
// the mapping deliver the whole batch again (bisecting it when configured);
// a failed record, it and the ones after it.
func (h *handler) handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	recs := make([]pipeline.StreamRecord, len(ev.Records))
	for i, r := range ev.Records {
		shard, _, _ := strings.Cut(r.EventID, ":")
		recs[i] = pipeline.StreamRecord{
			Stream: streamName(r.EventSourceArn), Shard: shard, Sequence: r.Kinesis.SequenceNumber,
			PartitionKey: r.Kinesis.PartitionKey, Data: r.Kinesis.Data, Arrived: r.Kinesis.ApproximateArrivalTimestamp.Time,
		}
	}
	start := time.Now()
	res, err := h.applier.Apply(ctx, recs)
	if len(recs) > 0 {
		last := recs[len(recs)-1]
		_, _ = os.Stdout.Write(emfLine(time.Now(), h.function, last.Stream, last.Shard, len(recs), res, time.Since(start),
			time.Since(last.Arrived), uint64(res.AppliedPos.LSN)))
	}
	if err != nil {
		h.log.Error("batch not applied", "records", len(recs), "err", err)
		return events.KinesisEventResponse{}, err
	}
	h.log.Info("batch applied", "records", len(recs), "applied", res.Applied, "skipped", res.Skipped, "fenced", res.Fenced,
		"missing", res.Missing, "dead", res.Dead, "swept", res.Swept, "failed_at", res.Failed)
	var out events.KinesisEventResponse
	if res.Failed >= 0 {
		h.log.Warn("records delivered again from the first failure", "sequence", recs[res.Failed].Sequence, "shard", recs[res.Failed].Shard,
			"records", len(recs)-res.Failed, "reason", res.FailReason)
		out.BatchItemFailures = []events.KinesisBatchItemFailure{{ItemIdentifier: recs[res.Failed].Sequence}}
	}
	return out, nil
}

// streamName is the stream's name in its ARN (arn:aws:kinesis:…:stream/NAME).
func streamName(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}
