package main

// TestTypeMatrix (issue 9): every built-in PostgreSQL type, contrib hstore,
// citext and ltree, a generated column, TOASTed values and key shapes that
// stress injective key templates, through plan --generate, backfill
// --on-error=skip, sync and verify. DynamoDB and the folded Kinesis stream
// are then checked by an oracle of its own: it reads the source with its own
// SQL and the targets with the plain AWS SDK, and compares values by the
// small rule set below (tmItemValue, tmStreamValue), never through ferry's
// transform or verify packages.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/verify"
)

// tmRefusal is a row the targets may not hold: must ones have to be in the
// dead-letter file; may ones (values ferry either stores exactly or refuses)
// may be, and are otherwise compared like any row.
type tmRefusal struct {
	table, key string   // source table, primary key values joined by "|"
	must       bool     // must be refused; else exact or refused
	op         string   // the dead-letter line's op (r: backfill, u: sync)
	mention    []string // the reason names one of these (the column)
	// record: the item alone is refused, the stream must carry the row.
	record bool
	// stale: refused by sync; the item and stream state keep the row's
	// earlier values (not compared).
	stale bool
}

func tmRefusals() []tmRefusal {
	col := func(c string) []string { return []string{"column " + c, c} }
	return []tmRefusal{
		{table: "nums", key: "101", must: true, op: "r", mention: col("n")},       // numeric NaN
		{table: "nums", key: "102", must: true, op: "r", mention: col("f8")},      // float NaN
		{table: "nums", key: "103", must: true, op: "r", mention: col("f8")},      // float Infinity
		{table: "nums", key: "104", must: true, op: "r", mention: col("f4")},      // real -Infinity
		{table: "nums", key: "105", must: true, op: "r", mention: col("nbig")},    // numeric Infinity
		{table: "times", key: "101", must: true, op: "r", mention: col("d")},      // date infinity
		{table: "times", key: "102", must: true, op: "r", mention: col("ts")},     // timestamp -infinity
		{table: "times", key: "103", must: true, op: "r", mention: col("tstz")},   // timestamptz infinity
		{table: "arrays", key: "101", must: true, op: "r", mention: col("na")},    // NaN element
		{table: "tkey", key: "", must: true, op: "r", mention: []string{"empty"}}, // empty partition key
		{table: "toast_def", key: "101", must: true, op: "r", mention: []string{"size", "400"}, record: true},
		{table: "nums", key: "4", must: true, op: "u", mention: col("f8"), stale: true}, // NaN set under sync
		{table: "nums", key: "201", op: "r", mention: col("f8")},                        // 5e-324
		{table: "nums", key: "202", op: "r", mention: col("f8")},                        // 1.7976931348623157e308
		{table: "nums", key: "5", op: "r", mention: col("f4")},                          // real -0
		{table: "nums", key: "207", op: "r", mention: col("f8")},                        // float -0
		{table: "arrays", key: "203", op: "r", mention: col("fa")},                      // {1,-0}
		{table: "nums", key: "206", op: "r", mention: col("f8")},                        // -2.2250738585072014e-308
		{table: "nums", key: "204", op: "r", mention: col("m")},                         // money
		{table: "nums", key: "205", op: "r", mention: col("m")},
		{table: "times", key: "201", op: "r", mention: col("d")},    // year 10000
		{table: "times", key: "202", op: "r", mention: col("ts")},   // year 12345
		{table: "times", key: "203", op: "r", mention: col("tstz")}, // year 294276
		{table: "arrays", key: "201", op: "r", mention: col("ia")},  // [5:6]={50,60}
		{table: "arrays", key: "202", op: "r", mention: col("ia2")},
	}
}

// tmChanges are applied under sync, each statement in its own transaction.
var tmChanges = []string{
	// unchanged TOAST values: another column changes
	"UPDATE toast_full SET note = 'note changed' WHERE id = 1",
	"UPDATE toast_def SET note = 'note changed' WHERE id = 1",
	// primary-key changes of rows with a TOASTed column left unchanged
	"UPDATE toast_full SET id = 11 WHERE id = 2",
	"UPDATE toast_def SET id = 11 WHERE id = 2",
	"UPDATE toast_def SET id = 12, note = 'moved' WHERE id = 3",
	// the TOASTed value itself changes; a new TOASTed row
	"UPDATE toast_full SET big = big || 'tail' WHERE id = 3",
	"INSERT INTO toast_full SELECT 4, 'new', (SELECT string_agg(md5('new' || i), '') FROM generate_series(1, 3200) i)",
	// the generated columns' inputs
	"UPDATE gen SET a = 10 WHERE id = 1",
	"UPDATE gen SET b = 7 WHERE id = 2",
	"UPDATE gen SET id = 30, b = NULL WHERE id = 3",
	"INSERT INTO gen (id, a, b) VALUES (4, 6, 7)",
	// keys that collide unless '#' and '\' are escaped
	"INSERT INTO keys3 VALUES (4, 'p#q', 'r', 'p#q|r'), (4, 'p', 'q#r', 'p|q#r')",
	"UPDATE keys3 SET b = 'x#y#', c = '' WHERE a = 1 AND b = 'x' AND c = 'y#z'",
	`UPDATE keys3 SET c = E'z\\' WHERE a = 1 AND b = E'x\\#y' AND c = 'z'`,
	"DELETE FROM keys3 WHERE a = 2 AND b = ' ' AND c = ''",
	"DELETE FROM tkey WHERE k = 'x '",
	"INSERT INTO tkey VALUES ('x  ', 10), (E'\\\\#', 11)",
	"UPDATE ckey SET k = 'b' WHERE k = 'a'",
	// values of every kind
	"UPDATE nums SET n = n + 1, f8 = 1.5e-7, i8 = -1 WHERE id = 1",
	"UPDATE nums SET f8 = 'NaN' WHERE id = 4", // refused under sync: the item stays as it was
	"UPDATE texts SET t = 'changed ü', e = 'happy', b = NULL WHERE id = 1",
	"DELETE FROM texts WHERE id = 2",
	`INSERT INTO texts (id, c5, t, ci) VALUES (6, 'z', E'new\\row', 'X')`,
	"UPDATE bin SET b = '\\xdeadbeef' WHERE id = 2",
	"UPDATE times SET iv = '3 hours', d = '2000-02-29', tstz = '2000-02-29 23:59:59.999999-12' WHERE id = 2",
	"INSERT INTO times (id, d, ts) VALUES (6, '0001-01-01 BC', '2000-01-01 00:00:00.000001')",
	"UPDATE arrays SET ta = ARRAY['new', NULL, '', '\"'] WHERE id = 2",
	"DELETE FROM arrays WHERE id = 5",
	`UPDATE misc SET jb = '{"k": [null, true, 1.0]}', j = '{"dup": 1, "dup": 2}' WHERE id = 5`,
	`INSERT INTO misc (id, j, jb) VALUES (6, 'null', '"null"')`,
	"UPDATE shapes SET r4 = '[2,3]', ad = ROW('x', 1, '{}') WHERE id = 2",
	"UPDATE clash SET pk = 'changed', sk = 3 WHERE id = 2",
}

