// Package load is the AWS side of ferry: it writes items to DynamoDB and
// records to Kinesis Data Streams, creates the tables and streams a
// migration needs, and keeps ferry's own control data (checkpoints) in a
// small DynamoDB table.
//
// The writers own one retry layer only: partial batch failures
// (UnprocessedItems, failed PutRecords entries) are retried here with a
// bounded [Backoff]; transport errors and throttling of whole requests are
// retried by the AWS SDK ([NewSDKRetryer]); a whole batch that still fails
// is returned to the caller as an error. Every retry loop above the SDK, here
// and in the pipelines, is a [RetryLoop] (or [Retry], its common case). Writes for one key are never reordered: a later write
// for a key is sent only after the earlier one is in. Entries that can never
// be written are reported per entry ([Failure], [RecordFailure]), never
// dropped.
//
// Every exported writer is safe for concurrent use. Ordering is guaranteed
// within one Write/Put call; callers that need order across calls must not
// issue calls for the same key concurrently.
package load
