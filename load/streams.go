package load

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// EnsureStreams creates the missing streams with shards shards (existing
// streams keep theirs) and waits until every stream is ACTIVE. Safe to call
// again and concurrently.
func EnsureStreams(ctx context.Context, client *kinesis.Client, names []string, shards int) error {
	return EnsureStreamsWith(ctx, client, names, StreamOptions{Shards: shards})
}

// StreamOptions are the settings of the streams ferry creates.
type StreamOptions struct {
	Shards int
	// Retention is how long a created stream keeps its records (whole
	// hours, 24h to 8760h; 0 or 24h: Kinesis' default of 24 hours).
	// Existing streams keep theirs.
	Retention time.Duration
}

// MinRetention and MaxRetention bound a Kinesis stream's retention period.
const (
	MinRetention = 24 * time.Hour
	MaxRetention = 8760 * time.Hour
)

// EnsureStreamsWith is [EnsureStreams] with the created streams' retention.
func EnsureStreamsWith(ctx context.Context, client *kinesis.Client, names []string, opts StreamOptions) error {
	shards := opts.Shards
	if shards <= 0 {
		return fmt.Errorf("ensure streams: %w: shards %d must be positive", ErrInvalidRequest, shards)
	}
	if r := opts.Retention; r != 0 && (r < MinRetention || r > MaxRetention || r%time.Hour != 0) {
		return fmt.Errorf("ensure streams: %w: retention %s must be whole hours from 24h to 8760h", ErrInvalidRequest, r)
	}
	var errs []error
	for _, name := range names {
		if err := ensureStream(ctx, client, name, shards, opts.Retention); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func ensureStream(ctx context.Context, client *kinesis.Client, name string, shards int, retention time.Duration) error {
	if name == "" {
		return fmt.Errorf("stream: %w: empty name", ErrInvalidRequest)
	}
	ctx, cancel := context.WithTimeout(ctx, ActiveTimeout)
	defer cancel()
	status, err := streamStatus(ctx, client, name)
	if err != nil {
		return err
	}
	created := status == ""
	if created {
		_, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{
			StreamName: aws.String(name),
			ShardCount: aws.Int32(int32(shards)),
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create stream %s: %w", name, err)
		}
		if status, err = streamStatus(ctx, client, name); err != nil {
			return err
		}
	}
	for attempt := 1; status != types.StreamStatusActive; attempt++ {
		if status == types.StreamStatusDeleting {
			return fmt.Errorf("stream %s is being deleted", name)
		}
		if err := pollBackoff().Sleep(ctx, attempt); err != nil {
			return fmt.Errorf("stream %s: waiting for ACTIVE (status %q): %w", name, status, err)
		}
		if status, err = streamStatus(ctx, client, name); err != nil {
			return err
		}
	}
	if created && retention > MinRetention {
		return setRetention(ctx, client, name, retention)
	}
	return nil
}

// setRetention raises a new stream's retention period, then waits until
// the stream is ACTIVE again (Kinesis updates it for a moment).
func setRetention(ctx context.Context, client *kinesis.Client, name string, retention time.Duration) error {
	_, err := client.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{
		StreamName:           aws.String(name),
		RetentionPeriodHours: aws.Int32(int32(retention / time.Hour)),
	})
	if err != nil {
		return fmt.Errorf("stream %s: set retention to %s: %w", name, retention, err)
	}
	for attempt := 1; ; attempt++ {
		status, err := streamStatus(ctx, client, name)
		if err != nil {
			return err
		}
		if status == types.StreamStatusActive {
			return nil
		}
		if err := pollBackoff().Sleep(ctx, attempt); err != nil {
			return fmt.Errorf("stream %s: waiting for ACTIVE after setting its retention (status %q): %w", name, status, err)
		}
	}
}

// streamStatus returns "" when the stream does not exist.
func streamStatus(ctx context.Context, client *kinesis.Client, name string) (types.StreamStatus, error) {
	out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &name})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("describe stream %s: %w", name, err)
	}
	return out.StreamDescriptionSummary.StreamStatus, nil
}

// OpenShardHashKeys returns, for each open shard of stream, the first hash
// key of its range (an ExplicitHashKey that lands on that shard), in shard
// order.
func OpenShardHashKeys(ctx context.Context, client *kinesis.Client, stream string) ([]string, error) {
	var keys []string
	in := &kinesis.DescribeStreamInput{StreamName: &stream}
	for {
		out, err := client.DescribeStream(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("stream %s: describe: %w", stream, err)
		}
		for _, sh := range out.StreamDescription.Shards {
			if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
				continue // closed (split or merged)
			}
			if sh.HashKeyRange != nil && sh.HashKeyRange.StartingHashKey != nil {
				keys = append(keys, *sh.HashKeyRange.StartingHashKey)
			}
			in.ExclusiveStartShardId = sh.ShardId
		}
		if !aws.ToBool(out.StreamDescription.HasMoreShards) {
			break
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("stream %s: no open shard", stream)
	}
	return keys, nil
}