func TestTypeMatrix(t *testing.T) {
	t.Parallel() // every ferry run is a child process: no shared slog or flags
	start := time.Now()
	st := stack.ForTest(t)
	ctx := t.Context()
	db := tmDatabase(ctx, t, st)
	suffix := tmHex(5)
	dir := t.TempDir()
	e := &backfillEnv{st: st, db: db, stream: "tm-" + suffix, slot: "ferry_tm_" + suffix, control: "tm_ctl_" + suffix,
		mapping: filepath.Join(dir, "mapping.yaml")}
	prefix := "tm_" + suffix + "_"
	dl := filepath.Join(dir, "dead.jsonl")

	// plan --generate, made isolated (every target gets a random prefix),
	// then plan --mapping.
	gen := filepath.Join(dir, "generated.yaml")
	tmFerry(ctx, t, 0, "plan --generate", "plan", "--source", db, "--generate", "--out", gen, "--stream", e.stream)
	targets := tmIsolate(t, gen, e.mapping, prefix)
	t.Cleanup(func() { // keep the in-memory emulators small; no need to wait
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, tg := range append(slices.Collect(maps.Values(targets)), e.control) {
			_, _ = st.DynamoClient().DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(tg)})
		}
		_, _ = st.KinesisClient().DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(e.stream)})
	})
	var dropped []string
	if code, out, errOut := tmFerryCode(ctx, t, "plan", "--source", db, "--mapping", e.mapping); code != 0 {
		t.Errorf("plan --mapping of the generated mapping: exit %d, want 0\n%s\n%s", code, out, errOut)
		// Go on without the tables whose names the mapping cannot take as
		// they are and with key attributes no column clashes with, so that
		// the rest of the matrix is still checked.
		dropped = tmDropOddTables(t, e.mapping, targets)
		t.Logf("going on without the tables %q", dropped)
		tmFerry(ctx, t, 0, "plan --mapping without the odd tables and key names", "plan", "--source", db, "--mapping", e.mapping)
	}

	// backfill, then sync under changes.
	out := tmFerry(ctx, t, 0, "backfill", e.args("--on-error=skip", "--dead-letter", dl)...)
	t.Logf("backfill:\n%s", out)
	p := e.startSyncChild(t, db, "--on-error=skip", "--dead-letter", dl)
	p.caughtUp(ctx, t, e)
	e.exec(ctx, t, tmChanges...)
	p.caughtUp(ctx, t, e)
	t.Logf("backfill, sync and %d changes after %s", len(tmChanges), time.Since(start).Round(time.Millisecond))

	src := tmReadSource(ctx, t, db)
	for _, name := range dropped {
		delete(src, name)
	}
	refused := tmCheckDeadLetter(t, dl, src)
	tmCheckItems(ctx, t, st.DynamoClient(), src, targets, refused)
	events, err := testkit.ReadStream(ctx, st.KinesisClient(), e.stream)
	if err != nil {
		t.Fatal(err)
	}
	tmCheckStream(t, events, src, refused)

	// ferry's own verify, DynamoDB and stream, with the dead-letter file:
	// the refused rows are dead_lettered, nothing else differs.
	var wantDead []string
	for _, r := range refused {
		tb := src[r.table]
		parts := make([]string, len(tb.pk))
		for i, c := range tb.pk {
			parts[i] = tb.cols[c].name + "=" + strings.Split(r.key, "|")[i]
		}
		wantDead = append(wantDead, "public."+r.table+" ("+strings.Join(parts, ", ")+")")
	}
	sort.Strings(wantDead)
	for _, stream := range []bool{false, true} {
		args := e.verifyArgs("--dead-letter", dl, "--format", "json")
		if stream {
			args = append(args, "--stream")
		}
		tmVerify(ctx, t, stream, args, wantDead)
	}
	p.stop(t)
	t.Logf("TestTypeMatrix took %s", time.Since(start).Round(time.Millisecond))
}

func tmHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tmDatabase creates an empty database with a random name (not a Pagila
// clone: the generated mapping maps every table), loads the fixture and drops
// the database when the test ends.
func tmDatabase(ctx context.Context, t *testing.T, st *stack.Stack) string {
	t.Helper()
	name := "ferry_test_tm_" + tmHex(6)
	admin, err := pgx.Connect(ctx, st.DatabaseURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := st.DropDatabase(ctx, name); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	url := st.DatabaseURL(name)
	fixture, err := os.ReadFile(filepath.Join("testdata", "typematrix.sql"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var avail int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_available_extensions WHERE name IN ('hstore', 'citext', 'ltree')").Scan(&avail); err != nil {
		t.Fatal(err)
	}
	if avail != 3 {
		// The fixture needs the three contrib modules (postgresql-contrib,
		// part of Debian's postgresql-15 package).
		t.Fatalf("hstore, citext and ltree: only %d of them installable here", avail)
	}
	if _, err := conn.Exec(ctx, string(fixture)); err != nil {
		t.Fatalf("load testdata/typematrix.sql: %v", err)
	}
	return url
}

// tmFerry runs ferry as a child process (bounded) and fails the test unless
// it exits with want. It returns stdout.
func tmFerry(ctx context.Context, t *testing.T, want int, what string, args ...string) string {
	t.Helper()
	code, out, errOut := tmFerryCode(ctx, t, args...)
	if code != want {
		t.Fatalf("%s: exit %d, want %d\n%s\n%s", what, code, want, out, errOut)
	}
	return out
}

func tmFerryCode(ctx context.Context, t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	_ = cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("ferry %s did not run: %s", args[0], errb.String())
	}
	checkNoRace(t, args, cmd.ProcessState.ExitCode(), out.String(), errb.String())
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// tmIsolate writes the generated mapping with every target name prefixed
// (DynamoDB tables are shared by every test) and returns the targets by
// source table (unqualified).
func tmIsolate(t *testing.T, generated, out, prefix string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(generated)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("generated mapping is not YAML: %v\n%s", err, data)
	}
	field := func(m *yaml.Node, key string) *yaml.Node {
		if m == nil || m.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
		return nil
	}
	root := doc.Content[0]
	targets := map[string]string{}
	tables := field(root, "tables")
	if tables == nil {
		t.Fatalf("generated mapping has no tables:\n%s", data)
	}
	for _, tb := range tables.Content {
		src, tg := field(tb, "source"), field(tb, "target")
		if src == nil || tg == nil {
			t.Fatalf("generated mapping: a table without source or target:\n%s", data)
		}
		tg.Value = prefix + tg.Value
		targets[tmUnqualify(src.Value)] = tg.Value
	}
	if d := field(root, "defaults"); field(d, "target") != nil {
		t.Fatalf("generated mapping has a default target; the test isolates only per-table targets:\n%s", data)
	}
	b, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.Logf("generated mapping:\n%s", data)
	}
	return targets
}

// tmUnqualify returns the table name of a mapping's source: "public.t",
// "t", `public."Odd name"` or `"Odd name"` (SQL quoting).
func tmUnqualify(src string) string {
	name, _ := strings.CutPrefix(src, "public.")
	if len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' {
		name = strings.ReplaceAll(name[1:len(name)-1], `""`, `"`)
	}
	return name
}

// tmDropOddTables removes from the mapping the tables whose source name is
// not a plain lower-case identifier, renames the key attributes pk and sk
// to key_pk and key_sk (a column may be called pk), and returns the names of
// the tables removed.
func tmDropOddTables(t *testing.T, path string, targets map[string]string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	plain := regexp.MustCompile(`^(public\.)?[a-z_][a-z0-9_]*$`)
	var dropped []string
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "tables" {
			continue
		}
		tables := root.Content[i+1]
		var keep []*yaml.Node
		for _, tb := range tables.Content {
			src := ""
			for j := 0; j+1 < len(tb.Content); j += 2 {
				if tb.Content[j].Value == "source" {
					src = tb.Content[j+1].Value
				}
			}
			if plain.MatchString(src) {
				// Key attributes that cannot clash with a column.
				for j := 0; j+1 < len(tb.Content); j += 2 {
					if k := tb.Content[j].Value; k == "partition_key" || k == "sort_key" {
						kn := tb.Content[j+1]
						for m := 0; m+1 < len(kn.Content); m += 2 {
							if kn.Content[m].Value == "name" && (kn.Content[m+1].Value == "pk" || kn.Content[m+1].Value == "sk") {
								kn.Content[m+1].Value = "key_" + kn.Content[m+1].Value
							}
						}
					}
				}
				keep = append(keep, tb)
				continue
			}
			name := tmUnqualify(src)
			dropped = append(dropped, name)
			delete(targets, name)
		}
		tables.Content = keep
	}
	b, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dropped
}

// tmVerifyExit is the exit code the test asks of verify --dead-letter when
// every difference is a dead-lettered row: 1, as for any row the targets do
// not hold (the dead-letter file explains the rows; it does not make the
// targets equal to the source).
const tmVerifyExit = 1

// tmVerify runs ferry verify and expects consistency: exit tmVerifyExit,
// and no finding other than dead_lettered ones, exactly for the refused rows
// (want, "table (key)").
func tmVerify(ctx context.Context, t *testing.T, stream bool, args []string, want []string) {
	t.Helper()
	code, out, errOut := tmFerryCode(ctx, t, args...)
	var rep verify.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Errorf("verify (stream %v): exit %d, not a JSON report: %v\n%s\n%s", stream, code, err, out, errOut)
		return
	}
	var other, dead []string
	for _, tb := range rep.Tables {
		for _, f := range tb.Findings {
			if f.Kind == verify.KindDeadLettered {
				dead = append(dead, f.Table+" ("+f.Key+")")
				continue
			}
			other = append(other, fmt.Sprintf("%s %s (%s): %s %+v", f.Kind, f.Table, f.Key, f.Reason, f.Columns))
		}
	}
	for _, s := range rep.Streams {
		for _, f := range s.Findings {
			if f.Kind == verify.KindDeadLettered {
				dead = append(dead, "stream "+f.Table+" ("+f.Key+")")
				continue
			}
			other = append(other, fmt.Sprintf("stream %s %s (%s): %s", f.Kind, f.Table, f.Key, f.Reason))
		}
		if s.Error != "" {
			other = append(other, "stream error: "+s.Error)
		}
	}
	other = append(other, rep.Errors...)
	sort.Strings(dead)
	t.Logf("verify (stream %v): exit %d, verdict %s, totals %+v, dead-lettered findings %q", stream, code, rep.Verdict, rep.Totals, dead)
	if code != tmVerifyExit || len(other) > 0 {
		t.Errorf("verify (stream %v): exit %d, verdict %s, want %d; findings other than dead_lettered:\n  %s\n%s",
			stream, code, rep.Verdict, tmVerifyExit, strings.Join(other, "\n  "), truncate(errOut, 2000))
	}
	var tableDead []string
	for _, d := range dead {
		if !strings.HasPrefix(d, "stream ") {
			tableDead = append(tableDead, d)
		}
	}
	if !slices.Equal(tableDead, want) {
		t.Errorf("verify (stream %v): dead-lettered table findings\n got %q\nwant %q", stream, tableDead, want)
	}
}

// ---- the source, read by the oracle's own SQL ----

// tmKind is the oracle's rule for a PostgreSQL type.
type tmKind string

