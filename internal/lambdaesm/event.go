package lambdaesm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// record is one stream record as the mapping holds it.
type record struct {
	idx     uint64 // position in the shard's read order
	seq     string
	key     string
	arrival time.Time // ApproximateArrivalTimestamp
	readAt  time.Time // when the shard's reader got it
	event   []byte    // its element of the event's Records, JSON
}

// eventRecord renders a stream record as Lambda puts it in a KinesisEvent
// (https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html, "Example
// event"): the arrival timestamp in epoch seconds with milliseconds, data in
// base64 (encoding/json's []byte), eventID "shardId-…:sequenceNumber".
func (m *Mapping) eventRecord(shardID, seq, key string, data []byte, arrival time.Time) ([]byte, error) {
	rec := events.KinesisEventRecord{
		AwsRegion:         m.region,
		EventID:           shardID + ":" + seq,
		EventName:         "aws:kinesis:record",
		EventSource:       "aws:kinesis",
		EventSourceArn:    m.streamARN,
		EventVersion:      "1.0",
		InvokeIdentityArn: m.roleARN,
		Kinesis: events.KinesisRecord{
			ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: arrival.Truncate(time.Millisecond)},
			Data:                        data,
			PartitionKey:                key,
			SequenceNumber:              seq,
			KinesisSchemaVersion:        "1.0",
		},
	}
	out, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("event record %s: %w", seq, err)
	}
	return out, nil
}

const eventPrefix, eventSuffix = `{"Records":[`, `]}`

// eventPayload is the KinesisEvent of recs.
func eventPayload(recs []*record) []byte {
	var b bytes.Buffer
	b.WriteString(eventPrefix)
	for i, r := range recs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(r.event)
	}
	b.WriteString(eventSuffix)
	return b.Bytes()
}

// batchCut returns how many records from the head of queue make the next
// batch: at most size records whose event stays within maxBytes (at least
// one record), and whether the batch is complete (the size or the byte limit
// is reached, so waiting for more records cannot grow it).
func batchCut(queue []*record, size, maxBytes int) (n int, complete bool) {
	total := len(eventPrefix) + len(eventSuffix)
	for n < len(queue) && n < size {
		add := len(queue[n].event)
		if n > 0 {
			add++ // comma
		}
		if n > 0 && total+add > maxBytes {
			return n, true
		}
		total += add
		n++
	}
	return n, n == size
}

// seqLess compares two Kinesis sequence numbers (decimal strings of up to
// 128 bits) numerically.
func seqLess(a, b string) bool {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// batchOutcome is what a successful invocation's response means for its
// batch under ReportBatchItemFailures
// (https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html).
type batchOutcome struct {
	retryFrom int    // records [retryFrom:] are retried; len(batch) when all succeeded
	failed    bool   // a complete failure: retry the whole batch
	reason    string // why, for the logs
}

// parseBatchResponse reads a response: an empty or null response, or an
// empty or null batchItemFailures, is a complete success; an itemIdentifier
// that is empty, null, missing (a bad key name) or not a sequence number of
// the batch is a complete failure; otherwise the lowest reported sequence
// number is the checkpoint and every record from it on is retried.
func parseBatchResponse(body []byte, batch []*record) batchOutcome {
	success := batchOutcome{retryFrom: len(batch)}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || bytes.Equal(body, []byte("null")) {
		return success
	}
	var resp struct {
		BatchItemFailures []map[string]json.RawMessage `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		success.reason = "response is not a batch response (" + err.Error() + "): taken as success"
		return success
	}
	lowest := -1
	for _, f := range resp.BatchItemFailures {
		raw, ok := f["itemIdentifier"]
		if !ok {
			return batchOutcome{failed: true, reason: "a batchItemFailures entry has no itemIdentifier"}
		}
		var id *string
		if err := json.Unmarshal(raw, &id); err != nil || id == nil || *id == "" {
			return batchOutcome{failed: true, reason: "itemIdentifier null, empty or not a string: " + string(raw)}
		}
		i := indexOfSeq(batch, *id)
		if i < 0 {
			return batchOutcome{failed: true, reason: "itemIdentifier " + *id + " is no sequence number of the batch"}
		}
		if lowest < 0 || i < lowest {
			lowest = i
		}
	}
	if lowest < 0 {
		return success
	}
	return batchOutcome{retryFrom: lowest, reason: "partial batch response"}
}

func indexOfSeq(batch []*record, seq string) int {
	for i, r := range batch {
		if r.seq == seq {
			return i
		}
	}
	return -1
}
