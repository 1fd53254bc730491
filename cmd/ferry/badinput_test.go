package main

// Bad input: rows the targets can never hold, under --on-error=stop (the
// default) and --on-error=skip with the dead-letter file; secrets that must
// never be printed; unreachable endpoints; a slot in use by another process.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
	"github.com/ferry-migrate/ferry/verify"
)

// nullText stands for NULL in badRow.val.
const nullText = "<NULL>"

// badRow is one source row that the targets can never hold as it is.
type badRow struct {
	name   string
	table  string // qualified source table
	key    string // source primary key as ferry prints it
	bad    string // SQL that makes the row bad
	fix    string // SQL that makes it good again
	reason string // part of the reason ferry gives
	// col and val: a column of the dead-letter line's row and its text
	// (nullText for NULL).
	col, val string
	// item: the item is still written (only the record is refused); record:
	// the record is still published (only the item is refused).
	item, record bool
}

func (b badRow) id() string { return b.table + " (" + b.key + ")" }

// badRows are one of each kind of row that can never be written, in three
// small tables (see newBadInputEnv).
func badRows() []badRow {
	big := strings.Repeat("x", 500_000)    // item over 400 KB, record under 1 MiB
	esc := strings.Repeat("<", 200_000)    // item 200 KB; in JSON "\u003c" each, a 1.2 MB record
	longFirst := strings.Repeat("f", 2100) // partition key ACTOR#{actor_id}#{first_name} over 2048 bytes
	longLast := strings.Repeat("l", 1100)  // sort key ACTOR#{last_name} over 1024 bytes
	return []badRow{
		{name: "item over 400 KB", table: "public.film", key: "film_id=10",
			bad: "UPDATE film SET description = repeat('x', 500000) WHERE film_id = 10", fix: "UPDATE film SET description = 'fixed' WHERE film_id = 10",
			reason: "Item size has exceeded the maximum allowed size", col: "description", val: big, record: true},
		{name: "record over 1 MiB", table: "public.film", key: "film_id=11",
			bad: "UPDATE film SET description = repeat('<', 200000) WHERE film_id = 11", fix: "UPDATE film SET description = '<fixed>' WHERE film_id = 11",
			reason: `partition key "film:11": invalid request: record of 1200`, col: "description", val: esc, item: true},
		{name: "numeric NaN", table: "public.film", key: "film_id=12", // numeric(4,2): a typmod allows NaN
			bad: "UPDATE film SET rental_rate = 'NaN' WHERE film_id = 12", fix: "UPDATE film SET rental_rate = 1.99 WHERE film_id = 12",
			reason: "column rental_rate: NaN is not a number DynamoDB can hold", col: "rental_rate", val: "NaN"},
		{name: "numeric Infinity", table: "public.language", key: "language_id=2",
			bad: "UPDATE language SET ratio = 'Infinity' WHERE language_id = 2", fix: "UPDATE language SET ratio = 2.5 WHERE language_id = 2",
			reason: "column ratio: Infinity is not a number DynamoDB can hold", col: "ratio", val: "Infinity"},
		{name: "float -Infinity", table: "public.language", key: "language_id=3",
			bad: "UPDATE language SET score = '-Infinity' WHERE language_id = 3", fix: "UPDATE language SET score = -1.5 WHERE language_id = 3",
			reason: "column score: -Infinity is not a number DynamoDB can hold", col: "score", val: "-Infinity"},
		{name: "timestamp infinity", table: "public.language", key: "language_id=5",
			bad: "UPDATE language SET released = 'infinity' WHERE language_id = 5", fix: "UPDATE language SET released = '2022-06-01 10:00:00+00' WHERE language_id = 5",
			reason: `column released: timestamp "infinity" has no DynamoDB form`, col: "released", val: "infinity"},
		{name: "date -infinity", table: "public.language", key: "language_id=6",
			bad: "UPDATE language SET born = '-infinity' WHERE language_id = 6", fix: "UPDATE language SET born = '1066-10-14' WHERE language_id = 6",
			reason: `column born: date "-infinity" has no DynamoDB form`, col: "born", val: "-infinity"},
		{name: "empty partition key", table: "public.actor", key: "actor_id=5",
			bad: "UPDATE actor SET first_name = NULL WHERE actor_id = 5", fix: "UPDATE actor SET first_name = 'JOHNNY' WHERE actor_id = 5",
			reason: "partition key pk is empty (a column of its template is NULL)", col: "first_name", val: nullText},
		{name: "empty sort key", table: "public.actor", key: "actor_id=6",
			bad: "UPDATE actor SET last_name = NULL WHERE actor_id = 6", fix: "UPDATE actor SET last_name = 'DAVIS' WHERE actor_id = 6",
			reason: "sort key sk is empty (a column of its template is NULL)", col: "last_name", val: nullText},
		{name: "partition key too long", table: "public.actor", key: "actor_id=7",
			bad: "UPDATE actor SET first_name = repeat('f', 2100) WHERE actor_id = 7", fix: "UPDATE actor SET first_name = 'GRACE' WHERE actor_id = 7",
			reason: "partition key pk is 2108 bytes, DynamoDB allows 2048", col: "first_name", val: longFirst},
		{name: "sort key too long", table: "public.actor", key: "actor_id=8",
			bad: "UPDATE actor SET last_name = repeat('l', 1100) WHERE actor_id = 8", fix: "UPDATE actor SET last_name = 'JOHANSSON' WHERE actor_id = 8",
			reason: "sort key sk is 1106 bytes, DynamoDB allows 1024", col: "last_name", val: longLast},
	}
}