const (
	tmInt   tmKind = "int"   // int2, int4, int8, oid: exact decimal
	tmDec   tmKind = "dec"   // numeric, float4, float8: exact decimal of the text form
	tmMoney tmKind = "money" // read as numeric
	tmBool  tmKind = "bool"
	tmBytea tmKind = "bytea"
	tmDate  tmKind = "date"
	tmTS    tmKind = "ts"   // timestamp: wall clock
	tmTSTZ  tmKind = "tstz" // timestamptz: instant
	tmJSON  tmKind = "json"
	tmText  tmKind = "text" // everything else: the text form, exactly
)

type tmColumn struct {
	name  string
	kind  tmKind // of the element for arrays
	array bool
	typ   string
}

type tmTable struct {
	name string
	cols []tmColumn
	pk   []int
	rows map[string][]*string // by key; values are text forms, nil for NULL
}

func (tb *tmTable) col(name string) int {
	for i, c := range tb.cols {
		if c.name == name {
			return i
		}
	}
	return -1
}

// tmNormKey is a key part as the oracle compares it: integers in canonical
// decimal, text as it is.
func tmNormKey(k tmKind, s string) string {
	if k == tmInt {
		if n, ok := new(big.Int).SetString(s, 10); ok {
			return n.String()
		}
	}
	return s
}

func tmReadSource(ctx context.Context, t *testing.T, db string) map[string]*tmTable {
	t.Helper()
	cfg, err := pgx.ParseConfig(db)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"TimeZone": "UTC", "DateStyle": "ISO, YMD", "IntervalStyle": "postgres",
		"extra_float_digits": "3", "bytea_output": "hex"} {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	type pgType struct {
		name              string
		typtype, category string
		base, elem        uint32
	}
	typs := map[uint32]pgType{}
	rows, err := conn.Query(ctx, "SELECT oid, typname, typtype::text, typcategory::text, typbasetype, typelem FROM pg_type")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var oid uint32
		var ty pgType
		if err := rows.Scan(&oid, &ty.name, &ty.typtype, &ty.category, &ty.base, &ty.elem); err != nil {
			t.Fatal(err)
		}
		typs[oid] = ty
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	resolve := func(oid uint32) (tmKind, bool, string) {
		array := false
		for range 10 {
			ty := typs[oid]
			switch {
			case ty.typtype == "d":
				oid = ty.base
				continue
			case ty.category == "A" && ty.elem != 0 && !array:
				array, oid = true, ty.elem
				continue
			}
			switch ty.name {
			case "int2", "int4", "int8", "oid":
				return tmInt, array, ty.name
			case "numeric", "float4", "float8":
				return tmDec, array, ty.name
			case "money":
				return tmMoney, array, ty.name
			case "bool":
				return tmBool, array, ty.name
			case "bytea":
				return tmBytea, array, ty.name
			case "date":
				return tmDate, array, ty.name
			case "timestamp":
				return tmTS, array, ty.name
			case "timestamptz":
				return tmTSTZ, array, ty.name
			case "json", "jsonb":
				return tmJSON, array, ty.name
			}
			return tmText, array, ty.name
		}
		return tmText, array, "?"
	}

	src := map[string]*tmTable{}
	rows, err = conn.Query(ctx, `SELECT c.relname, a.attname, a.atttypid,
		coalesce((SELECT k.n FROM unnest(i.indkey) WITH ORDINALITY k(att, n) WHERE k.att = a.attnum), 0)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
		WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname, a.attnum`)
	if err != nil {
		t.Fatal(err)
	}
	pkPos := map[string]map[int]int{}
	for rows.Next() {
		var rel, att string
		var oid uint32
		var pos int
		if err := rows.Scan(&rel, &att, &oid, &pos); err != nil {
			t.Fatal(err)
		}
		tb := src[rel]
		if tb == nil {
			tb = &tmTable{name: rel, rows: map[string][]*string{}}
			src[rel] = tb
			pkPos[rel] = map[int]int{}
		}
		k, arr, typ := resolve(oid)
		if pos > 0 {
			pkPos[rel][pos] = len(tb.cols)
		}
		tb.cols = append(tb.cols, tmColumn{name: att, kind: k, array: arr, typ: typ})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for rel, tb := range src {
		for i := 1; i <= len(pkPos[rel]); i++ {
			tb.pk = append(tb.pk, pkPos[rel][i])
		}
		var exprs []string
		for _, c := range tb.cols {
			q := pgx.Identifier{c.name}.Sanitize()
			// The type's output function (format's %s), not a cast to text,
			// which differs for some types (bpchar drops its blanks, inet
			// adds /128).
			e := q
			if c.kind == tmMoney && !c.array {
				e = q + "::numeric"
			}
			exprs = append(exprs, "CASE WHEN "+q+" IS NULL THEN NULL ELSE format('%s', "+e+") END")
		}
		rs, err := conn.Query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+pgx.Identifier{rel}.Sanitize(), pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			vals := make([]*string, len(tb.cols))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			tb.rows[tb.keyOf(vals)] = vals
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

func (tb *tmTable) keyOf(vals []*string) string {
	parts := make([]string, len(tb.pk))
	for i, c := range tb.pk {
		if vals[c] != nil {
			parts[i] = tmNormKey(tb.cols[c].kind, *vals[c])
		}
	}
	return strings.Join(parts, "|")
}

// ---- the dead-letter file ----

// tmDeadLine is a dead-letter line as the README documents it.
type tmDeadLine struct {
	Table  string             `json:"table"`
	Key    string             `json:"key"`
	Reason string             `json:"reason"`
	Op     string             `json:"op"`
	LSN    string             `json:"lsn"`
	Row    map[string]*string `json:"row"`
}

// tmCheckDeadLetter asserts that every must-refusal is in the file with a
// reason naming its column, that nothing else is, and returns the refusals
// that happened by "table|key".
func tmCheckDeadLetter(t *testing.T, path string, src map[string]*tmTable) map[string]tmRefusal {
	t.Helper()
	var lines []tmDeadLine
	if data, err := os.ReadFile(path); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	} else {
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(l)) == 0 {
				continue
			}
			var d tmDeadLine
			if err := json.Unmarshal(l, &d); err != nil {
				t.Fatalf("dead-letter line %q: %v", truncate(string(l), 200), err)
			}
			lines = append(lines, d)
		}
	}
	byID := map[string][]tmDeadLine{}
	for _, d := range lines {
		name := strings.TrimPrefix(d.Table, "public.")
		tb := src[name]
		if tb == nil {
			t.Errorf("dead-letter line for unknown table %q (key %s): %s", d.Table, d.Key, truncate(d.Reason, 200))
			continue
		}
		parts := make([]string, len(tb.pk))
		for i, c := range tb.pk {
			v := d.Row[tb.cols[c].name]
			if v == nil {
				t.Errorf("dead-letter line %s (%s): row without key column %s", d.Table, d.Key, tb.cols[c].name)
				continue
			}
			parts[i] = tmNormKey(tb.cols[c].kind, *v)
		}
		byID[name+"|"+strings.Join(parts, "|")] = append(byID[name+"|"+strings.Join(parts, "|")], d)
	}
	refused := map[string]tmRefusal{}
	var took, stored []string
	for _, r := range tmRefusals() {
		id := r.table + "|" + r.key
		ls := byID[id]
		delete(byID, id)
		if len(ls) == 0 {
			if r.must {
				t.Errorf("dead letter: %s (%s) is not in the file; want a line (op %s) naming %q", r.table, r.key, r.op, r.mention[0])
			} else {
				stored = append(stored, id)
			}
			continue
		}
		refused[id] = r
		took = append(took, id)
		for _, l := range ls {
			if l.Op != r.op {
				t.Errorf("dead letter: %s (%s): op %q, want %q", r.table, r.key, l.Op, r.op)
			}
			if !slices.ContainsFunc(r.mention, func(m string) bool { return strings.Contains(l.Reason, m) }) {
				t.Errorf("dead letter: %s (%s): reason %q does not name %q", r.table, r.key, truncate(l.Reason, 300), r.mention[0])
			}
		}
		if len(ls) > 1 {
			t.Errorf("dead letter: %s (%s): %d lines, want 1", r.table, r.key, len(ls))
		}
	}
	for id, ls := range byID {
		t.Errorf("dead letter: unexpected line for %s (key %s, op %s): %s", id, ls[0].Key, ls[0].Op, truncate(ls[0].Reason, 300))
	}
	sort.Strings(took)
	sort.Strings(stored)
	t.Logf("dead letter: %d lines; refused %q; stored (exact or refused, and not refused) %q", len(lines), took, stored)
	return refused
}

