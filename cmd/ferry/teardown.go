package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
)

func cmdTeardown(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("teardown --source URL --mapping FILE [--slot NAME] [--targets]",
		"Drops ferry's replication slot and forgets its recorded runs, so retained WAL is released.\n"+
			"ferry never drops a slot otherwise. With --targets it also deletes the mapping's DynamoDB\n"+
			"tables and Kinesis streams (all their data): for demos and tests, not for a migration.", stdout)
	cf := addCommonFlags(fs)
	targets := fs.Bool("targets", false, "also delete the mapping's DynamoDB tables and Kinesis streams")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	source, slot, control := &cf.source, &cf.slot, &cf.control
	c, err := loadPlan(ctx, cf.source, cf.mapping)
	if err != nil {
		return err
	}
	conn, err := extract.Connect(ctx, *source)
	if err != nil {
		return usageError{err}
	}
	defer conn.Close(context.Background())
	info, exists, err := extract.LookupSlot(ctx, conn, *slot)
	if err != nil {
		return err
	}
	if exists {
		if info.Active {
			return usageError{fmt.Errorf("slot %s: %w (is `ferry sync` running?); stop it first", *slot, extract.ErrSlotInUse)}
		}
		if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", *slot); err != nil {
			return fmt.Errorf("drop slot %s: %w", *slot, err)
		}
		fmt.Fprintf(stdout, "dropped replication slot %s\n", *slot)
	}
	if err := extract.DropPublication(ctx, conn, cf.publication); err != nil {
		return err
	}
	ddb, kin, err := awsClients(ctx)
	if err != nil {
		return err
	}
	ctl := load.NewControlStore(ddb, *control)
	ids := []string{pipeline.StateID(*slot), pipeline.CheckpointID(*slot), pipeline.SnapshotRecordsID(*slot), pipeline.SchemaRecordsID(*slot)}
	// The Lambda applier's state (sync --apply stream): a TRUNCATE's fence
	// left behind would drop the changes of a later migration that sit below
	// it (another source's LSNs), and its positions and dead letters belong
	// to this run.
	ids = append(append(ids, load.StateIDs(c.plan.Streams())...), pipeline.DeadLetterID)
	for _, id := range ids {
		if err := ctl.DeleteAll(ctx, id); err != nil && !isMissingTable(err) {
			return fmt.Errorf("forget run state: %w", err)
		}
	}
	if !*targets {
		return nil
	}
	for name := range c.plan.Targets() {
		if err := deleteTable(ctx, ddb, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted DynamoDB table %s\n", name)
	}
	for _, name := range c.plan.Streams() {
		if err := deleteStream(ctx, kin, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted Kinesis stream %s\n", name)
	}
	return nil
}

func isMissingTable(err error) bool {
	var nf *dtypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

func deleteTable(ctx context.Context, c *dynamodb.Client, name string) error {
	_, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	if isMissingTable(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete table %s: %w", name, err)
	}
	w := dynamodb.NewTableNotExistsWaiter(c)
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute); err != nil {
		return fmt.Errorf("wait for table %s to go: %w", name, err)
	}
	return nil
}

func deleteStream(ctx context.Context, c *kinesis.Client, name string) error {
	_, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	var nf *ktypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete stream %s: %w", name, err)
	}
	w := kinesis.NewStreamNotExistsWaiter(c)
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, 5*time.Minute); err != nil {
		return fmt.Errorf("wait for stream %s to go: %w", name, err)
	}
	return nil
}