// badInputRows is the number of rows of the tables of badInputMapping.
const badInputRows = 1000 + 200 + 6

// badInputMapping maps three small tables, so that each run is quick. Its
// actor keys are built from nullable text columns: Pagila's own keys use
// primary key columns only, which can be neither empty nor long.
const badInputMapping = `version: 1
defaults:
  target: TARGET
  stream: STREAM
tables:
  - source: film
    partition_key: {name: pk, template: "FILM#{film_id}"}
    sort_key: {name: sk, template: "FILM"}
    exclude: [fulltext]
  - source: actor
    partition_key: {name: pk, template: "ACTOR#{actor_id}#{first_name}"}
    sort_key: {name: sk, template: "ACTOR#{last_name}"}
  - source: language
    partition_key: {name: pk, template: "LANGUAGE#{language_id}"}
    sort_key: {name: sk, template: "LANGUAGE"}
`

// hugeNumber has 48 significant digits: more than DynamoDB's N holds, so it is
// stored exactly as S. It is not a bad row.
const hugeNumber = "12345678901234567890123456789012345678901234.5678"

// newBadInputEnv is a backfill environment whose mapping is badInputMapping
// and whose database has room for every kind of bad row: language gets
// columns without a typmod (numeric Infinity needs one without), a
// timestamptz and a date; actor's names become nullable (and its replica
// identity full, as sync requires of keys outside the primary key). Language 4
// holds the 48-digit number.
func newBadInputEnv(ctx context.Context, t *testing.T) *backfillEnv {
	t.Helper()
	e := newBackfillEnv(t)
	e.exec(ctx, t,
		"ALTER TABLE language ADD COLUMN ratio numeric, ADD COLUMN score double precision, ADD COLUMN released timestamptz, ADD COLUMN born date",
		"ALTER TABLE actor ALTER COLUMN first_name DROP NOT NULL, ALTER COLUMN last_name DROP NOT NULL",
		// sync finds an actor's old item by the names in the old row
		"ALTER TABLE actor REPLICA IDENTITY FULL",
		"UPDATE language SET ratio = '"+hugeNumber+"' WHERE language_id = 4")
	m := strings.NewReplacer("TARGET", e.target, "STREAM", e.stream).Replace(badInputMapping)
	if err := os.WriteFile(e.mapping, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// rowExpect is what compareTables expects of one source row.
type rowExpect int

const (
	expectItem   rowExpect = iota // exactly the row's item (the default)
	expectNoItem                  // no item at the row's key
	expectAny                     // not compared (e.g. an item a skipped change left as it was)
)

// compareItems asserts that the DynamoDB items are exactly the source rows
// passed through the mapping (checkExact's comparison), apart from the rows
// listed in except (by "table (key)"), and that every listed row exists.
func (e *backfillEnv) compareItems(ctx context.Context, t *testing.T, except map[string]rowExpect) {
	t.Helper()
	c, err := loadPlan(ctx, e.db, e.mapping)
	if err != nil {
		t.Fatal(err)
	}
	items, err := testkit.ScanAll(ctx, e.st.DynamoClient(), e.target)
	if err != nil {
		t.Fatal(err)
	}
	actual := map[string]map[string]types.AttributeValue{}
	for _, it := range items {
		actual[it["pk"].(*types.AttributeValueMemberS).Value+"\x00"+it["sk"].(*types.AttributeValueMemberS).Value] = it
	}
	if len(actual) != len(items) {
		t.Fatalf("scan returned %d items for %d keys", len(items), len(actual))
	}
	seen := map[string]bool{}
	diffs := 0
	report := func(format string, args ...any) {
		diffs++
		if diffs <= 10 {
			t.Errorf(format, args...)
		}
	}
	err = verify.SourceItems(ctx, e.db, c.plan, func(tp *transform.TablePlan, id string, row extract.Row, want map[string]types.AttributeValue) error {
		name := tp.Source.QualifiedName() + " (" + tp.KeyString(row) + ")"
		x, listed := except[name]
		seen[name] = listed
		if id == "" { // no item: the key or a value cannot be converted
			if _, kid, err := tp.Key(row); err == nil {
				id = kid
			}
		}
		got, ok := actual[id]
		delete(actual, id)
		switch {
		case x == expectAny:
		case x == expectNoItem:
			if ok {
				report("%s: item in DynamoDB, want none", name)
			}
		case want == nil:
			report("%s: the mapping cannot convert the row", name)
		case !ok:
			report("%s: missing in DynamoDB", name)
		default:
			for _, d := range verify.CompareItems(want, got, "_version") {
				report("%s column %s: source %s, target %s", name, d.Column, d.Source, d.Target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range except {
		if !seen[name] {
			t.Errorf("%s: no such source row (the test's key is wrong)", name)
		}
	}
	for id, it := range actual {
		// A row not compared may have left an item at a key it no longer
		// maps to (a skipped change of its key).
		if name, ok := sourceKeyOfItem(c.plan, it); !ok || except[name] != expectAny {
			report("extra item in DynamoDB: %q", id)
		}
	}
	if diffs > 10 {
		t.Errorf("%d differences in all", diffs)
	}
}

// sourceKeyOfItem names an item's source row, "table (key)", from the
// columns it carries under their source names.
func sourceKeyOfItem(plan *transform.Plan, it map[string]types.AttributeValue) (string, bool) {
	tb, ok := it["_table"].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	tp := plan.Table(tb.Value)
	if tp == nil {
		return "", false
	}
	var parts []string
	for _, i := range tp.Source.PK {
		col := tp.Source.Columns[i].Name
		switch v := it[col].(type) {
		case *types.AttributeValueMemberN:
			parts = append(parts, col+"="+v.Value)
		case *types.AttributeValueMemberS:
			parts = append(parts, col+"="+v.Value)
		default:
			return "", false
		}
	}
	return tp.Source.QualifiedName() + " (" + strings.Join(parts, ", ") + ")", true
}

// summaryTotal returns the fields of the backfill summary's total line:
// total, rows read, items, records, retries, chunks, (skipped), failed, duration,
// chunks by other workers, chunks lost.
func summaryTotal(t *testing.T, out string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 11 && f[0] == "total" {
			return f
		}
	}
	t.Fatalf("no total line in the summary:\n%s", out)
	return nil
}

// readDeadLetter reads a dead-letter file's lines.
func readDeadLetter(t *testing.T, path string) []pipeline.RowFailure {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []pipeline.RowFailure
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var f pipeline.RowFailure
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("dead-letter line %q: %v", truncate(sc.Text(), 200), err)
		}
		out = append(out, f)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// checkRecordedDeadLetters asserts that the control table holds one dead
// letter per bad row (as verify reads them, whichever machine wrote them),
// with its reason, and nothing else.
func checkRecordedDeadLetters(ctx context.Context, t *testing.T, e *backfillEnv, bad []badRow) {
	t.Helper()
	recorded, err := load.NewControlStore(e.st.DynamoClient(), e.control).List(ctx, pipeline.DeadLetterID)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		sk := b.table + "\x00" + b.key
		v, ok := recorded[sk]
		delete(recorded, sk)
		var f pipeline.RowFailure
		if !ok {
			t.Errorf("%s: %s: no dead letter in the control table", b.name, b.id())
		} else if err := json.Unmarshal(v, &f); err != nil || !strings.Contains(f.Reason, b.reason) {
			t.Errorf("%s: %s: recorded dead letter %s (%v), want the reason %q", b.name, b.id(), truncate(string(v), 300), err, b.reason)
		}
	}
	for sk := range recorded {
		t.Errorf("unexpected dead letter in the control table: %q", sk)
	}
}

// checkDeadLetter asserts that the file holds exactly one line per bad row,
// with its table, key, reason, op, LSN and row, and nothing else.
func checkDeadLetter(t *testing.T, path string, bad []badRow, op string) {
	t.Helper()
	if fi, err := os.Stat(path); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("dead-letter file mode %v, want 0600", fi.Mode().Perm())
	}
	lines := readDeadLetter(t, path)
	byID := map[string][]pipeline.RowFailure{}
	for _, l := range lines {
		byID[l.Table+" ("+l.Key+")"] = append(byID[l.Table+" ("+l.Key+")"], l)
	}
	for _, b := range bad {
		ls := byID[b.id()]
		delete(byID, b.id())
		if len(ls) != 1 {
			t.Errorf("%s: %s: %d dead-letter lines, want 1", b.name, b.id(), len(ls))
			continue
		}
		l := ls[0]
		if !strings.Contains(l.Reason, b.reason) {
			t.Errorf("%s: dead-letter reason %q, want it to contain %q", b.name, truncate(l.Reason, 300), b.reason)
		}
		if l.Op != op {
			t.Errorf("%s: dead-letter op %q, want %q", b.name, l.Op, op)
		}
		if _, err := extract.ParseLSN(l.LSN); err != nil || l.LSN == "0/0" {
			t.Errorf("%s: dead-letter lsn %q: %v", b.name, l.LSN, err)
		}
		v, ok := l.Row[b.col]
		switch {
		case !ok:
			t.Errorf("%s: dead-letter row has no column %s: %v", b.name, b.col, l.Row)
		case b.val == nullText && v != nil:
			t.Errorf("%s: dead-letter row %s = %q, want null", b.name, b.col, truncate(*v, 50))
		case b.val != nullText && (v == nil || *v != b.val):
			t.Errorf("%s: dead-letter row %s is not the source's value", b.name, b.col)
		}
		if len(l.Row) < 3 {
			t.Errorf("%s: dead-letter row holds only %d columns", b.name, len(l.Row))
		}
	}
	for id, ls := range byID {
		t.Errorf("unexpected dead-letter line for %s: %s", id, truncate(ls[0].Reason, 200))
	}
}

// checkStreamOf asserts, for each bad row, whether a record of it with the
// given op is on the stream.
func (e *backfillEnv) checkStreamOf(ctx context.Context, t *testing.T, bad []badRow, op string) {
	t.Helper()
	c, err := loadPlan(ctx, e.db, e.mapping)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]badRow{}
	for _, b := range bad {
		want[b.id()] = b
	}
	parts := map[string]badRow{} // partition key → row
	err = verify.SourceItems(ctx, e.db, c.plan, func(tp *transform.TablePlan, _ string, row extract.Row, _ map[string]types.AttributeValue) error {
		if b, ok := want[tp.Source.QualifiedName()+" ("+tp.KeyString(row)+")"]; ok {
			pk, err := tp.PartitionKey(row)
			if err != nil {
				return err
			}
			parts[pk] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != len(bad) {
		t.Fatalf("found %d of the %d bad rows in the source", len(parts), len(bad))
	}
	events, err := testkit.ReadStream(ctx, e.st.KinesisClient(), e.stream)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, ev := range events {
		if ev.Op == op {
			got[ev.PartitionKey]++
		}
	}
	for pk, b := range parts {
		if b.record && got[pk] == 0 {
			t.Errorf("%s: no %q record on the stream (only its item was refused)", b.name, op)
		}
		if !b.record && got[pk] > 0 {
			t.Errorf("%s: %d %q records on the stream, want none", b.name, got[pk], op)
		}
	}
}

// checkHugeNumber asserts that the 48-digit number is stored exactly, as S.
func (e *backfillEnv) checkHugeNumber(ctx context.Context, t *testing.T) {
	t.Helper()
	out, err := e.st.DynamoClient().GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.target), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "LANGUAGE#4"}, "sk": &types.AttributeValueMemberS{Value: "LANGUAGE"}}})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := out.Item["ratio"].(*types.AttributeValueMemberS); !ok || s.Value != hugeNumber {
		t.Errorf("language 4: ratio = %#v, want S %q", out.Item["ratio"], hugeNumber)
	}
}

// afterFirstRun is what both policies leave in DynamoDB after a backfill
// over the bad rows: every other row, and of the bad rows only the items whose
// record alone was refused.
func afterFirstRun(bad []badRow) map[string]rowExpect {
	out := map[string]rowExpect{}
	for _, b := range bad {
		if !b.item {
			out[b.id()] = expectNoItem
		}
	}
	return out
}

func TestBadInputBackfillStop(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newBadInputEnv(ctx, t)
	bad := badRows()
	for _, b := range bad {
		e.exec(ctx, t, b.bad)
	}
	dl := filepath.Join(t.TempDir(), "dead.jsonl")
	// stop is the default; --dead-letter is given to show that stop writes no file.
	args := e.args("--chunk-rows", "100", "--dead-letter", dl)
	code, out, errOut := runFerry(t, args...)
	if code != 1 {
		t.Fatalf("backfill over bad rows: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, strconv.Itoa(len(bad))+" rows could not be written (their chunks stay pending") {
		t.Errorf("summary does not say %d rows could not be written:\n%s", len(bad), out)
	}
	if !strings.Contains(errOut, "some rows could not be written") {
		t.Errorf("stderr does not say rows could not be written:\n%s", errOut)
	}
	for _, b := range bad {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "  "+b.id()+": ") && strings.Contains(line, b.reason) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: the summary does not list %q with reason %q:\n%s", b.name, b.id(), b.reason, out)
		}
	}
	if f := summaryTotal(t, out); f[7] != strconv.Itoa(len(bad)) {
		t.Errorf("summary counts %s failed rows, want %d", f[7], len(bad))
	}
	if _, err := os.Stat(dl); !os.IsNotExist(err) {
		t.Errorf("--on-error=stop created the dead-letter file (%v)", err)
	}
	// Everything else was copied; of the bad rows only what a target accepted.
	e.compareItems(ctx, t, afterFirstRun(bad))
	e.checkHugeNumber(ctx, t)
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	if _, complete, _, err := pipeline.SnapshotPosition(ctx, ctl, e.slot); err != nil || complete {
		t.Errorf("backfill recorded as complete (%v) with rows not written", err)
	}

	// Fixed, the rows are copied by a second run, which reads only the
	// pending chunks (the first of each table: every bad row has a key below 100).
	for _, b := range bad {
		e.exec(ctx, t, b.fix)
	}
	code, out, errOut = runFerry(t, e.args("--chunk-rows", "100")...)
	if code != 0 {
		t.Fatalf("backfill after the fixes: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "resumed") {
		t.Errorf("second run did not resume:\n%s", out)
	}
	f := summaryTotal(t, out)
	if f[7] != "0" {
		t.Errorf("second run: %s failed rows", f[7])
	}
	if rows, _ := strconv.Atoi(f[1]); rows == 0 || rows >= badInputRows/2 {
		t.Errorf("second run read %s rows: want only the pending chunks", f[1])
	}
	e.checkExact(ctx, t, badInputRows)
	if _, complete, _, err := pipeline.SnapshotPosition(ctx, ctl, e.slot); err != nil || !complete {
		t.Errorf("backfill not recorded as complete after the second run (%v)", err)
	}
}

func TestBadInputBackfillSkip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newBadInputEnv(ctx, t)
	bad := badRows()
	for _, b := range bad {
		e.exec(ctx, t, b.bad)
	}
	dl := filepath.Join(t.TempDir(), "dead.jsonl")
	args := e.args("--on-error=skip", "--dead-letter", dl)
	code, out, errOut := runFerry(t, args...)
	if code != 0 {
		t.Fatalf("backfill --on-error=skip: exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, strconv.Itoa(len(bad))+" rows skipped (--on-error=skip), written to the dead-letter file "+dl) {
		t.Errorf("summary does not say %d rows were dead-lettered to %s:\n%s", len(bad), dl, out)
	}
	f := summaryTotal(t, out)
	if f[7] != strconv.Itoa(len(bad)) {
		t.Errorf("summary counts %s dead-lettered rows, want %d", f[7], len(bad))
	}
	// Every row read is written to each target but the rows that target refused.
	noItem, noRecord := 0, 0
	for _, b := range bad {
		if !b.item {
			noItem++
		}
		if !b.record {
			noRecord++
		}
	}
	if f[1] != strconv.Itoa(badInputRows) || f[2] != strconv.Itoa(badInputRows-noItem) || f[3] != strconv.Itoa(badInputRows-noRecord) {
		t.Errorf("%s rows read, %s items and %s records written: want %d, %d and %d", f[1], f[2], f[3], badInputRows, badInputRows-noItem, badInputRows-noRecord)
	}
	for _, b := range bad {
		if !strings.Contains(out, "  "+b.id()+": ") {
			t.Errorf("%s: the summary does not list %s", b.name, b.id())
		}
	}
	if n := strings.Count(errOut, "row skipped (--on-error=skip)"); n != len(bad) {
		t.Errorf("%d warnings logged for skipped rows, want %d:\n%s", n, len(bad), errOut)
	}
	checkDeadLetter(t, dl, bad, "r")
	e.compareItems(ctx, t, afterFirstRun(bad))
	e.checkStreamOf(ctx, t, bad, "r")
	e.checkHugeNumber(ctx, t)
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	if _, complete, _, err := pipeline.SnapshotPosition(ctx, ctl, e.slot); err != nil || !complete {
		t.Errorf("backfill --on-error=skip not recorded as complete (%v)", err)
	}
	// A second run finds nothing left to do and writes no line again.
	code, out, errOut = runFerry(t, args...)
	if code != 0 || !containsRowsRead(out, 0) {
		t.Errorf("second run: exit %d\n%s\n%s", code, out, errOut)
	}
	checkDeadLetter(t, dl, bad, "r")
	checkRecordedDeadLetters(ctx, t, e, bad)
	checkVerifyDeadLetters(t, e, dl, bad)
}

// checkVerifyDeadLetters checks verify's report of a backfill that skipped
// the bad rows: with the dead-letter file each row a target lacks is
// dead-lettered (still a difference), without it missing or unconvertible.
func checkVerifyDeadLetters(t *testing.T, e *backfillEnv, dl string, bad []badRow) {
	t.Helper()
	var wantTable, wantStream []string
	for _, b := range bad {
		if !b.item {
			wantTable = append(wantTable, "dead_lettered "+b.id())
		}
		if !b.record {
			wantStream = append(wantStream, "dead_lettered "+b.id())
		}
	}
	slices.Sort(wantTable)
	slices.Sort(wantStream)
	code, rep := runVerifyJSON(t, e.verifyArgs("--stream", "--dead-letter", dl)...)
	if code != 1 || rep.Verdict != verify.VerdictDifferences {
		t.Errorf("verify --dead-letter: exit %d, verdict %s; want 1, differences", code, rep.Verdict)
	}
	if got := findingSet(rep); !slices.Equal(got, wantTable) {
		t.Errorf("verify --dead-letter table findings:\n got %q\nwant %q", got, wantTable)
	}
	to := rep.Totals
	if to.DeadLettered != int64(len(wantTable)) || to.Missing+to.Extra+to.Differing+to.Unconvertible+to.InFlight != 0 ||
		to.Matching != badInputRows-int64(len(wantTable)) {
		t.Errorf("verify --dead-letter totals %+v: want %d dead-lettered and nothing else", to, len(wantTable))
	}
	for _, tb := range rep.Tables {
		for _, f := range tb.Findings {
			if !strings.HasPrefix(f.Reason, "in the dead-letter file: ") {
				t.Errorf("%s (%s): reason %q", f.Table, f.Key, f.Reason)
			}
		}
	}
	if len(rep.Streams) != 1 {
		t.Fatalf("%d stream reports", len(rep.Streams))
	}
	sr := rep.Streams[0]
	var gotStream []string
	for _, f := range sr.Findings {
		gotStream = append(gotStream, f.Kind+" "+f.Table+" ("+f.Key+")")
	}
	slices.Sort(gotStream)
	if !slices.Equal(gotStream, wantStream) || sr.DeadLettered != int64(len(wantStream)) || sr.Error != "" ||
		sr.Missing+sr.Extra+sr.Differing+sr.Unconvertible+sr.Inversions != 0 {
		t.Errorf("verify --dead-letter stream report %+v:\n got %q\nwant %q", sr, gotStream, wantStream)
	}
	code, out, _ := runFerry(t, e.verifyArgs("--dead-letter", dl)...)
	if want := fmt.Sprintf("%d dead-lettered", len(wantTable)); code != 1 || !strings.Contains(out, want) {
		t.Errorf("verify --dead-letter --format text: exit %d, no %q in\n%s", code, want, out)
	}

	// Without the file, the dead letters backfill recorded in the control
	// table explain the same rows (a worker's file may be on another
	// machine); a row the second run would have recorded again is one.
	code, rep = runVerifyJSON(t, e.verifyArgs("--stream")...)
	if got := findingSet(rep); code != 1 || !slices.Equal(got, wantTable) {
		t.Errorf("verify without --dead-letter: exit %d, table findings\n got %q\nwant %q", code, got, wantTable)
	}
	to, sr = rep.Totals, rep.Streams[0]
	if to.DeadLettered != int64(len(wantTable)) || to.Missing+to.Unconvertible != 0 ||
		sr.Error != "" || sr.DeadLettered != int64(len(wantStream)) || sr.Missing+sr.Unconvertible != 0 {
		t.Errorf("verify without --dead-letter, with the control table's: exit %d, totals %+v, stream %+v", code, to, sr)
	}

	// With neither, the same rows are differences ferry cannot explain.
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	if err := ctl.DeleteAll(t.Context(), pipeline.DeadLetterID); err != nil {
		t.Fatal(err)
	}
	code, rep = runVerifyJSON(t, e.verifyArgs("--stream")...)
	to, sr = rep.Totals, rep.Streams[0]
	if code != 1 || to.DeadLettered != 0 || to.Missing+to.Unconvertible != int64(len(wantTable)) ||
		sr.Error != "" || sr.DeadLettered != 0 || sr.Missing+sr.Unconvertible != int64(len(wantStream)) {
		t.Errorf("verify without any dead letters: exit %d, totals %+v, stream %+v", code, to, sr)
	}
}

// childOutput is a bytes.Buffer safe for a child's output and the test.
type childOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *childOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *childOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// syncChild is a `ferry sync` child process whose output the test reads.
type syncChild struct {
	cmd      *exec.Cmd
	out, err childOutput
	done     chan struct{}
	code     int
}

// startSyncChild starts `ferry sync` on the environment's slot with the
// given source URL, capturing its output.
func (e *backfillEnv) startSyncChild(t *testing.T, source string, extra ...string) *syncChild {
	t.Helper()
	args := append([]string{"sync", "--source", source, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--progress", "log", "--heartbeat", "1s"}, extra...)
	p := &syncChild{cmd: exec.Command(syncBin, args...), done: make(chan struct{})}
	p.cmd.Env = e.env // nil: the test process's
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
		if strings.Contains(p.err.String(), raceWarning) {
			t.Errorf("ferry sync: data race (exit %d)\n%s", p.code, p.err.String())
		} else if t.Failed() {
			t.Logf("sync output:\n%s\n%s", p.out.String(), p.err.String())
		}
	})
	return p
}

// wait waits (bounded) for the process to exit and returns its exit code.
func (p *syncChild) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(limit):
		t.Fatalf("sync did not exit within %s\n%s\n%s", limit, p.out.String(), p.err.String())
		return -1
	}
}

