package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
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
	// --generate writes a mapping that itself validates.
	gen := t.TempDir() + "/gen.yaml"
	if code, _, errOut := runFerry(t, "plan", "--source", e.db, "--generate", "--out", gen); code != 0 {
		t.Fatalf("generate exit %d: %s", code, errOut)
	}
	if code, out, errOut := runFerry(t, "plan", "--source", e.db, "--mapping", gen); code != 0 {
		t.Fatalf("generated mapping does not validate (exit %d):\n%s\n%s", code, out, errOut)
	}
}
