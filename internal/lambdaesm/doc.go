// Package lambdaesm runs a Lambda function locally for real and feeds it from
// a Kinesis stream the way a Lambda event source mapping does, for tests of
// ferry's applier (cmd/ferry-lambda) against the local stack's kinesalite.
//
// A [Runtime] runs the function's provided.al2023 bootstrap (built by
// [BuildBootstrap]) under the AWS Lambda Runtime Interface Emulator (the RIE,
// aws-lambda-rie, built from the Go module proxy by [BuildRIE] through go.mod's
// tool directive), exactly as the bootstrap runs on AWS: the emulator starts it
// with AWS_LAMBDA_RUNTIME_API, and it serves the Runtime API's
// next/response/error loop. One emulator runs one invocation at a time, as one
// Lambda execution environment does, so a Runtime starts Concurrency of them.
// [Runtime.Invoke] posts to the emulator's invoke endpoint (POST
// /2015-03-31/functions/function/invocations) and tells a function error
// ([FunctionError], by errorType) from a response.
//
// A [Mapping] polls every shard of a stream (ListShards, GetShardIterator,
// GetRecords) and invokes the function with events.KinesisEvent payloads
// shaped like AWS's. It exposes per-shard checkpoints and iterator age
// ([Mapping.Status]) and [Mapping.WaitCaughtUp], which returns once every
// record put before the call is processed.
//
// Typical use in a test:
//
//	bin := filepath.Join(t.TempDir(), "bootstrap")
//	if err := lambdaesm.BuildBootstrap(ctx, "github.com/ferry-migrate/ferry/cmd/ferry-lambda", bin); err != nil { … }
//	rt, err := lambdaesm.StartRuntime(ctx, lambdaesm.RuntimeConfig{Bootstrap: bin, Concurrency: 2, Env: env, LogDir: t.TempDir()})
//	defer rt.Close()
//	cfg := lambdaesm.DefaultMappingConfig(stream)
//	cfg.FunctionResponseTypes = []string{lambdaesm.ReportBatchItemFailures}
//	m, err := lambdaesm.StartMapping(ctx, kinesisClient, rt, cfg)
//	defer m.Close()
//	… put records …
//	err = m.WaitCaughtUp(ctx)
//
// # Documented behaviours the mapping implements
//
// From the Lambda developer guide:
//
//   - Each batch holds records of one shard, in the shard's order; a shard
//     has one batch in flight at a time, and Lambda polls an idle shard
//     about once a second and keeps reading while records are available.
//     https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
//     ("Polling and batching streams")
//   - Events have the documented shape: Records[].eventSource "aws:kinesis",
//     eventVersion "1.0", eventID "shardId-…:sequenceNumber", eventName
//     "aws:kinesis:record", invokeIdentityArn, awsRegion, eventSourceARN, and
//     kinesis.{kinesisSchemaVersion "1.0", partitionKey, sequenceNumber,
//     data (base64), approximateArrivalTimestamp (epoch seconds)}.
//     https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
//     ("Example event")
//   - BatchSize (1–10000, default 100), MaximumBatchingWindowInSeconds
//     (0–300, default 0), ParallelizationFactor (1–10, default 1),
//     StartingPosition (TRIM_HORIZON, LATEST, AT_TIMESTAMP with
//     StartingPositionTimestamp), MaximumRetryAttempts (-1–10000, default
//     -1), MaximumRecordAgeInSeconds (default -1), BisectBatchOnFunctionError
//     (default false), FunctionResponseTypes, DestinationConfig.OnFailure.
//     https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-parameters.html
//   - Batching: with no window the function is invoked as soon as records
//     are read; otherwise Lambda reads until the batch is full, the window
//     expires, or the payload reaches 6 MB, whichever comes first.
//     https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html#invocation-eventsourcemapping-batching
//     and with-kinesis.html
//   - ParallelizationFactor: up to 10 batches of one shard are processed
//     concurrently, and records of one partition key stay in order (here:
//     keys are assigned to the concurrent batches by MD5 hash; one key's
//     batches run one at a time). The shard's checkpoint only passes records
//     that are processed, whichever concurrent batch held them.
//     https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
//     ("Lambda can process up to 10 batches in each shard simultaneously …
//     in-order processing at the partition-key level")
//   - Without ReportBatchItemFailures, any function error fails the whole
//     batch, which is retried; a response is a complete success.
//     With it: an empty or null response or batchItemFailures is a complete
//     success; an empty or null itemIdentifier, or one under a bad key name,
//     is a complete failure; otherwise the lowest reported sequence number
//     is the checkpoint and every record from it on is retried (the records
//     before it are not delivered again).
//     https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html
//   - BisectBatchOnFunctionError splits a failed batch in two and retries the
//     halves; splitting does not consume the retry quota. With a partial
//     batch response the batch is cut at the reported sequence number and
//     only the remaining records are retried.
//     https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
//     and services-kinesis-batchfailurereporting.html ("Bisecting a batch")
//   - Errors before invocation (here: the emulator refused or failed without
//     a function error) are retried until the records exceed their maximum
//     age, without counting retries; function errors are retried until the
//     records exceed MaximumRecordAgeInSeconds or MaximumRetryAttempts is
//     used up; then the records are discarded and processing of the shard
//     moves on.
//     https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
//   - A discarded batch's invocation record goes to the on-failure
//     destination: requestContext (requestId, functionArn, condition
//     RetryAttemptsExhausted or RecordAgeExceeded, approximateInvokeCount),
//     responseContext (statusCode, executedVersion, functionError),
//     version, timestamp, KinesisBatchInfo (shardId, start and end sequence
//     numbers, arrival of the first and last record, batchSize, streamArn);
//     like an Amazon S3 destination's, it also carries the records (payload).
//     https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
//   - IteratorAge: the age of the last record of a batch when it finished.
//     https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
//
// Undocumented details, decided here: the batching window counts from the
// read of the batch's first record; a retry after a partial failure resends
// exactly the rest of that batch; a complete-failure response is handled as a
// function error (bisected, or retried and counted); an itemIdentifier that is
// no sequence number of the batch is a complete failure; a response that is
// not a JSON object is a success (logged); bisected halves run in order, each
// with the retries counted so far; MaximumRecordAgeInSeconds is checked
// before every invocation and discards the expired head of the batch with an
// invocation record of its own; retries back off exponentially (RetryBackoff
// doubling up to MaxRetryBackoff).
//
// # Not emulated
//
// Enhanced fan-out consumers (kinesalite has none); resharding (the shards
// are listed once at start, and a parent is not finished before its
// children); tumbling windows (TumblingWindowInSeconds); event filtering
// (FilterCriteria); KPL de-aggregation; OnSuccess destinations; disabling,
// updating, or resuming a mapping from a stored checkpoint (a new Mapping
// starts at its StartingPosition); throttling (an invocation waits for an
// idle environment of the Runtime instead); the idle poll rate (PollInterval
// defaults to 200 ms, not 1 s); AWS's minimum of 60 s for
// MaximumRecordAgeInSeconds (shorter ages are accepted for tests).
//
// # What the Runtime Interface Emulator does differently from AWS
//
// It sends no X-Amz-Function-Error header: an error the handler returns
// comes back as HTTP 200 with the runtime's error document, a runtime that
// exits (aws-lambda-go exits after reporting a panic) as 502, and a timeout
// as 200 with the plain text "Task timed out after N.00 seconds"; see
// [FunctionError] for how each is recognised. It truncates request payloads
// over 6 MiB + 100 bytes (Invoke refuses them). It forwards its whole
// environment to the function (so a Runtime starts it with a clean one). It
// does not freeze the environment between invocations, and it re-runs the
// bootstrap after a crash or a timeout on the next invocation (a cold start,
// as on AWS).
package lambdaesm