// ---- DynamoDB ----

func tmCheckItems(ctx context.Context, t *testing.T, client *dynamodb.Client, src map[string]*tmTable, targets map[string]string, refused map[string]tmRefusal) {
	t.Helper()
	diffs, compared := 0, 0
	report := func(format string, args ...any) {
		diffs++
		if diffs <= 40 {
			t.Errorf("dynamodb: "+format, args...)
		}
	}
	for _, name := range testkit.SortedKeys(src) {
		tb := src[name]
		target, ok := targets[name]
		if !ok {
			report("table %s is not in the generated mapping", name)
			continue
		}
		desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(target)})
		if err != nil {
			report("table %s: %v", target, err)
			continue
		}
		keyAttrs := map[string]bool{}
		for _, k := range desc.Table.KeySchema {
			keyAttrs[*k.AttributeName] = true
		}
		for _, c := range tb.cols {
			if keyAttrs[c.name] {
				report("%s: column %s is also a key attribute of %s: the item cannot carry both", name, c.name, target)
			}
		}
		items, err := testkit.ScanAll(ctx, client, target)
		if err != nil {
			t.Fatal(err)
		}
		byKey := map[string]map[string]types.AttributeValue{}
		for _, it := range items {
			parts := make([]string, len(tb.pk))
			for i, c := range tb.pk {
				switch v := it[tb.cols[c].name].(type) {
				case *types.AttributeValueMemberN:
					parts[i] = tmNormKey(tb.cols[c].kind, v.Value)
				case *types.AttributeValueMemberS:
					parts[i] = v.Value
				default:
					report("%s: item %s without key column %s", name, tmItemKey(it, keyAttrs), tb.cols[c].name)
				}
			}
			k := strings.Join(parts, "|")
			if _, dup := byKey[k]; dup {
				report("%s (%s): two items", name, k)
			}
			byKey[k] = it
			if _, ok := it["_version"].(*types.AttributeValueMemberN); !ok {
				report("%s (%s): no _version N", name, k)
			}
			if _, ok := it["_table"].(*types.AttributeValueMemberS); !ok {
				report("%s (%s): no _table S", name, k)
			}
		}
		wantItems := 0
		for _, key := range testkit.SortedKeys(tb.rows) {
			row := tb.rows[key]
			r, isRefused := refused[name+"|"+key]
			it, ok := byKey[key]
			delete(byKey, key)
			switch {
			case isRefused && r.stale:
				wantItems++
				if !ok {
					report("%s (%s): refused under sync, but its earlier item is gone", name, key)
				}
				continue
			case isRefused:
				if ok {
					report("%s (%s): refused (dead-lettered) but has an item", name, key)
				}
				continue
			}
			wantItems++
			if !ok {
				report("%s (%s): missing", name, key)
				continue
			}
			for i, c := range tb.cols {
				compared++
				if err := tmItemValue(c, row[i], it[c.name]); err != nil {
					report("%s (%s) column %s (%s%s): %v", name, key, c.name, c.typ, map[bool]string{true: "[]"}[c.array], err)
				}
			}
		}
		for k, it := range byKey {
			report("%s: extra item %s (key columns %s)", name, tmItemKey(it, keyAttrs), k)
		}
		if len(items) != wantItems {
			report("%s: %d items, want %d (%d source rows, %d refused)", name, len(items), wantItems, len(tb.rows), len(tb.rows)-wantItems)
		}
	}
	if diffs > 40 {
		t.Errorf("dynamodb: %d differences in all", diffs)
	}
	t.Logf("dynamodb: %d values compared", compared)
}