// caughtUp waits (bounded) until sync has applied every change committed
// before the call; it fails at once if sync exits.
func (p *syncChild) caughtUp(ctx context.Context, t *testing.T, e *backfillEnv) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case <-p.done:
			t.Fatalf("sync exited (%d) before catching up\n%s\n%s", p.code, p.out.String(), p.err.String())
		default:
		}
		err := testkit.WaitCaughtUp(ctx, e.db, e.slot, 2*time.Second)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

// stop sends SIGTERM and expects exit 0.
func (p *syncChild) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("sync exit %d on SIGTERM, want 0\n%s\n%s", code, p.out.String(), p.err.String())
	}
}

func TestBadInputSync(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newBadInputEnv(ctx, t)
	if code, out, errOut := runFerry(t, e.args()...); code != 0 {
		t.Fatalf("backfill exit %d\n%s\n%s", code, out, errOut)
	}
	// Sync meets each bad row as an UPDATE.
	bad := badRows()
	dl := filepath.Join(t.TempDir(), "dead.jsonl")
	p := e.startSyncChild(t, e.db, "--on-error=skip", "--dead-letter", dl)
	p.caughtUp(ctx, t, e)
	for _, b := range bad {
		e.exec(ctx, t, b.bad)
	}
	// Sync goes on past them: later changes are applied.
	const bigger = "98765432109876543210987654321098765432109876543210"
	e.exec(ctx, t,
		"UPDATE film SET title = 'AFTER THE BAD ROWS' WHERE film_id = 20",
		"UPDATE language SET ratio = '"+bigger+"' WHERE language_id = 1",
		"INSERT INTO language (language_id, name) VALUES (7, 'Klingon')")
	p.caughtUp(ctx, t, e)
	checkDeadLetter(t, dl, bad, "u")
	checkRecordedDeadLetters(ctx, t, e, bad)
	// The items of the skipped changes stay as they were, but for the one
	// whose record alone was refused: its item is applied.
	except := map[string]rowExpect{}
	for _, b := range bad {
		if !b.item {
			except[b.id()] = expectAny
		}
	}
	e.compareItems(ctx, t, except)
	e.checkStreamOf(ctx, t, bad, "u")
	p.stop(t)
	if want := strconv.Itoa(len(bad)) + " changes skipped (--on-error=skip), written to the dead-letter file " + dl; !strings.Contains(p.out.String(), want) {
		t.Errorf("sync's output does not say %q:\n%s", want, p.out.String())
	}

	// Under the default policy, sync stops at such a change, naming it, and
	// does not acknowledge it: a restart with --on-error=skip reads it again.
	p = e.startSyncChild(t, e.db)
	p.caughtUp(ctx, t, e)
	e.exec(ctx, t,
		"UPDATE film SET rental_rate = 'NaN' WHERE film_id = 13",
		"UPDATE film SET title = 'AFTER THE STOP' WHERE film_id = 21")
	if code := p.wait(t, 2*time.Minute); code != 1 {
		t.Fatalf("sync exit %d at a bad change, want 1\n%s", code, p.err.String())
	}
	for _, want := range []string{"table public.film, key (film_id=13), update at ", "column rental_rate: NaN is not a number DynamoDB can hold",
		"stopped before acknowledging it (--on-error=stop)"} {
		if !strings.Contains(p.err.String(), want) {
			t.Errorf("sync's error does not say %q:\n%s", want, p.err.String())
		}
	}
	stopped := badRow{name: "NaN under stop", table: "public.film", key: "film_id=13", reason: "column rental_rate: NaN is not a number",
		col: "rental_rate", val: "NaN"}
	title := func() string {
		out, err := e.st.DynamoClient().GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.target), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "FILM#21"}, "sk": &types.AttributeValueMemberS{Value: "FILM"}}})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := out.Item["title"].(*types.AttributeValueMemberS)
		if s == nil {
			return ""
		}
		return s.Value
	}
	if got := title(); got == "AFTER THE STOP" {
		t.Error("a change after the one sync stopped at was applied")
	}
	p = e.startSyncChild(t, e.db, "--on-error=skip", "--dead-letter", dl)
	p.caughtUp(ctx, t, e)
	checkDeadLetter(t, dl, append(bad, stopped), "u")
	checkRecordedDeadLetters(ctx, t, e, append(bad, stopped))
	if got := title(); got != "AFTER THE STOP" {
		t.Errorf("film 21's title is %q after the restart, want the change after the skipped one", got)
	}
	p.stop(t)
}

