package extract

import "testing"

func TestTxSnapshotVisible(t *testing.T) {
	snap, err := ParseTxSnapshot("100:110:103,107")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		xid  uint32
		want bool
	}{
		{50, true}, {99, true}, {100, true}, {103, false}, {105, true}, {107, false}, {109, true}, {110, false}, {200, false},
	} {
		if got := snap.Visible(tc.xid); got != tc.want {
			t.Errorf("Visible(%d) = %v, want %v", tc.xid, got, tc.want)
		}
	}
	// Across a wraparound of the 32-bit id: epoch 1.
	wrap, err := ParseTxSnapshot("4294967290:4294967306:4294967301")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		xid  uint32
		want bool
	}{
		{4294967280, true}, {4294967295, true}, {3, true}, {5, false}, {9, true}, {10, false}, {20, false},
	} {
		if got := wrap.Visible(tc.xid); got != tc.want {
			t.Errorf("wrapped Visible(%d) = %v, want %v", tc.xid, got, tc.want)
		}
	}
	for _, bad := range []string{"", "1:2", "x:2:", "5:2:", "1:2:a"} {
		if _, err := ParseTxSnapshot(bad); err == nil {
			t.Errorf("ParseTxSnapshot(%q) accepted", bad)
		}
	}
}
