package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
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
			if _, ok := done[c.Refill]; (ok && c.Refill != "") || (c.Refill == "" && c.Action == "followed" && len(c.Kept) > 0) {
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

// item reads an item of the environment's target (strongly consistent); a
// missing item fails the test.
func (e *backfillEnv) item(ctx context.Context, t *testing.T, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := e.st.DynamoClient().GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.target), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}})
	if err != nil || out.Item == nil {
		t.Fatalf("item %s/%s: %v", pk, sk, err)
	}
	return out.Item
}

// itemsOf returns the items of one partition key of the target.
func (e *backfillEnv) itemsOf(ctx context.Context, t *testing.T, pk string) []map[string]types.AttributeValue {
	t.Helper()
	out, err := e.st.DynamoClient().Query(ctx, &dynamodb.QueryInput{TableName: aws.String(e.target), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

// verifyStream runs ferry verify --stream and expects exit 0.
func (e *backfillEnv) verifyStream(ctx context.Context, t *testing.T) {
	t.Helper()
	tmFerry(ctx, t, 0, "verify --stream", "verify", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--stream")
}

// dropViews drops Pagila's views (in the test's own copy of the database):
// they read columns whose types the tests change, and PostgreSQL refuses
// ALTER COLUMN TYPE under a view.
func dropViews(ctx context.Context, t *testing.T, e *backfillEnv) {
	t.Helper()
	e.exec(ctx, t, `DO $$ DECLARE r record; BEGIN
		FOR r IN SELECT matviewname AS n FROM pg_matviews WHERE schemaname = 'public' LOOP EXECUTE format('DROP MATERIALIZED VIEW %I CASCADE', r.n); END LOOP;
		FOR r IN SELECT viewname AS n FROM pg_views WHERE schemaname = 'public' LOOP EXECUTE format('DROP VIEW IF EXISTS %I CASCADE', r.n); END LOOP;
	END $$`)
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
	dropViews(ctx, t, e)
	// Pagila 3's postal_code is text: make it the varchar(10) the type change below widens.
	e.exec(ctx, t, `ALTER TABLE address ALTER COLUMN postal_code TYPE varchar(10)`)
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
	item := func(pk, sk string) map[string]types.AttributeValue { return e.item(ctx, t, pk, sk) }
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
	e.verifyStream(ctx, t)
	// status counts every recorded change: the column changes above, and the
	// partition the workload creates for the current month once the
	// catalogue watcher has seen it (whenever its poll comes).
	recorded := func() int {
		all, err := pipeline.SchemaChanges(ctx, ctl, e.slot)
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	before := recorded()
	status := tmFerry(ctx, t, 0, "status", "status", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--counts=false")
	after := recorded()
	m := regexp.MustCompile(`schema changes: (\d+) followed, 0 stopped at`).FindStringSubmatch(status)
	if m == nil {
		t.Errorf("status does not list the schema changes:\n%s", status)
	} else if n, _ := strconv.Atoi(m[1]); n < len(changes) || n < before || n > after {
		t.Errorf("status lists %d schema changes followed; %d were recorded (%d before, %d after it), %d of columns:\n%s", n, after, before, after, len(changes), status)
	}
	p.stop(t)
}

// Partitions of the partitioned payment change under a running sync and the
// workload, none of it in the log: a partition detached, one dropped, one
// truncated, and a filled table attached. Sync sees them in the catalogue,
// deletes the items whose rows left (in stream order, `d` events on the
// stream) and re-reads the attached rows. And a table is created that a
// pattern entry of the mapping ("public.*") maps: sync adds it to the
// migration online. Afterwards DynamoDB and the folded stream equal the
// source and verify --stream exits 0.
func TestPartitionChangesFollowed(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	data, err := os.ReadFile(e.mapping)
	if err != nil {
		t.Fatal(err)
	}
	e.mapping = filepath.Join(t.TempDir(), "pattern.yaml")
	pattern := fmt.Sprintf(`  - source: "public.*"
    target: %s
    exclude: [payment_*]
    partition_key: {name: pk, template: "{_table}#{_pk}"}
    sort_key: {name: sk, template: "{_table}"}
`, e.target)
	if err := os.WriteFile(e.mapping, append(data, pattern...), 0o644); err != nil {
		t.Fatal(err)
	}
	tmFerry(ctx, t, 0, "backfill", e.args()...)
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	p := e.startSync(t, "--catalogue-poll", "500ms")
	e.waitStreaming(ctx, t)
	stopWorkload := startWorkload(ctx, t, e, 30, 61)
	waitApplied(ctx, t, ctl, e.slot, 30)

	// A new table the pattern maps, filled before sync sees it.
	e.exec(ctx, t, `CREATE TABLE review (review_id serial PRIMARY KEY, film_id integer NOT NULL, body text)`,
		`INSERT INTO review (film_id, body) SELECT film_id, 'seen ' || film_id FROM film WHERE film_id <= 30`)

	var gone []int64 // payment_ids of the partitions that leave
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT payment_id FROM payment_p2022_01 UNION ALL SELECT payment_id FROM payment_p2022_02
		UNION ALL SELECT payment_id FROM payment_p2022_03 ORDER BY 1 LIMIT 5`)
	if err == nil {
		gone, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	conn.Close(ctx)
	if err != nil || len(gone) == 0 {
		t.Fatalf("payments of the first partitions: %v %v", gone, err)
	}
	e.exec(ctx, t,
		// A filled table, unpublished until it becomes a partition.
		`CREATE TABLE payment_p2021_12 (LIKE payment INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
		`INSERT INTO payment_p2021_12 (customer_id, staff_id, rental_id, amount, payment_date)
			SELECT customer_id, staff_id, rental_id, amount + 100, payment_date - interval '2 months'
			FROM payment WHERE payment_date >= '2022-02-01' AND payment_date < '2022-02-03'`,
		`ALTER TABLE payment DETACH PARTITION payment_p2022_01`,
		// DROP TABLE of a partition locks it, then its parent; the
		// workload's inserts lock the parent, then the partition: lock the
		// parent first, as a DBA does, or the two may deadlock (40P01).
		`BEGIN; LOCK TABLE payment IN ACCESS EXCLUSIVE MODE; DROP TABLE payment_p2022_02; COMMIT`,
		`TRUNCATE payment_p2022_03`,
		`ALTER TABLE payment ATTACH PARTITION payment_p2021_12 FOR VALUES FROM ('2021-12-01') TO ('2022-01-01')`,
	)
	changes := waitSchemaRefills(ctx, t, ctl, e.slot, func(d string) bool {
		for _, want := range []string{"partition public.payment_p2022_01 detached or dropped", "partition public.payment_p2022_02 detached or dropped",
			"partition public.payment_p2022_03 truncated", "partition public.payment_p2021_12 added with rows"} {
			if !strings.Contains(d, want) {
				return false
			}
		}
		return true
	})
	for _, c := range changes {
		t.Logf("schema change of %s at %s: %s (refill %s)", c.Table, c.LSN, c.Describe(), c.Refill)
	}
	// The new table: added and snapshotted online (origin sync), then its
	// changes come through the log.
	snap, _ := waitSnapshotOf(ctx, t, ctl, e.slot, pipeline.OriginSync)
	if !slices.Equal(snap.Tables, []string{"public.review"}) {
		t.Errorf("the snapshot of the new table read %v, want public.review", snap.Tables)
	}
	e.exec(ctx, t, `INSERT INTO review (film_id, body) SELECT film_id, 'later ' || film_id FROM film WHERE film_id BETWEEN 31 AND 35`,
		`UPDATE review SET body = 'changed' WHERE review_id = 2`, `DELETE FROM review WHERE review_id = 3`)
	stopWorkload()
	e.checkSynced(ctx, t)
	if b, _ := e.item(ctx, t, "review#2", "review")["body"].(*types.AttributeValueMemberS); b == nil || b.Value != "changed" {
		t.Errorf("review 2: body %v, want the update after the table was added", b)
	}

	// The values: the rows that left have no item; an attached row's item
	// carries its amount.
	for _, id := range gone {
		if len(e.itemsOf(ctx, t, fmt.Sprintf("PAYMENT#%d", id))) != 0 {
			t.Errorf("payment %d left the table with its partition, its item is still there", id)
		}
	}
	var id int64
	var amount float64
	conn, err = extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.QueryRow(ctx, `SELECT payment_id, amount::float8 FROM payment WHERE payment_date < '2022-01-01' ORDER BY payment_id LIMIT 1`).Scan(&id, &amount)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	attached := e.itemsOf(ctx, t, fmt.Sprintf("PAYMENT#%d", id))
	if len(attached) != 1 {
		t.Fatalf("attached payment %d: %d items", id, len(attached))
	}
	if got, _ := attached[0]["amount"].(*types.AttributeValueMemberN); got == nil || got.Value != strconv.FormatFloat(amount, 'f', -1, 64) {
		t.Errorf("attached payment %d: amount %v, want %v", id, attached[0]["amount"], amount)
	}
	e.verifyStream(ctx, t)
	p.stop(t)
}

// The changes sync must not follow on its own, under the workload: a column
// added to a table whose policy is `stop`, then a type change of a column
// that a GSI key template uses. Each time sync stops (exit 1) before
// acknowledging the change, naming the table, the change and the way
// forward; started again — with the policy edited to follow, or as is after
// the key change, whose items' keys do not change — it follows from exactly
// there, and the end state is exact.
func TestSchemaStopsAndResumes(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	data, err := os.ReadFile(e.mapping)
	if err != nil {
		t.Fatal(err)
	}
	// follow keeps staff's dropped columns; stop also stops at customer's changes.
	follow, stop := filepath.Join(t.TempDir(), "follow.yaml"), filepath.Join(t.TempDir(), "stop.yaml")
	text := strings.Replace(string(data), "\n  - source: staff\n", "\n  - source: staff\n    keep_dropped: true\n", 1)
	if err := os.WriteFile(follow, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	text = strings.Replace(text, "\n  - source: customer\n", "\n  - source: customer\n    on_schema_change: stop\n", 1)
	if err := os.WriteFile(stop, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if strings.Count(text, "keep_dropped: true")+strings.Count(text, "on_schema_change: stop") != 2 {
		t.Fatal("mapping: no staff or customer entry")
	}
	e.mapping = stop
	dropViews(ctx, t, e)
	tmFerry(ctx, t, 0, "backfill", e.args()...)
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	stopWorkload := startWorkload(ctx, t, e, 20, 67)

	stopped := func(p *syncChild, want ...string) {
		t.Helper()
		if code := p.wait(t, 3*time.Minute); code != 1 {
			t.Fatalf("sync exit %d at the schema change, want 1\n%s\n%s", code, p.out.String(), p.err.String())
		}
		for _, w := range want {
			if !strings.Contains(p.err.String(), w) {
				t.Errorf("sync's error does not say %q:\n%s", w, p.err.String())
			}
		}
	}
	p := e.startSyncChild(t, e.db)
	p.caughtUp(ctx, t, e)
	e.exec(ctx, t, `ALTER TABLE customer ADD COLUMN loyalty integer NOT NULL DEFAULT 3`,
		`UPDATE customer SET loyalty = 7, first_name = 'STOPPED' WHERE customer_id = 5`)
	stopped(p, "table public.customer changed at", "added column loyalty (integer)", "the table's on_schema_change is stop", "start sync again")
	status := tmFerry(ctx, t, 0, "status", "status", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--counts=false")
	if !strings.Contains(status, "1 stopped at") {
		t.Errorf("status does not show the stop:\n%s", status)
	}

	// Edited to follow: sync takes the change up from there.
	e.mapping = follow
	p = e.startSyncChild(t, e.db)
	waitSchemaRefills(ctx, t, ctl, e.slot, func(d string) bool { return strings.Contains(d, "added column loyalty (integer)") })
	p.caughtUp(ctx, t, e)

	// A GSI key's column (gsi2pk is STORE#{store_id}): always a stop.
	e.exec(ctx, t, `ALTER TABLE customer ALTER COLUMN store_id TYPE bigint`,
		`UPDATE customer SET loyalty = 9 WHERE customer_id = 6`)
	stopped(p, "changed the type of store_id from integer to bigint", "store_id, which the mapping's keys use", "new target table")
	// The keys' text does not change with the type: started again as is,
	// sync follows the change it stopped at.
	p = e.startSyncChild(t, e.db)
	waitSchemaRefills(ctx, t, ctl, e.slot, func(d string) bool { return strings.Contains(d, "changed the type of store_id") })
	stopWorkload()
	p.caughtUp(ctx, t, e)
	e.checkExact(ctx, t, 0)
	e.checkStream(ctx, t)

	if l, _ := e.item(ctx, t, "CUSTOMER#5", "PROFILE")["loyalty"].(*types.AttributeValueMemberN); l == nil || l.Value != "7" {
		t.Errorf("customer 5 loyalty %v, want 7 (the change sync stopped at)", l)
	}

	// keep_dropped: a dropped column's attribute stays on the items written
	// before the drop (no re-read); an item written after it lacks it; verify
	// does not compare it.
	e.exec(ctx, t, `ALTER TABLE staff DROP COLUMN email`, `UPDATE staff SET first_name = 'KEPT' WHERE staff_id = 1`)
	changes := waitSchemaRefills(ctx, t, ctl, e.slot, func(d string) bool { return strings.Contains(d, "the items keep email (keep_dropped)") })
	p.caughtUp(ctx, t, e)
	staff := func(id string) map[string]types.AttributeValue { return e.item(ctx, t, "STAFF#"+id, "STAFF") }
	if _, ok := staff("1")["email"]; ok {
		t.Error("staff 1, written after the drop, still has email")
	}
	if em, _ := staff("2")["email"].(*types.AttributeValueMemberS); em == nil || em.Value != "Jon.Stephens@sakilastaff.com" {
		t.Errorf("staff 2 email %v: keep_dropped should keep it", staff("2")["email"])
	}
	for _, c := range changes {
		if c.Action != "followed" {
			t.Errorf("%s at %s: %s, want followed after the restart", c.Table, c.LSN, c.Action)
		}
	}
	e.verifyStream(ctx, t)
	p.stop(t)
}
