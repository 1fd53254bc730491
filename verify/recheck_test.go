package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// TestRecheckNewerItems runs verify against the real stack with items newer
// than the snapshot: such differences are re-checked and end up resolved (the
// item caught up), confirmed (nothing changes) or in flight (the row changes
// in every round); a difference with an old version is reported as it is.
func TestRecheckNewerItems(t *testing.T) {
	ctx := t.Context()
	st := stack.ForTest(t)
	db := st.TestDatabase(t)
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	target := "verify_" + hex.EncodeToString(b)
	plan := languagePlan(ctx, t, db, target)
	ddb := st.DynamoClient()
	if err := load.EnsureTables(ctx, ddb, []load.TableSpec{{Name: target, Key: load.KeySchema{PK: "pk", SK: "sk"}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(target)})
	})
	w := load.NewDynamoWriter(ddb, load.DynamoConfig{})
	old := extract.Position{LSN: 1}.Version()
	newer := extract.Position{LSN: 1 << 40}.Version()
	items := map[string]transform.Item{}
	err := SourceItems(ctx, db, plan, func(_ *transform.TablePlan, _ string, row extract.Row, item transform.Item) error {
		items[row[0].Text] = item
		version := old
		stale := maps.Clone(item)
		switch row[0].Text {
		case "1", "2", "3":
			version = newer
			stale["name"] = &types.AttributeValueMemberS{Value: "stale"}
		case "4":
			stale["name"] = &types.AttributeValueMemberS{Value: "stale"}
		}
		_, err := w.PutIfNewer(ctx, target, stale, version)
		return err
	})
	if err != nil || len(items) != 6 {
		t.Fatalf("%d items: %v", len(items), err)
	}

	conn, err := extract.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rounds := 0
	testHookRound = func(round int) {
		rounds++
		// Language 1 changes in every round; language 2's item catches up.
		if _, err := conn.Exec(ctx, "UPDATE language SET name = 'Round ' || $1::int WHERE language_id = 1", round); err != nil {
			t.Error(err)
		}
		if round == 0 {
			if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(target), Item: withVersion(items["2"], newer)}); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(func() { testHookRound = nil })

	rep, err := Run(ctx, Config{SourceURL: db, Plan: plan, Dynamo: ddb, Segments: 2, Rechecks: 3, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	tb := rep.Tables[0]
	var got []string
	for _, f := range tb.Findings {
		got = append(got, f.Kind+" "+f.Key)
	}
	want := []string{"differs language_id=3", "differs language_id=4", "in_flight language_id=1"}
	if !slices.Equal(got, want) || tb.Differing != 2 || tb.InFlight != 1 || rounds != 3 {
		t.Errorf("findings %q (differing %d, in flight %d, %d rounds), want %q", got, tb.Differing, tb.InFlight, rounds, want)
	}
	for _, f := range tb.Findings {
		if f.Kind == KindInFlight && !strings.Contains(f.Reason, "3 re-checks") {
			t.Errorf("in flight reason %q", f.Reason)
		}
	}
	if rep.Verdict != VerdictDifferences || rep.ExitCode() != 1 {
		t.Errorf("verdict %s", rep.Verdict)
	}
}

func withVersion(item transform.Item, v string) transform.Item {
	out := maps.Clone(item)
	out[transform.AttrVersion] = &types.AttributeValueMemberN{Value: v}
	return out
}

// languagePlan compiles mappings/pagila.yaml, writing to target, for the
// language table alone.
func languagePlan(ctx context.Context, t *testing.T, db, target string) *transform.Plan {
	data, err := os.ReadFile(filepath.Join("..", "mappings", "pagila.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pagila.yaml")
	s := strings.Replace(string(data), "\n  target: pagila\n", "\n  target: "+target+"\n", 1)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := mappings.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := extract.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tables, err := extract.LoadTables(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	full, err := transform.Compile(m, tables)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := full.Restrict([]string{"language"})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