func tmItemKey(it map[string]types.AttributeValue, keyAttrs map[string]bool) string {
	var parts []string
	for _, k := range testkit.SortedKeys(keyAttrs) {
		parts = append(parts, k+"="+tmShowAV(it[k]))
	}
	return strings.Join(parts, ",")
}

// tmItemValue compares a source value (text form, nil for NULL) with its
// attribute by the oracle's rules.
func tmItemValue(c tmColumn, src *string, av types.AttributeValue) error {
	if src == nil {
		if _, isNull := av.(*types.AttributeValueMemberNULL); av == nil || isNull {
			return nil
		}
		return fmt.Errorf("source NULL, item %s", tmShowAV(av))
	}
	if c.array {
		elems, bounds, err := tmParseArray(*src)
		if err != nil {
			return fmt.Errorf("oracle cannot parse array %q: %v", truncate(*src, 80), err)
		}
		if bounds != "" { // no L keeps the lower bounds: want the text form
			if s, ok := av.(*types.AttributeValueMemberS); ok && s.Value == *src {
				return nil
			}
			return fmt.Errorf("array with lower bounds %q: item %s, want it refused or kept exactly", *src, tmShowAV(av))
		}
		return tmItemList(c, elems, av)
	}
	return tmItemScalar(c.kind, *src, av)
}

func tmItemList(c tmColumn, elems []tmElem, av types.AttributeValue) error {
	l, ok := av.(*types.AttributeValueMemberL)
	if !ok {
		return fmt.Errorf("want L of %d, item %s", len(elems), tmShowAV(av))
	}
	if len(l.Value) != len(elems) {
		return fmt.Errorf("L of %d, want %d: %s", len(l.Value), len(elems), tmShowAV(av))
	}
	for i, e := range elems {
		var err error
		switch {
		case e.sub != nil:
			err = tmItemList(c, e.sub, l.Value[i])
		case e.null:
			if _, isNull := l.Value[i].(*types.AttributeValueMemberNULL); !isNull {
				err = fmt.Errorf("NULL element, item %s", tmShowAV(l.Value[i]))
			}
		default:
			err = tmItemScalar(c.kind, e.text, l.Value[i])
		}
		if err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
	}
	return nil
}

func tmItemScalar(k tmKind, src string, av types.AttributeValue) error {
	switch k {
	case tmInt, tmDec, tmMoney:
		var got string
		switch v := av.(type) {
		case *types.AttributeValueMemberN:
			got = v.Value
		case *types.AttributeValueMemberS:
			got = v.Value
		default:
			return fmt.Errorf("source %s, item %s", src, tmShowAV(av))
		}
		return tmSameDecimal(src, got)
	case tmBool:
		if v, ok := av.(*types.AttributeValueMemberBOOL); ok && v.Value == (src == "true" || src == "t") {
			return nil
		}
		return fmt.Errorf("source %s, item %s", src, tmShowAV(av))
	case tmBytea:
		want, err := hex.DecodeString(strings.TrimPrefix(src, `\x`))
		if err != nil {
			return fmt.Errorf("oracle: bytea %q: %v", truncate(src, 40), err)
		}
		if v, ok := av.(*types.AttributeValueMemberB); ok && bytes.Equal(v.Value, want) {
			return nil
		}
		return fmt.Errorf("source bytea %s, item %s", truncate(src, 80), tmShowAV(av))
	case tmDate, tmTS, tmTSTZ:
		v, ok := av.(*types.AttributeValueMemberS)
		if !ok {
			return fmt.Errorf("source %s, item %s", src, tmShowAV(av))
		}
		return tmSameTime(k, src, v.Value)
	}
	if v, ok := av.(*types.AttributeValueMemberS); ok && v.Value == src {
		return nil
	}
	return fmt.Errorf("source %q, item %s", truncate(src, 120), tmShowAV(av))
}

func tmShowAV(av types.AttributeValue) string {
	switch v := av.(type) {
	case nil:
		return "(absent)"
	case *types.AttributeValueMemberS:
		return "S " + strconv.Quote(truncate(v.Value, 120))
	case *types.AttributeValueMemberN:
		return "N " + v.Value
	case *types.AttributeValueMemberB:
		return "B " + truncate(hex.EncodeToString(v.Value), 80)
	case *types.AttributeValueMemberBOOL:
		return "BOOL " + strconv.FormatBool(v.Value)
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberL:
		parts := make([]string, len(v.Value))
		for i, e := range v.Value {
			parts[i] = tmShowAV(e)
		}
		return "L [" + strings.Join(parts, ", ") + "]"
	case *types.AttributeValueMemberM:
		return "M " + strings.Join(testkit.SortedKeys(v.Value), ",")
	}
	return fmt.Sprintf("%T", av)
}

// tmSameDecimal compares two decimal texts exactly (math/big). Money forms
// ("$1,234.56", "-$0.01") are read as their amount.
func tmSameDecimal(src, got string) error {
	a, ok1 := tmDecimal(src)
	b, ok2 := tmDecimal(got)
	if !ok1 {
		return fmt.Errorf("oracle: %q is not a decimal", src)
	}
	if !ok2 || a.Cmp(b) != 0 {
		return fmt.Errorf("source %s, target %q: not the same number", truncate(src, 80), truncate(got, 80))
	}
	return nil
}

func tmDecimal(s string) (*big.Rat, bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	neg := false
	if r, ok := strings.CutPrefix(s, "-$"); ok {
		neg, s = true, r
	} else if r, ok := strings.CutPrefix(s, "$"); ok {
		s = r
	}
	r, ok := new(big.Rat).SetString(s)
	if ok && neg {
		r.Neg(r)
	}
	return r, ok
}

// tmTimeRe matches ISO 8601 and PostgreSQL's ISO output: years of four or
// more digits, astronomical (signed) or with " BC", 'T' or ' ', optional
// fraction and offset.
var tmTimeRe = regexp.MustCompile(`^([+-])?(\d{4,})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?)?(Z|[+-]\d\d(?::?\d\d(?::?\d\d)?)?)?( BC)?$`)

