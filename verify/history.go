package verify

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ferry-migrate/ferry/extract"
)

// A Kinesis stream keeps its records for its retention period only (24
// hours unless raised). Once the backfill's events have expired, a row that
// has not changed since has no event left on the stream: the stream check
// would report it missing, although nothing was lost. The stream check
// therefore first learns which part of the migration's history the stream
// still holds, and reports such rows as expired, not missing.
//
// The history is the backfill's `r` events (at the backfill's snapshot LSN,
// all published before its completion was recorded), then sync's changes.
// The stream no longer holds its start when
//
//   - the oldest event of every shard (its trim horizon) is newer than the
//     backfill's snapshot: no shard holds a backfill event any more; or,
//     for a stream that holds no event at all,
//   - it was created after the backfill completed (deleted and re-created,
//     or sync pointed at a new stream), or the backfill completed longer ago
//     than the stream's retention period.
//
// Rows that have events are still compared in full, and order and
// duplicates are checked for every event held. (A stream re-created and
// refilled by an online snapshot starts its history anew; rows it lacks are
// then reported as expired too.)

// History is what ferry recorded about the start of a migration's stream
// history (see [Config.History]).
type History struct {
	// BackfillDone is when the backfill's completion was recorded (zero:
	// unknown); every one of its events was published before.
	BackfillDone time.Time
	// BackfillLSN is the backfill's snapshot LSN, the position of its `r`
	// events (0: unknown).
	BackfillLSN extract.LSN
}

// HistoryFunc returns the recorded start of the stream history (ok false:
// nothing recorded, e.g. no backfill ran with a control table).
type HistoryFunc func(ctx context.Context) (h History, ok bool, err error)

// streamMeta is a stream's creation time and retention period.
type streamMeta struct {
	created   time.Time
	retention time.Duration
}

func describeStream(ctx context.Context, client *kinesis.Client, stream string) (streamMeta, error) {
	out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		return streamMeta{}, fmt.Errorf("describe stream %s: %w", stream, err)
	}
	d := out.StreamDescriptionSummary
	return streamMeta{created: aws.ToTime(d.StreamCreationTimestamp), retention: time.Duration(aws.ToInt32(d.RetentionPeriodHours)) * time.Hour}, nil
}

// trimmedBy says why the stream no longer holds the history's start ("":
// it holds all of it, as far as can be told). oldest maps each shard that
// holds events to the position of its oldest one.
func trimmedBy(h History, meta streamMeta, oldest map[string]extract.Position, now time.Time) string {
	if len(oldest) > 0 {
		if h.BackfillLSN == 0 {
			return ""
		}
		for _, p := range oldest {
			if p.LSN <= h.BackfillLSN {
				return ""
			}
		}
		return fmt.Sprintf("the oldest event of every shard is newer than the backfill's snapshot (%s)", h.BackfillLSN)
	}
	if h.BackfillDone.IsZero() {
		return ""
	}
	if meta.created.After(h.BackfillDone) {
		return fmt.Sprintf("the stream, empty, was created at %s, after the backfill completed (%s)",
			meta.created.UTC().Format(time.RFC3339), h.BackfillDone.UTC().Format(time.RFC3339))
	}
	if meta.retention > 0 && now.Sub(h.BackfillDone) > meta.retention {
		return fmt.Sprintf("the stream is empty and the backfill completed %s ago, more than the stream's retention (%s)",
			now.Sub(h.BackfillDone).Round(time.Minute), meta.retention)
	}
	return ""
}

// heldFrom is the oldest of the shards' oldest positions ("" when the
// stream is empty).
func heldFrom(oldest map[string]extract.Position) string {
	var min *extract.Position
	for _, p := range oldest {
		if min == nil || p.Less(*min) {
			p := p
			min = &p
		}
	}
	if min == nil {
		return ""
	}
	return posText(*min)
}

// ExpiredNote is the sentence the text reports print for a stream that no
// longer holds the whole history ("" when it does).
func (s StreamReport) ExpiredNote() string {
	if s.Trimmed == "" {
		return ""
	}
	held := s.HeldFrom
	if held == "" {
		held = "nothing"
	}
	return fmt.Sprintf("stream %s no longer holds the start of the history (%s; oldest event held: %s): "+
		"%d rows whose only events expired are reported as expired, not missing; the events it holds are checked in full",
		s.Stream, s.Trimmed, held, s.Expired)
}