// secrets are credentials a test configures and then looks for in every
// output: none may ever appear.
type secrets []string

// configureSecrets returns the environment for ferry's child processes with
// an AWS secret key and session token (the emulators accept any) and
// PGPASSWORD set, and the secrets with a PostgreSQL password to put in URLs
// (the local server trusts 127.0.0.1 and ignores it). The test process's own
// environment is left alone, so the test can run in parallel.
func configureSecrets(t *testing.T) (password string, all secrets, env []string) {
	t.Helper()
	password = testkit.Name("S3cretPassw0rd")
	awsSecret := testkit.Name("wJalrXUtnFEMI/K7MDENG+bPxRfiCY")
	token := testkit.Name("IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH")
	pgpass := testkit.Name("PgPassFromEnv")
	env = append(os.Environ(),
		"AWS_SECRET_ACCESS_KEY="+awsSecret,
		"AWS_SESSION_TOKEN="+token,
		"PGPASSWORD="+pgpass,
		"FERRY_DEBUG=1") // the most log lines there are
	return password, secrets{password, awsSecret, token, pgpass}, env
}

// check fails the test if text holds any of the secrets.
func (s secrets) check(t *testing.T, where, text string) {
	t.Helper()
	for _, sec := range s {
		if i := strings.Index(text, sec); i >= 0 {
			t.Errorf("%s prints a secret: …%s…", where, text[max(0, i-80):min(len(text), i+len(sec)+20)])
		}
	}
}

