package main

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/internal/workload"
	"github.com/ferry-migrate/ferry/load"
)

// Online snapshots of rental and payment while sync applies the DVD-store
// workload: sync's commit→applied lag stays bounded during the snapshot, a
// sync killed with -9 in the middle of the second one resumes it from its
// recorded chunk, and afterwards DynamoDB and the folded stream equal the
// source with no per-key order inversion (the re-read rows never overtake a
// newer change of the same row).
func TestOnlineSnapshotUnderWorkload(t *testing.T) {
	// Not parallel: the lag bound (p99 < 2 s) needs the machine to itself,
	// so `make test` runs it alone, after the other packages (QUIET).
	e := newBackfillEnv(t)
	ctx := t.Context()
	if code, out, errOut := runFerry(t, e.args()...); code != 0 {
		t.Fatalf("backfill exit %d\n%s\n%s", code, out, errOut)
	}
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	p := e.startSync(t)
	e.waitStreaming(ctx, t)

	wctx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	wdone := make(chan error, 1)
	go func() {
		_, err := workload.Run(wctx, workload.Config{SourceURL: e.db, Rate: 60, Seed: 23})
		wdone <- err
	}()
	stopWatch := testkit.WatchVersions(ctx, e.st.DynamoClient(), e.target, 300)
	waitApplied(ctx, t, ctl, e.slot, 100)

	// 1. rental, with the lag probed throughout.
	probe := startLagProbe(ctx, t, e)
	out, err := exec.CommandContext(ctx, ferryBin, "snapshot", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--tables", "rental", "--wait").CombinedOutput()
	lags := probe.stop()
	if err != nil {
		t.Fatalf("ferry snapshot --wait: %v\n%s", err, out)
	}
	_, records, err := pipeline.SnapshotRecords(ctx, ctl, e.slot)
	if err != nil || len(records) != 1 {
		t.Fatalf("after snapshot --wait: %d done records, %v\n%s", len(records), err, out)
	}
	var done pipeline.SnapshotProgress
	for _, d := range records {
		done = d
	}
	t.Logf("ferry snapshot --wait:\n%s", out)
	if len(lags) < 10 {
		t.Fatalf("only %d lag probes during the snapshot", len(lags))
	}
	slices.Sort(lags)
	p99 := lags[(len(lags)*99)/100]
	t.Logf("rental: %d rows in %d chunks; commit→applied lag during it: p50 %v, p99 %v, largest %v (%d probes)",
		done.Rows, done.Chunks, lags[len(lags)/2], p99, lags[max(0, len(lags)-5):], len(lags))
	if p99 > 2*time.Second {
		t.Errorf("sync's lag p99 %v during the online snapshot, want < 2s", p99)
	}
	if done.Rows < 15000 || done.Chunks < 16044/250 {
		t.Errorf("rental snapshot emitted %d rows in %d chunks, want most of its ~16044 rows in chunks of 250", done.Rows, done.Chunks)
	}

	// 2. payments with even ids (--where), with sync killed in the middle: the snapshot resumes at
	// the chunk its checkpoint recorded.
	payment := pipeline.NewSnapshotID(time.Now())
	if err := pipeline.SaveSnapshotRequest(ctx, ctl, e.slot, pipeline.SnapshotRequest{ID: payment, Tables: []string{"public.payment"},
		Where: "payment_id % 2 = 0", Created: time.Now(), Origin: "test"}); err != nil {
		t.Fatal(err)
	}
	var before int64
	waitSnapshot(ctx, t, ctl, e.slot, payment, func(sp *pipeline.SnapshotProgress) bool {
		before = sp.Chunks
		return sp.Chunks >= 10
	})
	p.kill9(t)
	p = e.startSync(t)
	var resumedAt int64 = -1
	done = waitSnapshot(ctx, t, ctl, e.slot, payment, func(sp *pipeline.SnapshotProgress) bool {
		if resumedAt < 0 {
			resumedAt = sp.Chunks
		}
		return false
	})
	t.Logf("payment: %d chunks durable at the kill, first progress after the restart at %d chunks, done with %d rows in %d chunks",
		before, resumedAt, done.Rows, done.Chunks)
	if resumedAt < before {
		t.Errorf("the restarted sync went back to chunk %d from the recorded %d", resumedAt, before)
	}
	if done.Rows < 7500 || done.Rows > 10000 || done.Rows > done.Chunks*250 {
		t.Errorf("payment snapshot (payment_id %% 2 = 0): %d rows in %d chunks, want its 8025 even rows and the workload's new ones (not the odd ones) in chunks of at most 250", done.Rows, done.Chunks)
	}

	stopWorkload()
	if err := <-wdone; err != nil && err != context.Canceled {
		t.Fatal(err)
	}
	e.checkSynced(ctx, t)
	if code, out, errOut := runFerry(t, "verify", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--stream"); code != 0 {
		t.Errorf("verify --stream exit %d\n%s\n%s", code, out, errOut)
	}
	p.stop(t)
	if regress := stopWatch(); len(regress) > 0 {
		for _, r := range regress {
			t.Error(r)
		}
	}
}

// waitSnapshot waits (bounded) until the snapshot's done record exists and
// returns it; until then it shows each new durable progress to seen, and
// returns early (with that progress) when seen returns true.
func waitSnapshot(ctx context.Context, t *testing.T, ctl *load.ControlStore, slot, id string, seen func(*pipeline.SnapshotProgress) bool) pipeline.SnapshotProgress {
	t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	var last int64 = -1
	for time.Now().Before(deadline) {
		_, done, err := pipeline.SnapshotRecords(ctx, ctl, slot)
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := done[id]; ok {
			return d
		}
		if seen != nil {
			cp, ok, err := pipeline.LoadCheckpoint(ctx, ctl, slot)
			if err != nil {
				t.Fatal(err)
			}
			if ok && cp.Snapshot != nil && cp.Snapshot.Request == id && cp.Snapshot.Chunks != last {
				last = cp.Snapshot.Chunks
				if seen(cp.Snapshot) {
					return *cp.Snapshot
				}
			}
		}
		select { // poll interval of a bounded wait
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("snapshot %s did not finish within 4 minutes", id)
	return pipeline.SnapshotProgress{}
}

// lagProbe measures sync's commit→applied lag: it changes a row the
// workload leaves alone (language 1's name) and times how long the change
// takes to show in DynamoDB, one probe after the other.
type lagProbe struct {
	cancel context.CancelFunc
	done   chan []time.Duration
}

func startLagProbe(ctx context.Context, t *testing.T, e *backfillEnv) *lagProbe {
	t.Helper()
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &lagProbe{cancel: cancel, done: make(chan []time.Duration, 1)}
	client := e.st.DynamoClient()
	key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "LANGUAGE#1"}, "sk": &types.AttributeValueMemberS{Value: "LANGUAGE"}}
	go func() {
		defer conn.Close(context.Background())
		var lags []time.Duration
		for i := 0; ctx.Err() == nil; i++ {
			name := fmt.Sprintf("probe-%d", i)
			start := time.Now()
			if _, err := conn.Exec(ctx, "UPDATE language SET name = $1 WHERE language_id = 1", name); err != nil {
				break
			}
			for ctx.Err() == nil {
				out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.target), Key: key, ConsistentRead: aws.Bool(true)})
				if err == nil {
					if s, ok := out.Item["name"].(*types.AttributeValueMemberS); ok && strings.TrimRight(s.Value, " ") == name { // character(20)
						lag := time.Since(start)
						lags = append(lags, lag)
						if lag > time.Second {
							t.Logf("probe at %s: lag %v", start.UTC().Format("15:04:05.000"), lag)
						}
						break
					}
				}
				select { // the probe's poll interval
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
			select { // one probe every 100 ms
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		p.done <- lags
	}()
	return p
}

func (p *lagProbe) stop() []time.Duration {
	p.cancel()
	return <-p.done
}
