package extract

import "testing"

// TestResolveKind follows the catalogue rows PostgreSQL 15 has for these
// types (oid, typtype, typcategory, typelem, typbasetype).
func TestResolveKind(t *testing.T) {
	types := map[uint32]pgType{}
	add := func(oid uint32, schema, name string, typtype, category byte, elem, base uint32) {
		types[oid] = pgType{oid: oid, schema: schema, name: name, typtype: typtype, category: category, elem: elem, baseType: base}
	}
	add(23, "pg_catalog", "int4", 'b', 'N', 0, 0)
	add(1007, "pg_catalog", "_int4", 'b', 'A', 23, 0)
	add(21, "pg_catalog", "int2", 'b', 'N', 0, 0)
	add(22, "pg_catalog", "int2vector", 'b', 'A', 21, 0)
	add(1006, "pg_catalog", "_int2vector", 'b', 'A', 22, 0)
	add(26, "pg_catalog", "oid", 'b', 'N', 0, 0)
	add(30, "pg_catalog", "oidvector", 'b', 'A', 26, 0)
	add(790, "pg_catalog", "money", 'b', 'N', 0, 0)
	add(791, "pg_catalog", "_money", 'b', 'A', 790, 0)
	add(603, "pg_catalog", "box", 'b', 'G', 600, 0)
	add(1020, "pg_catalog", "_box", 'b', 'A', 603, 0)
	add(600, "pg_catalog", "point", 'b', 'G', 701, 0)
	add(19, "pg_catalog", "name", 'b', 'S', 18, 0)
	add(3904, "pg_catalog", "int4range", 'r', 'R', 0, 0)
	add(4451, "pg_catalog", "int4multirange", 'm', 'R', 0, 0)
	add(1700, "pg_catalog", "numeric", 'b', 'N', 0, 0)
	add(700, "pg_catalog", "float4", 'b', 'N', 0, 0)
	add(1082, "pg_catalog", "date", 'b', 'D', 0, 0)
	add(90001, "public", "price", 'd', 'N', 0, 790)     // domain over money
	add(90002, "public", "int_list", 'd', 'A', 0, 1007) // domain over int4[]
	add(90003, "public", "hstore", 'b', 'U', 0, 0)      // contrib
	add(90004, "public", "citext", 'b', 'S', 0, 0)      // contrib
	add(90005, "public", "mood", 'e', 'E', 0, 0)        // enum
	add(90006, "public", "_mood", 'b', 'A', 90005, 0)   // enum[]
	add(90007, "public", "pair", 'c', 'C', 0, 0)        // composite
	tests := []struct {
		oid   uint32
		kind  Kind
		array bool
	}{
		{23, KindInt, false},
		{1007, KindInt, true},
		{22, KindOther, false}, // "1 2": not array syntax
		{1006, KindOther, true},
		{30, KindOther, false},
		{26, KindInt, false},
		{790, KindMoney, false},
		{791, KindMoney, true},
		{603, KindBox, false},
		{1020, KindBox, true},
		{600, KindOther, false},
		{19, KindText, false},
		{3904, KindOther, false},
		{4451, KindOther, false},
		{1700, KindNumeric, false},
		{700, KindFloat, false},
		{1082, KindDate, false},
		{90001, KindMoney, false},
		{90002, KindInt, true},
		{90003, KindOther, false},
		{90004, KindOther, false},
		{90005, KindEnum, false},
		{90006, KindEnum, true},
		{90007, KindOther, false},
		{99999, KindOther, false}, // unknown oid
	}
	for _, tt := range tests {
		kind, array := resolveKind(types, tt.oid)
		if kind != tt.kind || array != tt.array {
			t.Errorf("resolveKind(%d %s) = %s, %v; want %s, %v", tt.oid, types[tt.oid].name, kind, array, tt.kind, tt.array)
		}
	}
	if ArrayDelimiter(KindBox) != ';' || ArrayDelimiter(KindOther) != ',' {
		t.Errorf("ArrayDelimiter: box %q, other %q", ArrayDelimiter(KindBox), ArrayDelimiter(KindOther))
	}
}

// TestSessionParamsPinTextForms: every setting an output function reads.
func TestSessionParamsPinTextForms(t *testing.T) {
	want := map[string]string{"TimeZone": "UTC", "DateStyle": "ISO, YMD", "IntervalStyle": "postgres",
		"extra_float_digits": "3", "bytea_output": "hex", "lc_monetary": "C"}
	cfg, err := ConnConfig("postgres://u@127.0.0.1:5432/db")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if got := cfg.RuntimeParams[k]; got != v {
			t.Errorf("RuntimeParams[%s] = %q, want %q", k, got, v)
		}
	}
}
