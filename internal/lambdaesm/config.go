package lambdaesm

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// StartingPosition is where a mapping starts reading each shard.
type StartingPosition string

// The starting positions of CreateEventSourceMapping.
const (
	TrimHorizon StartingPosition = "TRIM_HORIZON"
	Latest      StartingPosition = "LATEST"
	AtTimestamp StartingPosition = "AT_TIMESTAMP"
)

// ReportBatchItemFailures is the FunctionResponseTypes value that turns on
// partial batch responses.
const ReportBatchItemFailures = "ReportBatchItemFailures"

// MappingConfig is an event source mapping from a Kinesis stream to a
// function. The AWS-named fields mean what CreateEventSourceMapping's do
// (https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-parameters.html);
// start from DefaultMappingConfig, which holds AWS's defaults.
type MappingConfig struct {
	// StreamName is the Kinesis stream. Required.
	StreamName string
	// FunctionName names the function in the on-failure invocation records'
	// functionArn. Default "function".
	FunctionName string

	// BatchSize is the largest number of records in one invocation:
	// 1–10000, default 100.
	BatchSize int
	// MaximumBatchingWindowInSeconds is how long records are gathered before
	// an invocation that is neither full nor at the payload limit: 0–300,
	// default 0 (invoke as soon as records are read).
	MaximumBatchingWindowInSeconds int
	// ParallelizationFactor is the number of batches of one shard processed
	// concurrently: 1–10, default 1. Records are assigned to the concurrent
	// batches by partition key, so one key's records stay in order.
	ParallelizationFactor int
	// StartingPosition is TRIM_HORIZON, LATEST or AT_TIMESTAMP (with
	// StartingPositionTimestamp). Required.
	StartingPosition          StartingPosition
	StartingPositionTimestamp time.Time
	// FunctionResponseTypes may hold ReportBatchItemFailures.
	FunctionResponseTypes []string
	// BisectBatchOnFunctionError splits a failed batch in two before
	// retrying. Default false.
	BisectBatchOnFunctionError bool
	// MaximumRetryAttempts is how many times a failed batch is retried
	// before its records are discarded: -1 (default: until they expire) to
	// 10000.
	MaximumRetryAttempts int
	// MaximumRecordAgeInSeconds discards records older than this before
	// they are sent: -1 (default: never) or 1–604800. (AWS accepts -1 or
	// 60–604800; shorter ages are allowed here for tests.)
	MaximumRecordAgeInSeconds int
	// OnFailure receives an invocation record for every discarded batch
	// (DestinationConfig.OnFailure). Default none: discarded records are
	// only logged.
	OnFailure Destination

	// Emulator settings, not AWS's.

	// PollInterval is how long a shard's reader waits after a read that
	// found nothing new. AWS polls an idle shard once a second; default
	// 200 ms, so that tests wait less. WaitCaughtUp also wakes the readers.
	PollInterval time.Duration
	// RetryBackoff is the wait before the first retry of a failed batch;
	// it doubles with each retry up to MaxRetryBackoff. Defaults 50 ms, 2 s.
	RetryBackoff, MaxRetryBackoff time.Duration
	// MaxPayloadBytes is the invocation payload limit that closes a batch
	// early. Default 6 MiB, Lambda's synchronous invocation limit.
	MaxPayloadBytes int
	// ExecutionRoleARN is the records' invokeIdentityArn. Default
	// arn:aws:iam::ACCOUNT:role/lambda-role, ACCOUNT from the stream's ARN.
	ExecutionRoleARN string
	// Logger receives the mapping's records. Default slog.Default().
	Logger *slog.Logger
}

// DefaultMappingConfig returns AWS's defaults for a Kinesis event source
// mapping from stream, starting at TRIM_HORIZON.
func DefaultMappingConfig(stream string) MappingConfig {
	return MappingConfig{
		StreamName:                stream,
		FunctionName:              "function",
		BatchSize:                 100,
		ParallelizationFactor:     1,
		StartingPosition:          TrimHorizon,
		MaximumRetryAttempts:      -1,
		MaximumRecordAgeInSeconds: -1,
		PollInterval:              200 * time.Millisecond,
		RetryBackoff:              50 * time.Millisecond,
		MaxRetryBackoff:           2 * time.Second,
		MaxPayloadBytes:           6 * 1024 * 1024,
	}
}

// Validate reports every setting out of its documented range.
func (c MappingConfig) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("%s: %v, want %s", field, v, want))
	}
	if c.StreamName == "" {
		bad("StreamName", `""`, "a stream name")
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		bad("BatchSize", c.BatchSize, "1–10000")
	}
	if c.MaximumBatchingWindowInSeconds < 0 || c.MaximumBatchingWindowInSeconds > 300 {
		bad("MaximumBatchingWindowInSeconds", c.MaximumBatchingWindowInSeconds, "0–300")
	}
	if c.ParallelizationFactor < 1 || c.ParallelizationFactor > 10 {
		bad("ParallelizationFactor", c.ParallelizationFactor, "1–10")
	}
	switch c.StartingPosition {
	case TrimHorizon, Latest:
	case AtTimestamp:
		if c.StartingPositionTimestamp.IsZero() {
			bad("StartingPositionTimestamp", "zero", "a time with AT_TIMESTAMP")
		}
	default:
		bad("StartingPosition", fmt.Sprintf("%q", c.StartingPosition), "TRIM_HORIZON, LATEST or AT_TIMESTAMP")
	}
	for _, t := range c.FunctionResponseTypes {
		if t != ReportBatchItemFailures {
			bad("FunctionResponseTypes", fmt.Sprintf("%q", t), ReportBatchItemFailures)
		}
	}
	if c.MaximumRetryAttempts < -1 || c.MaximumRetryAttempts > 10000 {
		bad("MaximumRetryAttempts", c.MaximumRetryAttempts, "-1–10000")
	}
	if c.MaximumRecordAgeInSeconds == 0 || c.MaximumRecordAgeInSeconds < -1 || c.MaximumRecordAgeInSeconds > 604800 {
		bad("MaximumRecordAgeInSeconds", c.MaximumRecordAgeInSeconds, "-1 or 1–604800")
	}
	if c.PollInterval <= 0 {
		bad("PollInterval", c.PollInterval, "> 0")
	}
	if c.RetryBackoff <= 0 || c.MaxRetryBackoff < c.RetryBackoff {
		bad("RetryBackoff/MaxRetryBackoff", fmt.Sprintf("%v/%v", c.RetryBackoff, c.MaxRetryBackoff), "0 < RetryBackoff <= MaxRetryBackoff")
	}
	if c.MaxPayloadBytes <= 0 {
		bad("MaxPayloadBytes", c.MaxPayloadBytes, "> 0")
	}
	return errors.Join(errs...)
}

func (c MappingConfig) reportsItemFailures() bool {
	for _, t := range c.FunctionResponseTypes {
		if t == ReportBatchItemFailures {
			return true
		}
	}
	return false
}

func (c MappingConfig) window() time.Duration {
	return time.Duration(c.MaximumBatchingWindowInSeconds) * time.Second
}
