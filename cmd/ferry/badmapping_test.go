package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

func TestBadMappingExits2AndWritesNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		old, new  string
		wantError string // regexp matched against stderr
	}{
		{"unknown key", "    exclude: [fulltext]\n", "    exclude: [fulltext]\n    exclud: [description]\n",
			`pagila\.yaml:\d+: unknown key "exclud"`},
		{"missing column", "exclude: [fulltext]", "exclude: [fulltext, no_such_column]",
			`pagila\.yaml:\d+: .*"no_such_column"`},
		{"template names missing column", `template: "CUSTOMER#{last_name}#{customer_id}"`, `template: "CUSTOMER#{nickname}#{customer_id}"`,
			`pagila\.yaml:\d+: .*"nickname"`},
		{"one key space without discriminator", `{name: pk, template: "COUNTRY#{country_id}"}
    sort_key: {name: sk, template: "COUNTRY"}`, `{name: pk, template: "CITY#{country_id}"}
    sort_key: {name: sk, template: "CITY"}`,
			`pagila\.yaml:\d+: .*(discriminator|key space)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newBackfillEnv(t)
			data, err := os.ReadFile(e.mapping)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), tc.old) {
				t.Fatalf("pagila.yaml does not contain %q", tc.old)
			}
			if err := os.WriteFile(e.mapping, []byte(strings.Replace(string(data), tc.old, tc.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			re := regexp.MustCompile(tc.wantError)
			for _, args := range [][]string{
				{"plan", "--source", e.db, "--mapping", e.mapping},
				e.args(),
			} {
				code, out, errOut := runFerry(t, args...)
				if code != 2 {
					t.Errorf("%s: exit %d, want 2\n%s\n%s", args[0], code, out, errOut)
				}
				if !re.MatchString(errOut) {
					t.Errorf("%s: stderr does not match %s:\n%s", args[0], tc.wantError, errOut)
				}
			}
			ctx := t.Context()
			if tableExists(ctx, e.st.DynamoClient(), e.target) || tableExists(ctx, e.st.DynamoClient(), e.control) {
				t.Error("a DynamoDB table was created for a bad mapping")
			}
			conn, err := extract.Connect(ctx, e.db)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if _, exists, err := extract.LookupSlot(ctx, conn, e.slot); err != nil || exists {
				t.Errorf("slot created for a bad mapping (exists=%v, err=%v)", exists, err)
			}
		})
	}
}

func TestPlanPrintsTypesKeysAndSizes(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	code, out, errOut := runFerry(t, "plan", "--source", e.db, "--mapping", e.mapping)
	if code != 0 {
		t.Fatalf("plan exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"public.film → " + e.target, "special_features", "text[]", " L", "rating", "BOOL",
		"public.payment → ", "amount", "numeric(5,2)", "largest item ≈", "gsi gsi1:", "(excluded)",
		"kinesis json", "string (exact digits)", "NaN, ±Infinity", "array of string", "±infinity",
		"keys stay unique", // rental's GSI sort keys have several columns
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	// A generated column: plan says that sync computes it.
	conn, err := pgx.Connect(t.Context(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `ALTER TABLE film ADD COLUMN title_len int GENERATED ALWAYS AS (length(title)) STORED`); err != nil {
		t.Fatal(err)
	}
	_, out, _ = runFerry(t, "plan", "--source", e.db, "--mapping", e.mapping)
	if want := "generated column title_len = length(title): pgoutput does not send it; sync computes it"; !strings.Contains(out, want) {
		t.Errorf("plan output lacks %q:\n%s", want, out)
	}
	// --compile writes the plan the applier function runs with: read back
	// without the source, its tables are the catalogue's (the generated
	// column's inputs included).
	if code, _, errOut := runFerry(t, "plan", "--source", e.db, "--mapping", e.mapping, "--compile"); code != 2 || !strings.Contains(errOut, "--out") {
		t.Errorf("--compile without --out: exit %d, want 2 naming --out\n%s", code, errOut)
	}
	planFile := t.TempDir() + "/plan.json"
	if code, out, errOut := runFerry(t, "plan", "--source", e.db, "--mapping", e.mapping, "--compile", "--out", planFile); code != 0 || !strings.Contains(out, "wrote the compiled plan") {
		t.Fatalf("plan --compile exit %d\n%s\n%s", code, out, errOut)
	}
	cp, err := transform.LoadCompiledPlan(planFile)
	if err != nil {
		t.Fatal(err)
	}
	catalogue, err := readCatalog(t.Context(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	if len(cp.Tables) != 15 {
		t.Errorf("compiled plan maps %d tables, want Pagila's 15", len(cp.Tables))
	}
	for _, tp := range cp.Tables {
		got, _ := json.Marshal(tp.Source)
		want, _ := json.Marshal(catalogue[tp.Source.QualifiedName()])
		if !bytes.Equal(got, want) {
			t.Errorf("compiled %s:\n%s\nthe catalogue's:\n%s", tp.Source.QualifiedName(), got, want)
		}
	}
	if f := cp.Table("public.film"); f == nil || f.Source.Columns[f.Source.ColumnIndex("title_len")].Generated == "" {
		t.Error("the compiled plan lost film's generated column")
	}
	// --generate writes a mapping that itself validates.
	gen := t.TempDir() + "/gen.yaml"
	if code, _, errOut := runFerry(t, "plan", "--source", e.db, "--generate", "--out", gen); code != 0 {
		t.Fatalf("generate exit %d: %s", code, errOut)
	}
	if code, out, errOut := runFerry(t, "plan", "--source", e.db, "--mapping", gen); code != 0 {
		t.Fatalf("generated mapping does not validate (exit %d):\n%s\n%s", code, out, errOut)
	}
}
