package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry/extract"
)

// WaitCaughtUp writes a transactional logical message to the source and waits
// (at most limit) until the slot has been acknowledged past it. Since sync
// acknowledges only what DynamoDB, Kinesis and the checkpoint hold, every
// change committed before the call is then durable in the targets: the moment
// an operator can cut over, or a test can compare.
func WaitCaughtUp(ctx context.Context, db, slot string, limit time.Duration) error {
	conn, err := extract.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var target string
	if err := conn.QueryRow(ctx, "SELECT pg_logical_emit_message(true, 'ferry_catch_up', now()::text)::text").Scan(&target); err != nil {
		return fmt.Errorf("write catch-up marker: %w", err)
	}
	want, err := extract.ParseLSN(target)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		info, ok, err := extract.LookupSlot(ctx, conn, slot)
		if err != nil {
			return err
		}
		if ok && info.ConfirmedFlushLSN > want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slot %s confirmed %s, not past %s after %s: is `ferry sync` running?", slot, info.ConfirmedFlushLSN, want, limit)
		}
		// A fixed-interval poll of progress against a deadline, not a retry
		// of a failure, so it stays hand-written rather than a load.RetryLoop:
		// its end is the deadline, and its error names the slot's position.
		select { // bounded poll of the server's view of the slot
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