// withPassword returns the URL with a password, and optionally another port.
func withPassword(t *testing.T, db, password string, port int) string {
	t.Helper()
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	if port > 0 {
		u.Host = u.Hostname() + ":" + strconv.Itoa(port)
	}
	return u.String()
}

// ferryRun is one CLI run and what it must end with.
type ferryRun struct {
	name string
	args []string
	code int
	want []string // in stdout or stderr
}

// runChecked runs ferry as a child process with environment env (bounded),
// checks its exit code and output, and that no secret is printed; it returns
// the output.
func runChecked(t *testing.T, r ferryRun, sec secrets, env []string) string {
	t.Helper()
	type result struct {
		code        int
		out, errOut string
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, r.args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	_ = cmd.Run()
	if ctx.Err() != nil || cmd.ProcessState == nil {
		t.Fatalf("%s: ferry %s did not return within 3 minutes\n%s\n%s", r.name, r.args[0], out.String(), errb.String())
	}
	res := result{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
	checkNoRace(t, r.args, res.code, res.out, res.errOut)
	all := res.out + res.errOut
	if res.code != r.code {
		t.Errorf("%s: exit %d, want %d\n%s", r.name, res.code, r.code, all)
	}
	for _, w := range r.want {
		if !strings.Contains(all, w) {
			t.Errorf("%s: output does not say %q:\n%s", r.name, w, all)
		}
	}
	sec.check(t, r.name, all)
	return all
}

func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel() // the secrets are in the children's environment only
	ctx := t.Context()
	e := newBadInputEnv(ctx, t)
	e.exec(ctx, t, "UPDATE film SET rental_rate = 'NaN' WHERE film_id = 12") // a failure to report and dead-letter
	password, sec, env := configureSecrets(t)
	src := withPassword(t, e.db, password, 0)
	dir := t.TempDir()
	dl, report := filepath.Join(dir, "dead.jsonl"), filepath.Join(dir, "report.json")
	common := []string{"--source", src, "--mapping", e.mapping, "--slot", e.slot, "--control-table", e.control}
	cmd := func(name string, extra ...string) []string {
		return append(append([]string{name}, common...), extra...)
	}
	bad := "(film_id=12)"
	runs := []ferryRun{
		{"plan", []string{"plan", "--source", src, "--mapping", e.mapping}, 0, []string{"film"}},
		{"backfill, a row stops it", cmd("backfill", "--progress", "log"), 1, []string{bad, "NaN"}},
		{"backfill --on-error=skip", cmd("backfill", "--progress", "log", "--on-error=skip", "--dead-letter", dl), 0, []string{"1 rows skipped"}},
		{"status", cmd("status"), 0, []string{"backfill: snapshot at"}},
		{"verify text", cmd("verify", "--format", "text"), 1, []string{bad}},
		{"verify json", cmd("verify", "--format", "json"), 1, []string{"film_id=12"}},
		{"verify markdown", cmd("verify", "--format", "markdown"), 1, []string{"film_id=12"}},
		{"verify html", cmd("verify", "--format", "html"), 1, []string{"film_id=12"}},
		{"verify --stream --out", cmd("verify", "--format", "json", "--stream", "--out", report), 1, []string{report}},
		{"verify --dead-letter", cmd("verify", "--dead-letter", dl), 1, []string{"dead_lettered", bad}},
		{"teardown", cmd("teardown"), 0, []string{"dropped replication slot " + e.slot}},
	}
	// Every command that reads the source, with the source unreachable or
	// its URL unparseable: exit 2, and the password stays hidden.
	unreachable := withPassword(t, e.db, password, 1)
	for _, c := range []string{"plan", "backfill", "sync", "status", "verify", "teardown"} {
		runs = append(runs, ferryRun{c + ", PostgreSQL unreachable", []string{c, "--source", unreachable, "--mapping", e.mapping},
			2, []string{"127.0.0.1:1", "connection refused"}})
	}
	runs = append(runs,
		ferryRun{"backfill, URL with a bad port", []string{"backfill", "--source", strings.Replace(unreachable, ":1/", ":99999999/", 1), "--mapping", e.mapping},
			2, []string{"cannot parse", "invalid port"}},
		ferryRun{"backfill, URL with a bad escape", []string{"backfill", "--source", strings.Replace(unreachable, password, password+"%zz", 1), "--mapping", e.mapping},
			2, []string{"cannot parse"}},
		ferryRun{"backfill, keyword/value source", []string{"backfill", "--source", "host=127.0.0.1 port=1 user=postgres dbname=x password=" + password, "--mapping", e.mapping},
			2, []string{"connection refused"}},
		ferryRun{"backfill, quoted keyword/value source", []string{"backfill", "--source", "host=127.0.0.1 port=1 password='" + password + " x' dbname='x", "--mapping", e.mapping},
			2, []string{"cannot parse"}},
	)
	for _, r := range runs {
		runChecked(t, r, sec, env)
	}
	for _, f := range []string{dl, report} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sec.check(t, f, string(data))
	}

	// An unreachable AWS endpoint: exit 2 (status: 1) after the SDK's
	// retries, naming the endpoint, before any slot is created. The runs
	// wait out the SDK's backoff, so they run at once, as child processes
	// with their own environment.
	cases := []struct {
		env string
		run ferryRun
	}{
		{"AWS_ENDPOINT_URL_DYNAMODB", ferryRun{"backfill, DynamoDB unreachable", []string{"backfill"}, 2, []string{"DynamoDB tables: ", "127.0.0.1:1", "connection refused"}}},
		{"AWS_ENDPOINT_URL_KINESIS", ferryRun{"backfill, Kinesis unreachable", []string{"backfill"}, 2, []string{"Kinesis streams: ", "127.0.0.1:1", "connection refused"}}},
		{"AWS_ENDPOINT_URL_DYNAMODB", ferryRun{"sync, DynamoDB unreachable", []string{"sync"}, 2, []string{"127.0.0.1:1", "connection refused"}}},
		{"AWS_ENDPOINT_URL_DYNAMODB", ferryRun{"verify, DynamoDB unreachable", []string{"verify"}, 2, []string{"127.0.0.1:1", "connection refused"}}},
		{"AWS_ENDPOINT_URL_DYNAMODB", ferryRun{"status, DynamoDB unreachable", []string{"status"}, 1, []string{"127.0.0.1:1", "connection refused"}}},
	}
	type result struct {
		code int
		out  string
		took time.Duration
	}
	results := make([]result, len(cases))
	slots := make([]string, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		slots[i] = testkit.Name("ferry_unreachable_")
		cmd := exec.CommandContext(ctx, ferryBin, c.run.args[0], "--source", src, "--mapping", e.mapping, "--slot", slots[i], "--control-table", e.control)
		cmd.Env = append(slices.Clip(env), c.env+"=http://127.0.0.1:1")
		cmd.WaitDelay = time.Second
		wg.Go(func() {
			start := time.Now()
			out, _ := cmd.CombinedOutput()
			results[i] = result{cmd.ProcessState.ExitCode(), string(out), time.Since(start)}
		})
	}
	wg.Wait()
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for i, c := range cases {
		r := results[i]
		t.Logf("%s: exit %d after %s", c.run.name, r.code, r.took.Round(time.Millisecond))
		if r.code != c.run.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.run.name, r.code, c.run.code, r.out)
		}
		for _, w := range c.run.want {
			if !strings.Contains(r.out, w) {
				t.Errorf("%s: output does not say %q:\n%s", c.run.name, w, r.out)
			}
		}
		sec.check(t, c.run.name, r.out)
		if _, exists, err := extract.LookupSlot(ctx, conn, slots[i]); err != nil || exists {
			t.Errorf("%s: slot %s created (%v) although AWS is unreachable", c.run.name, slots[i], err)
		}
	}
}

