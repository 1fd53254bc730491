package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/internal/workload"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
	"github.com/ferry-migrate/ferry/verify"
)

func (e *backfillEnv) verifyArgs(extra ...string) []string {
	return append([]string{"verify", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot, "--control-table", e.control}, extra...)
}

// runVerifyJSON runs verify with --format json and decodes the report.
func runVerifyJSON(t *testing.T, args ...string) (int, verify.Report) {
	t.Helper()
	code, out, errOut := runFerry(t, append(args, "--format", "json")...)
	var rep verify.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify exit %d, output is not a JSON report: %v\n%s\n%s", code, err, out, errOut)
	}
	if rep.SchemaVersion != 1 {
		t.Errorf("schema_version = %d", rep.SchemaVersion)
	}
	return code, rep
}

// findingSet lists the findings of every table as "kind table (key)".
func findingSet(rep verify.Report) []string {
	var out []string
	for _, tb := range rep.Tables {
		for _, f := range tb.Findings {
			out = append(out, fmt.Sprintf("%s %s (%s)", f.Kind, f.Table, f.Key))
		}
	}
	slices.Sort(out)
	return out
}

func TestVerifyFindsAndRepairsDifferences(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	if code, out, errOut := runFerry(t, e.args()...); code != 0 {
		t.Fatalf("backfill exit %d\n%s\n%s", code, out, errOut)
	}

	// A clean backfill verifies: exit 0, every table consistent.
	code, rep := runVerifyJSON(t, e.verifyArgs()...)
	if code != 0 || rep.Verdict != verify.VerdictConsistent {
		t.Fatalf("clean verify: exit %d, verdict %s, findings %v", code, rep.Verdict, findingSet(rep))
	}
	if len(rep.Tables) != 15 || rep.Totals.SourceRows != pagilaRows || rep.Totals.TargetItems != pagilaRows || rep.Totals.Matching != pagilaRows {
		t.Errorf("clean verify: %d tables, totals %+v", len(rep.Tables), rep.Totals)
	}
	for _, tb := range rep.Tables {
		if tb.Verdict != verify.VerdictConsistent || tb.RangesDrilled != 0 {
			t.Errorf("%s: verdict %s, %d ranges drilled", tb.Table, tb.Verdict, tb.RangesDrilled)
		}
	}

	// Three changes made behind ferry's back.
	ddb := e.st.DynamoClient()
	key := func(pk, sk string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}
	}
	if _, err := ddb.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(e.target), Key: key("CUSTOMER#5", "PROFILE")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(e.target), Key: key("FILM#1", "FILM"),
		UpdateExpression:          aws.String("SET title = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberS{Value: "TAMPERED"}}}); err != nil {
		t.Fatal(err)
	}
	actor, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.target), Key: key("ACTOR#1", "ACTOR")})
	if err != nil || actor.Item == nil {
		t.Fatalf("actor 1: %v", err)
	}
	foreign := maps.Clone(actor.Item)
	foreign["pk"] = &types.AttributeValueMemberS{Value: "ACTOR#9999"}
	foreign["gsi1pk"] = &types.AttributeValueMemberS{Value: "ACTOR#9999"}
	foreign["actor_id"] = &types.AttributeValueMemberN{Value: "9999"}
	if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.target), Item: foreign}); err != nil {
		t.Fatal(err)
	}

	code, rep = runVerifyJSON(t, e.verifyArgs()...)
	want := []string{"differs public.film (film_id=1)", "extra public.actor (actor_id=9999)", "missing public.customer (customer_id=5)"}
	if code != 1 || rep.Verdict != verify.VerdictDifferences || !slices.Equal(findingSet(rep), want) {
		t.Fatalf("verify after damage: exit %d, verdict %s, findings %q, want %q", code, rep.Verdict, findingSet(rep), want)
	}
	if rep.Totals.Missing != 1 || rep.Totals.Extra != 1 || rep.Totals.Differing != 1 {
		t.Errorf("totals %+v", rep.Totals)
	}
	for _, tb := range rep.Tables {
		for _, f := range tb.Findings {
			if f.Kind != verify.KindDiffers {
				continue
			}
			if len(f.Columns) != 1 || f.Columns[0].Column != "title" || f.Columns[0].Source != `"ACADEMY DINOSAUR"` || f.Columns[0].Target != `"TAMPERED"` {
				t.Errorf("film 1 differences: %+v", f.Columns)
			}
		}
	}

	// --repair fixes the three keys; the next verify is clean.
	code, rep = runVerifyJSON(t, e.verifyArgs("--repair")...)
	if code != 0 || rep.Verdict != verify.VerdictRepaired || rep.Repair == nil || rep.Repair.Fixed != 3 || rep.Repair.NotFixed != 0 {
		t.Fatalf("repair: exit %d, verdict %s, repair %+v, findings %q", code, rep.Verdict, rep.Repair, findingSet(rep))
	}
	code, rep = runVerifyJSON(t, e.verifyArgs()...)
	if code != 0 || rep.Verdict != verify.VerdictConsistent {
		t.Fatalf("verify after repair: exit %d, verdict %s, findings %q", code, rep.Verdict, findingSet(rep))
	}
	// The other formats render the same run.
	for _, format := range []string{"text", "markdown", "html"} {
		code, out, errOut := runFerry(t, e.verifyArgs("--tables", "film", "--format", format)...)
		if code != 0 || !strings.Contains(out, "public.film") {
			t.Errorf("--format %s: exit %d\n%s\n%s", format, code, out, errOut)
		}
	}
}