// tmParseTime returns the instant of a date or timestamp text (a timestamp
// without offset as UTC) and whether it had an offset.
func tmParseTime(s string) (time.Time, bool, error) {
	m := tmTimeRe.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false, fmt.Errorf("%q is not an ISO date or timestamp", truncate(s, 60))
	}
	atoi := func(x string) int { n, _ := strconv.Atoi(x); return n }
	year := atoi(m[2])
	if m[1] == "-" {
		year = -year
	}
	if m[10] != "" {
		year = 1 - year // 1 BC is year 0
	}
	nsec := 0
	if m[8] != "" {
		nsec = atoi((m[8] + "000000000")[:9])
	}
	tt := time.Date(year, time.Month(atoi(m[3])), atoi(m[4]), atoi(m[5]), atoi(m[6]), atoi(m[7]), nsec, time.UTC)
	if z := m[9]; z != "" && z != "Z" {
		digits := strings.ReplaceAll(z[1:], ":", "")
		off := atoi(digits[:2]) * 3600
		if len(digits) >= 4 {
			off += atoi(digits[2:4]) * 60
		}
		if len(digits) >= 6 {
			off += atoi(digits[4:6])
		}
		if z[0] == '-' {
			off = -off
		}
		tt = tt.Add(-time.Duration(off) * time.Second)
	}
	return tt, m[9] != "", nil
}

func tmSameTime(k tmKind, src, got string) error {
	a, _, err := tmParseTime(src)
	if err != nil {
		return fmt.Errorf("oracle: %v", err)
	}
	b, _, err := tmParseTime(got)
	if err != nil {
		return fmt.Errorf("source %s, target %q: %v", src, got, err)
	}
	if !a.Equal(b) {
		return fmt.Errorf("source %s (%s), target %q (%s): not the same %s", src, a.Format(time.RFC3339Nano), got, b.Format(time.RFC3339Nano), k)
	}
	return nil
}

// tmElem is an element of a PostgreSQL array literal.
type tmElem struct {
	text string
	null bool
	sub  []tmElem
}

// tmParseArray parses PostgreSQL's array output ("{a,\"b c\",NULL}", nested,
// optionally after "[lo:hi]=" bounds, which it returns).
func tmParseArray(s string) ([]tmElem, string, error) {
	bounds := ""
	if strings.HasPrefix(s, "[") {
		i := strings.Index(s, "=")
		if i < 0 {
			return nil, "", fmt.Errorf("bounds without '='")
		}
		bounds, s = s[:i], s[i+1:]
	}
	elems, rest, err := tmParseLevel(s)
	if err == nil && rest != "" {
		err = fmt.Errorf("trailing %q", rest)
	}
	return elems, bounds, err
}

func tmParseLevel(s string) ([]tmElem, string, error) {
	if !strings.HasPrefix(s, "{") {
		return nil, s, fmt.Errorf("want '{' at %q", truncate(s, 20))
	}
	s = s[1:]
	out := []tmElem{}
	if strings.HasPrefix(s, "}") {
		return out, s[1:], nil
	}
	for {
		var e tmElem
		switch {
		case strings.HasPrefix(s, "{"):
			sub, rest, err := tmParseLevel(s)
			if err != nil {
				return nil, s, err
			}
			e.sub, s = sub, rest
		case strings.HasPrefix(s, `"`):
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
				if i < len(s) {
					b.WriteByte(s[i])
				}
			}
			if i >= len(s) {
				return nil, s, fmt.Errorf("unterminated quote")
			}
			e.text, s = b.String(), s[i+1:]
		default:
			i := strings.IndexAny(s, ",}")
			if i < 0 {
				return nil, s, fmt.Errorf("unterminated")
			}
			e.text, s = s[:i], s[i:]
			e.null = e.text == "NULL"
		}
		out = append(out, e)
		switch {
		case strings.HasPrefix(s, ","):
			s = s[1:]
		case strings.HasPrefix(s, "}"):
			return out, s[1:], nil
		default:
			return nil, s, fmt.Errorf("want ',' or '}' at %q", truncate(s, 20))
		}
	}
}

// ---- Kinesis ----

