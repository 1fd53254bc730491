package verify

import (
	"context"
	"slices"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// paymentPlan is payment with the stream partition key given (nil: the
// default, table and primary key).
func paymentPlan(t *testing.T, stream string) *transform.TablePlan {
	t.Helper()
	m, err := mappings.Parse("payment.yaml", []byte(`version: 1
defaults: {target: pagila}
tables:
  - source: payment
    partition_key: {name: pk, template: "PAYMENT#{payment_id}"}
    stream: `+stream+`
`))
	if err != nil {
		t.Fatal(err)
	}
	src := &extract.Table{Schema: "public", Name: "payment", PK: []int{0}, Columns: []extract.Column{
		{Name: "payment_id", Type: "integer", Position: 1}, {Name: "customer_id", Type: "integer", Position: 2}, {Name: "amount", Type: "numeric", Position: 3}}}
	tp, err := transform.CompileTable(m.Table("public.payment"), map[string]*extract.Table{"public.payment": src})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// TestBarrierPartitionKey: a re-check's barrier goes on the partition key of
// the row's changes: the row's own, or for a row that is gone the one its
// delete had (primary key only); a key the primary key cannot make is an
// error, not a barrier on some other key.
func TestBarrierPartitionKey(t *testing.T) {
	row := extract.Row{{Text: "17503"}, {Text: "269"}, {Text: "4.99"}}
	byDefault := paymentPlan(t, "pagila-changes")
	byCustomer := paymentPlan(t, `{name: pagila-changes, partition_key: "customer#{customer_id}"}`)
	want, err := byDefault.PartitionKey(row)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		tp      *transform.TablePlan
		found   bool
		want    string
		wantErr bool
	}{
		{"default key, row present", byDefault, true, want, false},
		{"default key, row gone", byDefault, false, want, false},
		{"custom key, row present", byCustomer, true, "customer#269", false},
		{"custom key, row gone", byCustomer, false, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := partitionKey(tc.tp, []string{"17503"}, row, tc.found)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("partitionKey = %q, %v; want %q (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestWaitAppliers: one mark per distinct stream partition key; findings
// without one (no stream, or a key that cannot be told) add none; the
// Barrier's answer is the round's.
func TestWaitAppliers(t *testing.T) {
	tc := &tableCheck{tp: paymentPlan(t, "pagila-changes")}
	fs := []*finding{{tc: tc}, {tc: tc}, {tc: tc}, {tc: tc}}
	probes := []probe{{part: "a"}, {part: "b"}, {part: "a"}, {}}
	var got []BarrierMark
	v := &verifier{cfg: Config{Barrier: func(_ context.Context, marks []BarrierMark, lsn extract.LSN) (bool, error) {
		got = marks
		return lsn == 7, nil
	}}}
	ok, err := v.waitAppliers(t.Context(), fs, probes, 7)
	if err != nil || !ok {
		t.Fatalf("waitAppliers = %v, %v", ok, err)
	}
	want := []BarrierMark{{"pagila-changes", "a"}, {"pagila-changes", "b"}}
	if !slices.Equal(got, want) {
		t.Errorf("marks %v, want %v", got, want)
	}
	if ok, _ := v.waitAppliers(t.Context(), fs, probes, 8); ok {
		t.Error("a Barrier that did not see its records applied must fail the round")
	}
	got = nil
	if ok, _ := v.waitAppliers(t.Context(), fs[3:], probes[3:], 8); !ok || got != nil {
		t.Errorf("no marks: Barrier called with %v, ok %v", got, ok)
	}
}
