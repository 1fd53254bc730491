package load

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// EnsureStreams creates the missing streams with shards shards (existing
// streams keep theirs) and waits until every stream is ACTIVE. Safe to call
// again and concurrently.
func EnsureStreams(ctx context.Context, client *kinesis.Client, names []string, shards int) error {
	if shards <= 0 {
		return fmt.Errorf("ensure streams: %w: shards %d must be positive", ErrInvalidRequest, shards)
	}
	var errs []error
	for _, name := range names {
		if err := ensureStream(ctx, client, name, shards); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func ensureStream(ctx context.Context, client *kinesis.Client, name string, shards int) error {
	if name == "" {
		return fmt.Errorf("stream: %w: empty name", ErrInvalidRequest)
	}
	ctx, cancel := context.WithTimeout(ctx, ActiveTimeout)
	defer cancel()
	status, err := streamStatus(ctx, client, name)
	if err != nil {
		return err
	}
	if status == "" {
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
	return nil
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
