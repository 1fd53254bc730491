package lambdaesm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
)

// Destination receives the invocation record of each batch the mapping
// discards (DestinationConfig.OnFailure).
//
// Send blocks until the record is stored; the mapping calls it from one
// goroutine per concurrent batch, so it must be safe for concurrent use. An
// error means the record was not stored: the mapping retries it (with
// backoff, until its context ends) before it moves past the records.
type Destination interface {
	Send(ctx context.Context, rec InvocationRecord) error
}

// Discard conditions (requestContext.condition).
const (
	ConditionRetryAttemptsExhausted = "RetryAttemptsExhausted"
	ConditionRecordAgeExceeded      = "RecordAgeExceeded"
)

// InvocationRecord is the document Lambda sends to an on-failure destination
// for a discarded Kinesis batch: metadata only, as to SQS and SNS, plus the
// discarded records' event in Payload, as an Amazon S3 destination also
// gets it. See
// https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html.
type InvocationRecord struct {
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionARN            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		// FunctionError is "Unhandled" when the last invocation ended in a
		// function error; absent after a partial batch response.
		FunctionError string `json:"functionError,omitempty"`
	} `json:"responseContext"`
	Version          string           `json:"version"`
	Timestamp        string           `json:"timestamp"`
	KinesisBatchInfo KinesisBatchInfo `json:"KinesisBatchInfo"`
	// Payload is the KinesisEvent of the discarded records.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// KinesisBatchInfo locates the discarded records in the stream.
type KinesisBatchInfo struct {
	ShardID                         string `json:"shardId"`
	StartSequenceNumber             string `json:"startSequenceNumber"`
	EndSequenceNumber               string `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int    `json:"batchSize"`
	StreamARN                       string `json:"streamArn"`
}

// FileDestination appends each invocation record to a file as one line of
// JSON (JSON Lines), synced before Send returns. Safe for concurrent use.
type FileDestination struct {
	Path string
	mu   sync.Mutex
}

// Send implements Destination.
func (d *FileDestination) Send(ctx context.Context, rec InvocationRecord) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("on-failure destination: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := os.OpenFile(d.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("on-failure destination: %w", err)
	}
	_, werr := f.Write(append(line, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("on-failure destination %s: %w", d.Path, err)
	}
	return nil
}

// Records reads back every record sent so far (none when the file does not
// exist yet).
func (d *FileDestination) Records() ([]InvocationRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := os.Open(d.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("on-failure destination: %w", err)
	}
	defer f.Close()
	var out []InvocationRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rec InvocationRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("on-failure destination %s: %w", d.Path, err)
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}
