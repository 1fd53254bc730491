package transform

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry/extract"
)

// A barrier record is how `ferry verify` learns that the stream appliers of
// `sync --apply stream` have applied every change of one row published
// before a point. verify publishes it with the row's partition key once sync
// has published the changes (its checkpoint passed them): Kinesis keeps a
// partition key's records in order within its shard, the event source
// mapping delivers them in that order (whatever its ParallelizationFactor),
// and an applier records the barrier only once every record before it in its
// batch is applied.
//
// It has the shape of a Debezium message event (what pg_logical_emit_message
// produces), so a consumer that already skips messages of unknown prefixes
// skips it:
//
//	{"op":"m","ts_ms":…,"source":{"lsn":"16/B374D848",…},"message":{"prefix":"ferry.barrier","content":"<base64 id>"}}

// OpMessage is the op of a message record (Debezium's "m").
const OpMessage = "m"

// BarrierPrefix is the message prefix of ferry's barrier records.
const BarrierPrefix = "ferry.barrier"

// BarrierRecord is the data of a barrier record with id, published once
// sync's checkpoint passed lsn.
func BarrierRecord(id string, lsn extract.LSN, now time.Time) []byte {
	type source struct {
		Connector string `json:"connector"`
		LSN       string `json:"lsn"`
		TsMS      int64  `json:"ts_ms"`
		Snapshot  bool   `json:"snapshot"`
	}
	type message struct {
		Prefix  string `json:"prefix"`
		Content string `json:"content"`
	}
	b, _ := json.Marshal(struct {
		Op      string  `json:"op"`
		TsMS    int64   `json:"ts_ms"`
		Source  source  `json:"source"`
		Message message `json:"message"`
	}{OpMessage, now.UnixMilli(), source{"ferry", lsn.String(), now.UnixMilli(), false},
		message{BarrierPrefix, base64.StdEncoding.EncodeToString([]byte(id))}})
	return b
}

// Barrier returns the id of a decoded barrier record (ok false for any other
// record, messages of other prefixes included).
func (r *RecordEnvelope) Barrier() (id string, ok bool) {
	if r.Op != OpMessage || r.MessagePrefix != BarrierPrefix {
		return "", false
	}
	return string(r.MessageContent), true
}

// decodeMessage decodes a message event's content (base64, as Debezium
// writes it).
func decodeMessage(prefix, content string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(content)
	if err != nil {
		return nil, fmt.Errorf("record: message %q: content: %w", prefix, err)
	}
	return b, nil
}