func TestVerifyStream(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	if code, out, errOut := runFerry(t, e.args("--tables", "language")...); code != 0 {
		t.Fatalf("backfill exit %d\n%s\n%s", code, out, errOut)
	}
	// A stream of our own, built from the language rows: language 3 missing,
	// language 2's events reordered (its update before its snapshot read), and
	// language 4's read event twice.
	stream := testkit.Name("verify-")
	kin := e.st.KinesisClient()
	if err := load.EnsureStreams(ctx, kin, []string{stream}, 1); err != nil {
		t.Fatal(err)
	}
	mapping := testkit.PagilaMapping(t, e.target, stream)
	c, err := loadPlan(ctx, e.db, mapping)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := c.plan.Restrict([]string{"language"})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]extract.Row{}
	err = verify.SourceItems(ctx, e.db, plan, func(tp *transform.TablePlan, _ string, row extract.Row, _ transform.Item) error {
		rows[row[0].Text] = row
		return nil
	})
	if err != nil || len(rows) != 6 {
		t.Fatalf("language rows: %d, %v", len(rows), err)
	}
	tp := plan.Tables[0]
	put := func(id string, op extract.Op, lsn extract.LSN) {
		ch := extract.Change{Table: tp.Source, Op: op, Pos: extract.Position{LSN: lsn}, After: rows[id], Commit: time.Unix(0, 0)}
		pk, data, err := tp.Record(&ch, transform.RecordSource{DB: "pagila"}, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kin.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(pk), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	put("1", extract.OpRead, 0x100)
	put("2", extract.OpUpdate, 0x200)
	put("2", extract.OpRead, 0x100)
	put("4", extract.OpRead, 0x100)
	put("4", extract.OpRead, 0x100)
	put("5", extract.OpRead, 0x100)
	put("6", extract.OpRead, 0x100)

	code, rep := runVerifyJSON(t, "verify", "--source", e.db, "--mapping", mapping, "--slot", e.slot, "--control-table", e.control,
		"--tables", "language", "--stream")
	if code != 1 || len(rep.Streams) != 1 || len(rep.Tables) != 1 || rep.Tables[0].Verdict != verify.VerdictConsistent {
		t.Fatalf("verify --stream: exit %d, report %+v", code, rep)
	}
	s := rep.Streams[0]
	if s.Stream != stream || s.Events != 7 || s.Keys != 5 || s.SourceRows != 6 || s.Missing != 1 || s.Inversions != 1 || s.Duplicates != 1 ||
		s.Differing != 0 || s.Extra != 0 || s.Verdict != verify.VerdictDifferences {
		t.Errorf("stream report %+v", s)
	}
	var got []string
	for _, f := range s.Findings {
		got = append(got, fmt.Sprintf("%s %s (%s)", f.Kind, f.Table, f.Key))
	}
	slices.Sort(got)
	want := []string{"duplicate public.language (language_id=4)", "inversion public.language (language_id=2)", "missing public.language (language_id=3)"}
	if !slices.Equal(got, want) {
		t.Errorf("stream findings %q, want %q", got, want)
	}
}

// TestVerifyWhileSyncRuns: ten verifies (every third with --stream) while sync
// carries the workload report no false difference: rows that change during a
// check are re-checked once sync has applied past them, and only ever end up
// consistent or in flight.
func TestVerifyWhileSyncRuns(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	e.shrink(ctx, t)
	if code, out, errOut := runFerry(t, e.args()...); code != 0 {
		t.Fatalf("backfill exit %d\n%s\n%s", code, out, errOut)
	}
	p := e.startSync(t)
	e.waitStreaming(ctx, t)
	wctx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	wdone := make(chan error, 1)
	go func() {
		_, err := workload.Run(wctx, workload.Config{SourceURL: e.db, Rate: 40, Seed: 71, Workers: 2})
		wdone <- err
	}()
	inFlight := 0
	for i := range 10 {
		args := []string{"verify", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot, "--control-table", e.control}
		if i%3 == 2 {
			args = append(args, "--stream")
		}
		code, rep := runVerifyJSON(t, args...)
		if code != 0 {
			t.Errorf("verify %d (stream %v) while sync runs: exit %d, verdict %s, sync %+v, findings %q", i, i%3 == 2, code, rep.Verdict, rep.Sync, findingSet(rep))
			for _, tb := range rep.Tables {
				for _, f := range tb.Findings {
					t.Errorf("  %s %s (%s): %s", f.Kind, f.Table, f.Key, f.Reason)
				}
			}
			for _, s := range rep.Streams {
				t.Errorf("  stream %s: %+v", s.Stream, s)
			}
		}
		inFlight += int(rep.Totals.InFlight)
	}
	stopWorkload()
	if err := <-wdone; err != nil && err != context.Canceled {
		t.Fatal(err)
	}
	t.Logf("10 verifies under the workload: %d rows reported in flight", inFlight)
	e.checkSynced(ctx, t)
	p.stop(t)
}