func TestSlotInUse(t *testing.T) {
	t.Parallel() // the secrets are in the children's environment only
	ctx := t.Context()
	e := newBadInputEnv(ctx, t)
	password, sec, env := configureSecrets(t)
	src := withPassword(t, e.db, password, 0)
	if code, out, errOut := runFerry(t, e.args()...); code != 0 {
		t.Fatalf("backfill exit %d\n%s\n%s", code, out, errOut)
	}
	e.env = env
	p := e.startSyncChild(t, src)
	p.caughtUp(ctx, t, e)
	common := []string{"--source", src, "--mapping", e.mapping, "--slot", e.slot, "--control-table", e.control}
	for _, r := range []ferryRun{
		{"a second sync", append([]string{"sync"}, common...), 2, []string{"slot " + e.slot, "replication slot is in use", "another ferry sync?"}},
		{"backfill --restart", append([]string{"backfill", "--restart"}, common...), 2, []string{"slot " + e.slot + " is in use by another process"}},
		{"teardown", append([]string{"teardown"}, common...), 2, []string{"slot " + e.slot + ": replication slot is in use"}},
	} {
		runChecked(t, r, sec, env)
	}
	// The first sync goes on streaming.
	e.exec(ctx, t, "UPDATE film SET title = 'STILL STREAMING' WHERE film_id = 30")
	p.caughtUp(ctx, t, e)
	e.checkExact(ctx, t, badInputRows)
	p.stop(t)
	sec.check(t, "sync's output", p.out.String()+p.err.String())
}