// tmCheckStream folds the stream to the latest event per partition key (by
// source position) and compares each row's after-image with the source.
func tmCheckStream(t *testing.T, events []testkit.Event, src map[string]*tmTable, refused map[string]tmRefusal) {
	t.Helper()
	diffs, compared := 0, 0
	report := func(format string, args ...any) {
		diffs++
		if diffs <= 40 {
			t.Errorf("stream: "+format, args...)
		}
	}
	type pos struct{ lsn, seq uint64 }
	parseLSN := func(s string) uint64 {
		hi, lo, ok := strings.Cut(s, "/")
		h, err1 := strconv.ParseUint(hi, 16, 32)
		l, err2 := strconv.ParseUint(lo, 16, 32)
		if !ok || err1 != nil || err2 != nil {
			report("event with LSN %q", s)
		}
		return h<<32 | l
	}
	byPK := map[string][]int{}
	for i, ev := range events {
		byPK[ev.PartitionKey] = append(byPK[ev.PartitionKey], i)
	}
	type state struct {
		table string
		after map[string]json.RawMessage
	}
	var states []state
	for _, pk := range testkit.SortedKeys(byPK) {
		idx := byPK[pk]
		sort.SliceStable(idx, func(a, b int) bool {
			ea, eb := events[idx[a]], events[idx[b]]
			pa := pos{parseLSN(ea.Source.LSN), uint64(ea.Source.Seq)}
			pb := pos{parseLSN(eb.Source.LSN), uint64(eb.Source.Seq)}
			return pa.lsn < pb.lsn || pa.lsn == pb.lsn && pa.seq < pb.seq
		})
		var cur map[string]json.RawMessage
		table := ""
		for _, i := range idx {
			ev := events[i]
			table = ev.Source.Table
			switch ev.Op {
			case "r", "c":
				cur = ev.After
			case "u":
				merged := map[string]json.RawMessage{}
				for k, v := range cur {
					merged[k] = v
				}
				for k, v := range ev.After {
					merged[k] = v
				}
				cur = merged
			case "d":
				cur = nil
			default:
				report("%s: event op %q", pk, ev.Op)
			}
		}
		if cur != nil {
			states = append(states, state{table, cur})
		}
	}
	// Index the states by table and key columns.
	got := map[string]map[string]map[string]json.RawMessage{}
	for _, s := range states {
		tb := src[s.table]
		if tb == nil {
			report("events of unknown table %q", s.table)
			continue
		}
		parts := make([]string, len(tb.pk))
		for i, c := range tb.pk {
			raw := s.after[tb.cols[c].name]
			var v any
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				report("%s: after-image key column %s = %s", s.table, tb.cols[c].name, raw)
			}
			switch x := v.(type) {
			case json.Number:
				parts[i] = tmNormKey(tb.cols[c].kind, x.String())
			case string:
				parts[i] = x
			default:
				report("%s: after-image key column %s = %s", s.table, tb.cols[c].name, raw)
			}
		}
		k := strings.Join(parts, "|")
		if got[s.table] == nil {
			got[s.table] = map[string]map[string]json.RawMessage{}
		}
		if _, dup := got[s.table][k]; dup {
			report("%s (%s): two partition keys hold the row", s.table, k)
		}
		got[s.table][k] = s.after
	}
	for _, name := range testkit.SortedKeys(src) {
		tb := src[name]
		for _, key := range testkit.SortedKeys(tb.rows) {
			row := tb.rows[key]
			after, ok := got[name][key]
			delete(got[name], key)
			r, isRefused := refused[name+"|"+key]
			switch {
			case isRefused && r.stale:
				if !ok {
					report("%s (%s): refused under sync, but its earlier state is gone", name, key)
				}
				continue
			case isRefused && !r.record && !ok:
				continue // refused by both targets
			case !ok:
				report("%s (%s): missing", name, key)
				continue
			}
			for i, c := range tb.cols {
				raw, has := after[c.name]
				if !has {
					report("%s (%s): after-image without column %s", name, key, c.name)
					continue
				}
				compared++
				if err := tmStreamValue(c, row[i], raw); err != nil {
					report("%s (%s) column %s (%s%s): %v", name, key, c.name, c.typ, map[bool]string{true: "[]"}[c.array], err)
				}
			}
		}
		for k := range got[name] {
			report("%s (%s): in the stream, not in the source", name, k)
		}
	}
	if diffs > 40 {
		t.Errorf("stream: %d differences in all", diffs)
	}
	t.Logf("stream: %d events, %d partition keys, %d rows folded, %d values compared", len(events), len(byPK), len(states), compared)
}

// tmStreamValue compares a source value with its JSON in an after-image.
func tmStreamValue(c tmColumn, src *string, raw json.RawMessage) error {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return fmt.Errorf("not JSON: %s", truncate(string(raw), 80))
	}
	if src == nil {
		if v == nil {
			return nil
		}
		return fmt.Errorf("source NULL, stream %s", truncate(string(raw), 120))
	}
	if c.kind == tmJSON && !c.array {
		// The JSON value itself, or the text as a string; never null for a
		// non-NULL value (JSON null must not read as SQL NULL).
		if s, ok := v.(string); ok && s == *src {
			return nil
		}
		if v == nil {
			return fmt.Errorf("source %s %q, stream null: indistinguishable from SQL NULL", c.typ, *src)
		}
		var a, b bytes.Buffer
		if err := json.Compact(&a, []byte(*src)); err != nil {
			return fmt.Errorf("oracle: %v", err)
		}
		if err := json.Compact(&b, raw); err == nil && a.String() == b.String() {
			return nil
		}
		return fmt.Errorf("source %q, stream %s", truncate(*src, 120), truncate(string(raw), 120))
	}
	if c.array {
		elems, bounds, err := tmParseArray(*src)
		if err != nil {
			return fmt.Errorf("oracle cannot parse array %q: %v", truncate(*src, 80), err)
		}
		if bounds != "" {
			if s, ok := v.(string); ok && s == *src {
				return nil
			}
			return fmt.Errorf("array with lower bounds %q: stream %s, want it refused or kept exactly", *src, truncate(string(raw), 120))
		}
		return tmStreamList(c, elems, v)
	}
	return tmStreamScalar(c.kind, *src, v)
}

func tmStreamList(c tmColumn, elems []tmElem, v any) error {
	l, ok := v.([]any)
	if !ok || len(l) != len(elems) {
		return fmt.Errorf("want a JSON array of %d, stream %v", len(elems), v)
	}
	for i, e := range elems {
		var err error
		switch {
		case e.sub != nil:
			err = tmStreamList(c, e.sub, l[i])
		case e.null:
			if l[i] != nil {
				err = fmt.Errorf("NULL element, stream %v", l[i])
			}
		case c.kind == tmJSON:
			b, _ := json.Marshal(l[i])
			var a, bb bytes.Buffer
			_ = json.Compact(&a, []byte(e.text))
			_ = json.Compact(&bb, b)
			if s, ok := l[i].(string); !(ok && s == e.text) && a.String() != bb.String() {
				err = fmt.Errorf("source %q, stream %s", e.text, b)
			}
		default:
			err = tmStreamScalar(c.kind, e.text, l[i])
		}
		if err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
	}
	return nil
}

func tmStreamScalar(k tmKind, src string, v any) error {
	switch k {
	case tmInt, tmDec, tmMoney:
		switch x := v.(type) {
		case json.Number:
			return tmSameDecimal(src, x.String())
		case string:
			return tmSameDecimal(src, x)
		}
		return fmt.Errorf("source %s, stream %v", src, v)
	case tmBool:
		if b, ok := v.(bool); ok && b == (src == "true" || src == "t") {
			return nil
		}
		return fmt.Errorf("source %s, stream %v", src, v)
	case tmBytea:
		want, _ := hex.DecodeString(strings.TrimPrefix(src, `\x`))
		s, ok := v.(string)
		if ok {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil && bytes.Equal(b, want) {
				return nil
			}
		}
		return fmt.Errorf("source bytea %s, stream %v (want base64)", truncate(src, 80), v)
	case tmDate, tmTS, tmTSTZ:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("source %s, stream %v", src, v)
		}
		return tmSameTime(k, src, s)
	}
	if s, ok := v.(string); ok && s == src {
		return nil
	}
	return fmt.Errorf("source %q, stream %s", truncate(src, 120), truncate(fmt.Sprint(v), 120))
}
