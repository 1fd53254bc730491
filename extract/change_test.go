package extract

import "testing"

func TestOpAndSnapshot(t *testing.T) {
	tests := []struct {
		op   Op
		str  string
		snap bool
	}{
		{OpRead, "r", true},
		{OpCreate, "c", false},
		{OpUpdate, "u", false},
		{OpDelete, "d", false},
		{OpTruncate, "t", false},
	}
	for _, tt := range tests {
		if got := tt.op.String(); got != tt.str {
			t.Errorf("Op(%q).String() = %q", byte(tt.op), got)
		}
		ch := &Change{Op: tt.op}
		if got := ch.Snapshot(); got != tt.snap {
			t.Errorf("Change{Op: %s}.Snapshot() = %v, want %v", tt.op, got, tt.snap)
		}
	}
}
