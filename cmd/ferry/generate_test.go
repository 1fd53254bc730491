package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
)

// nastySchema adds tables whose names get in the way of a 1:1 mapping: names
// that are not identifiers or not valid DynamoDB table names, names that
// sanitise or qualify to the same target, key columns that are not
// identifiers, columns named like the key attributes or like ferry's own.
var nastySchema = []string{
	`CREATE SCHEMA "My Schema"`,
	`CREATE SCHEMA a`,
	`CREATE TABLE "Order Lines" ("Order ID" text, "a-b" int, pk text, sk text, PRIMARY KEY ("Order ID", "a-b"))`,
	`CREATE TABLE "we""ird" (id int PRIMARY KEY, _table text, _version int)`,
	`CREATE TABLE "a.b" (id int PRIMARY KEY)`,
	`CREATE TABLE a.b (id int PRIMARY KEY)`,
	`CREATE TABLE "Ünïcödé" ("ключ" text PRIMARY KEY, "значение" text)`,
	`CREATE TABLE "My Schema"."T" (id int PRIMARY KEY)`,
	`CREATE TABLE ab (pk int PRIMARY KEY, sk text, pk_ text)`,
	`CREATE TABLE "x y" (id int PRIMARY KEY)`,
	`CREATE TABLE "x+y" (id int PRIMARY KEY)`,
	`CREATE TABLE "Orders" ("}{" text, "1st" int, "#" text, PRIMARY KEY ("}{", "1st", "#"))`,
	`CREATE TABLE "line
break" (id int PRIMARY KEY)`,
	`CREATE TABLE "` + strings.Repeat("ä", 31) + `" (id int PRIMARY KEY)`,
	`CREATE TABLE ver ("_version" int PRIMARY KEY)`,
	`INSERT INTO "Order Lines" VALUES ('A 1', 1, 'p', 's'), ('A#1', 2, NULL, NULL), ('A\1', 3, 'x', 'y')`,
	`INSERT INTO "we""ird" VALUES (1, 't', 7)`,
	`INSERT INTO "a.b" VALUES (1), (2)`,
	`INSERT INTO a.b VALUES (1)`,
	`INSERT INTO "Ünïcödé" VALUES ('ключ', 'значение')`,
	`INSERT INTO "My Schema"."T" VALUES (5)`,
	`INSERT INTO ab VALUES (1, 's', 'p')`,
	`INSERT INTO "Orders" VALUES ('}{', 1, '#'), ('a#b', 2, '\')`,
}

// nastySources are the generated mapping's sources of the tables above that
// it maps (the rest of the database is Pagila).
var nastySources = map[string]bool{
	`public."Order Lines"`: true, `public."we""ird"`: true, `public."a.b"`: true, `a.b`: true,
	`public.Ünïcödé`: true, `"My Schema".T`: true, `public.ab`: true, `public.Orders`: true,
	`public."x y"`: true, `public."x+y"`: true, "public.\"line\nbreak\"": true,
	`public.` + strings.Repeat("ä", 31): true,
}

// TestPlanGenerateNastySchema: plan --generate on a database with such tables
// writes a mapping that plan --mapping accepts (exit 0), and says what it
// renamed.
func TestPlanGenerateNastySchema(t *testing.T) {
	t.Parallel()
	st := stack.ForTest(t)
	db := st.TestDatabase(t)
	conn, err := pgx.Connect(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range nastySchema {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			conn.Close(t.Context())
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close(t.Context())

	gen := filepath.Join(t.TempDir(), "gen.yaml")
	code, out, errOut := runFerry(t, "plan", "--source", db, "--generate", "--out", gen)
	if code != 0 {
		t.Fatalf("plan --generate: exit %d\n%s\n%s", code, out, errOut)
	}
	data, err := os.ReadFile(gen)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"wrote " + gen, "1 skipped",
		`note: public.Order Lines: target "Order_Lines-`,
		`note: public.Order Lines: partition key attribute named "pk_"`,
		`note: public.Order Lines: sort key attribute named "sk_"`,
		`note: public.ab: partition key attribute named "pk__"`,
		`note: "public.we\"ird": column "_table" excluded`,
		"which another table would get too",
		"note: skipped public.ver has primary key column \"_version\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan --generate output lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runFerry(t, "plan", "--source", db, "--mapping", gen)
	if code != 0 {
		t.Fatalf("plan --mapping of the generated mapping: exit %d\n%s\n%s\n--- mapping:\n%s", code, out, errOut, data)
	}
	for _, want := range []string{"public.Order Lines → Order_Lines-", "My Schema.T → My_Schema.T-", "public.Orders → Orders", "public.rental → rental"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}

	// The odd tables alone, on targets of their own: backfill writes every
	// row and verify finds both sides equal.
	mapping, targets := isolateGenerated(t, data, testkit.Name("gen_"))
	stream, slot, control := testkit.Name("gen-"), testkit.Name("ferry_gen_"), testkit.Name("ctl_")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, tg := range targets {
			_ = deleteTable(ctx, st.DynamoClient(), tg)
		}
		_ = deleteTable(ctx, st.DynamoClient(), control)
		_ = deleteStream(ctx, st.KinesisClient(), stream)
	})
	common := []string{"--source", db, "--mapping", mapping, "--slot", slot, "--control-table", control}
	raw, err := os.ReadFile(mapping)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mapping, []byte(strings.Replace(string(raw), "stream: ferry-changes", "stream: "+stream, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runFerry(t, append([]string{"backfill", "--progress", "log"}, common...)...); code != 0 {
		t.Fatalf("backfill of the odd tables: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runFerry(t, append([]string{"verify"}, common...)...); code != 0 {
		t.Fatalf("verify of the odd tables: exit %d\n%s\n%s", code, out, errOut)
	}
}

// isolateGenerated keeps the tables of nastySources of a generated mapping,
// each on its target with prefix in front, and returns the file and targets.
func isolateGenerated(t *testing.T, data []byte, prefix string) (string, []string) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("generated mapping is not YAML: %v", err)
	}
	root := doc.Content[0]
	var tables *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "tables" {
			tables = root.Content[i+1]
		}
	}
	var kept []*yaml.Node
	var targets []string
	for _, tb := range tables.Content {
		var src, tg *yaml.Node
		for i := 0; i+1 < len(tb.Content); i += 2 {
			switch tb.Content[i].Value {
			case "source":
				src = tb.Content[i+1]
			case "target":
				tg = tb.Content[i+1]
			}
		}
		if !nastySources[src.Value] {
			continue
		}
		tg.Value = prefix + tg.Value
		if len(tg.Value) > 255 {
			tg.Value = tg.Value[:255]
		}
		targets = append(targets, tg.Value)
		kept = append(kept, tb)
	}
	if len(kept) != len(nastySources) {
		t.Fatalf("generated mapping has %d of the %d odd tables:\n%s", len(kept), len(nastySources), data)
	}
	tables.Content = kept
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "odd.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, targets
}
