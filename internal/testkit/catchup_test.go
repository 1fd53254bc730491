package testkit

import (
	"encoding/json"
	"testing"
)

func TestFoldStreamClassifiesReplaysAndInversions(t *testing.T) {
	ev := func(key, op, lsn, val string) Event {
		e := Event{PartitionKey: key, Op: op}
		e.Source.Table, e.Source.LSN = "t", lsn
		if val != "" {
			e.After = map[string]json.RawMessage{"v": json.RawMessage(val)}
		}
		return e
	}
	tests := []struct {
		name             string
		events           []Event
		dups, inversions int
		want             map[string]string // key → v
	}{
		{"in order", []Event{ev("k", "c", "0/10", "1"), ev("k", "u", "0/20", "2")}, 0, 0, map[string]string{"k": "2"}},
		{"a replay of several events is duplicates, not inversions",
			[]Event{ev("k", "c", "0/10", "1"), ev("k", "u", "0/20", "2"), ev("k", "c", "0/10", "1"), ev("k", "u", "0/20", "2"), ev("k", "u", "0/30", "3")},
			2, 0, map[string]string{"k": "3"}},
		{"an older event never seen is an inversion", []Event{ev("k", "c", "0/20", "2"), ev("k", "u", "0/10", "1")}, 0, 1, map[string]string{"k": "2"}},
		{"a replayed delete keeps the row deleted", []Event{ev("k", "c", "0/10", "1"), ev("k", "d", "0/20", ""), ev("k", "c", "0/10", "1")}, 1, 0, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, dups, inv := FoldStream(tt.events)
			if dups != tt.dups || inv != tt.inversions {
				t.Errorf("duplicates %d, inversions %d; want %d, %d", dups, inv, tt.dups, tt.inversions)
			}
			if len(state) != len(tt.want) {
				t.Errorf("state %v, want %v", state, tt.want)
			}
			for k, v := range tt.want {
				if got := string(state[k]["v"]); got != v {
					t.Errorf("%s: v = %s, want %s", k, got, v)
				}
			}
		})
	}
}
