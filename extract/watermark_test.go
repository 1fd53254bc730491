package extract

import "testing"

func TestKeyChunkQuery(t *testing.T) {
	const rentalSelect = `SELECT "rental_id", "rental_date", "inventory_id" FROM "public"."rental"`
	const order = ` ORDER BY "rental_id"`
	k := func(v ...string) []string { return v }
	tests := []struct {
		name  string
		table *Table
		chunk KeyChunk
		want  string
	}{
		{"first chunk", rentalTable, KeyChunk{Limit: 250}, rentalSelect + order + ` LIMIT 250`},
		{"after a key", rentalTable, KeyChunk{After: k("7"), Limit: 250},
			rentalSelect + ` WHERE ("rental_id") > ('7'::integer)` + order + ` LIMIT 250`},
		{"a range from its start", rentalTable, KeyChunk{From: k("100"), Before: k("200"), Limit: 50},
			rentalSelect + ` WHERE ("rental_id") >= ('100'::integer) AND ("rental_id") < ('200'::integer)` + order + ` LIMIT 50`},
		{"a range after a key: After replaces From", rentalTable, KeyChunk{After: k("150"), From: k("100"), Before: k("200"), Limit: 50},
			rentalSelect + ` WHERE ("rental_id") > ('150'::integer) AND ("rental_id") < ('200'::integer)` + order + ` LIMIT 50`},
		{"an open-ended range with a condition", rentalTable, KeyChunk{From: k("100"), Where: "inventory_id % 2 = 0", Limit: 10},
			rentalSelect + ` WHERE ("rental_id") >= ('100'::integer) AND (inventory_id % 2 = 0)` + order + ` LIMIT 10`},
		{"keys: no limit", rentalTable, KeyChunk{Keys: [][]string{k("1"), k("it's")}, Limit: 10},
			rentalSelect + ` WHERE ("rental_id") IN (('1'::integer), ('it''s'::integer))` + order},
		{"composite key range", paymentTable, KeyChunk{From: k("2022-01-01 00:00:00+00", "5"), Before: k("2022-02-01 00:00:00+00", "1"), Limit: 5},
			`SELECT "payment_id", "amount", "payment_date" FROM "public"."payment" WHERE ("payment_date", "payment_id") >= ('2022-01-01 00:00:00+00'::timestamp with time zone, '5'::integer)` +
				` AND ("payment_date", "payment_id") < ('2022-02-01 00:00:00+00'::timestamp with time zone, '1'::integer) ORDER BY "payment_date", "payment_id" LIMIT 5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.chunk.Query(tt.table); got != tt.want {
				t.Errorf("Query:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
