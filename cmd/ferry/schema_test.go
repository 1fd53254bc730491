package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/load"
)

// waitSchemaRefills waits (bounded) until the recorded schema changes satisfy
// want and every refill they queued is done. (Several DDLs with no change of
// the table between them reach sync as one change: pgoutput announces a
// table's definition before its next change.)
func waitSchemaRefills(ctx context.Context, t *testing.T, ctl *load.ControlStore, slot string, want func(described string) bool) []pipeline.SchemaChange {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	var last []string
	for time.Now().Before(deadline) {
		changes, err := pipeline.SchemaChanges(ctx, ctl, slot)
		if err != nil && !isNotFound(err) {
			t.Fatal(err)
		}
		_, done, err := pipeline.SnapshotRecords(ctx, ctl, slot)
		if err != nil && !isNotFound(err) {
			t.Fatal(err)
		}
		finished := 0
		for _, c := range changes {
			if _, ok := done[c.Refill]; ok && c.Refill != "" {
				finished++
			}
		}
		var all []string
		last = last[:0]
		for _, c := range changes {
			all = append(all, c.Table+": "+c.Describe())
			_, ok := done[c.Refill]
			last = append(last, fmt.Sprintf("%s at %s, %s: %s (refill %q done=%v)", c.Table, c.LSN, c.Action, c.Describe(), c.Refill, ok))
		}
		if finished == len(changes) && want(strings.Join(all, "\n")) {
			return changes
		}
		select { // poll interval of a bounded wait
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("sync did not follow and refill the schema changes within 5 minutes; recorded:\n%s", strings.Join(last, "\n"))
	return nil
}

// Schema changes while sync runs under the workload, each followed without a
// restart: a nullable column added, a NOT NULL column with a volatile
// default, a rename, type changes (integer → bigint, varchar(n) → text, a
// numeric's scale on the partitioned payment), a drop. Afterwards DynamoDB
// and the folded stream equal the source, the values written after each DDL
// are in the items and events, and verify --stream exits 0.
func TestSchemaChangesFollowed(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	// Pagila's views read the columns whose types change here; PostgreSQL
	// refuses ALTER COLUMN TYPE under a view (this is the test's own copy).
	e.exec(ctx, t, `DO $$ DECLARE r record; BEGIN
		FOR r IN SELECT matviewname AS n FROM pg_matviews WHERE schemaname = 'public' LOOP EXECUTE format('DROP MATERIALIZED VIEW %I CASCADE', r.n); END LOOP;
		FOR r IN SELECT viewname AS n FROM pg_views WHERE schemaname = 'public' LOOP EXECUTE format('DROP VIEW IF EXISTS %I CASCADE', r.n); END LOOP;
	END $$`,
		// Pagila 3's postal_code is text: make it the varchar(10) the type change below widens.
		`ALTER TABLE address ALTER COLUMN postal_code TYPE varchar(10)`)
	tmFerry(ctx, t, 0, "backfill", e.args()...)
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	p := e.startSync(t)
	e.waitStreaming(ctx, t)
	stopWorkload := startWorkload(ctx, t, e, 40, 53)
	waitApplied(ctx, t, ctl, e.slot, 50)

	e.exec(ctx, t,
		`ALTER TABLE customer ADD COLUMN nickname text`,
		`UPDATE customer SET nickname = 'n' || customer_id WHERE customer_id <= 20`,
		`ALTER TABLE customer ADD COLUMN joined timestamptz NOT NULL DEFAULT clock_timestamp()`,
		`ALTER TABLE customer RENAME COLUMN nickname TO alias`,
		`UPDATE customer SET alias = 'a' || customer_id WHERE customer_id <= 10`,
		`ALTER TABLE customer ALTER COLUMN address_id TYPE bigint`,
		`ALTER TABLE address ALTER COLUMN postal_code TYPE text`,
		`UPDATE address SET postal_code = 'postal-' || address_id || '-long-enough' WHERE address_id <= 5`,
		`ALTER TABLE payment ALTER COLUMN amount TYPE numeric(7,3)`,
		`UPDATE customer SET email = 'schema@example.com' WHERE customer_id = 3`,
	)
	all := func(parts ...string) func(string) bool {
		return func(d string) bool {
			for _, p := range parts {
				if !strings.Contains(d, p) {
					return false
				}
			}
			return true
		}
	}
	// A rename is told from a drop and an add by the column's attnum, read
	// from the catalogue when sync reaches the change; when the catalogue has
	// moved on it is seen as both (the refill makes either exact).
	waitSchemaRefills(ctx, t, ctl, e.slot, func(d string) bool {
		return all("public.customer: added column nickname (text)", "added column joined (timestamp with time zone)",
			"changed the type of address_id from integer to bigint",
			"public.payment: changed the type of amount from numeric(5,2) to numeric(7,3)",
			"public.address: changed the type of postal_code from character varying(10) to text")(d) &&
			(strings.Contains(d, "renamed column nickname to alias") || strings.Contains(d, "added column alias (text)"))
	})
	e.exec(ctx, t, `ALTER TABLE customer DROP COLUMN alias`, `UPDATE customer SET first_name = 'AFTER DROP' WHERE customer_id = 4`)
	changes := waitSchemaRefills(ctx, t, ctl, e.slot, all("dropped column alias"))
	for _, c := range changes {
		t.Logf("schema change %s of %s at %s: %s (refill %s)", c.Action, c.Table, c.LSN, c.Describe(), c.Refill)
		if c.Action != "followed" {
			t.Errorf("%s: %s, want followed", c.Table, c.Action)
		}
	}
	stopWorkload()
	e.checkSynced(ctx, t)

	// The values written after the DDL, not only the counts.
	ddb := e.st.DynamoClient()
	item := func(pk, sk string) map[string]types.AttributeValue {
		t.Helper()
		out, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.target), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}})
		if err != nil || out.Item == nil {
			t.Fatalf("item %s/%s: %v", pk, sk, err)
		}
		return out.Item
	}
	c4 := item("CUSTOMER#4", "PROFILE")
	if _, ok := c4["joined"].(*types.AttributeValueMemberS); !ok {
		t.Errorf("customer 4 has no joined (the NOT NULL column with a volatile default): %v", c4["joined"])
	}
	if _, ok := c4["alias"]; ok {
		t.Error("customer 4 still has the dropped column alias")
	}
	if _, ok := c4["nickname"]; ok {
		t.Error("customer 4 still has the renamed column's old name")
	}
	if fn, _ := c4["first_name"].(*types.AttributeValueMemberS); fn == nil || fn.Value != "AFTER DROP" {
		t.Errorf("customer 4 first_name %v, want the update after the drop", c4["first_name"])
	}
	if pc, _ := item("ADDRESS#2", "ADDRESS")["postal_code"].(*types.AttributeValueMemberS); pc == nil || pc.Value != "postal-2-long-enough" {
		t.Errorf("address 2 postal_code %v, want the text written after varchar(10) → text", pc)
	}

	// The stream: one schema event per change, and the values after each.
	events, err := testkit.ReadStream(ctx, e.st.KinesisClient(), e.stream)
	if err != nil {
		t.Fatal(err)
	}
	schemaEvents, aliasSeen := 0, false
	for _, ev := range events {
		if ev.Op == "schema" {
			schemaEvents++
			continue
		}
		if ev.Source.Table == "customer" && ev.Op == "u" && string(ev.After["customer_id"]) == "7" {
			var alias string
			if json.Unmarshal(ev.After["alias"], &alias) == nil && alias == "a7" {
				aliasSeen = true
			}
		}
	}
	if schemaEvents < len(changes) {
		t.Errorf("%d schema events on the stream, want one per change (%d)", schemaEvents, len(changes))
	}
	if !aliasSeen {
		t.Error("no update event of customer 7 carries alias = a7 (the renamed column's value)")
	}
	tmFerry(ctx, t, 0, "verify --stream", "verify", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--stream")
	status := tmFerry(ctx, t, 0, "status", "status", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--counts=false")
	if !strings.Contains(status, fmt.Sprintf("schema changes: %d followed, 0 stopped at", len(changes))) {
		t.Errorf("status does not list the schema changes:\n%s", status)
	}
	p.stop(t)
}
