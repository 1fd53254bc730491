package verify

import "testing"

func TestMarkInFlight(t *testing.T) {
	tc := &tableCheck{rep: &TableReport{Missing: 2, Extra: 1, Differing: 5, InFlight: 1, Unconvertible: 1}}
	kinds := []string{KindMissing, KindExtra, KindDiffers, KindInFlight, KindUnconvertible}
	for _, k := range kinds {
		tc.findings = append(tc.findings, &finding{Finding: Finding{Kind: k, Reason: "was " + k}})
	}
	tc.markInFlight("refilling")
	r := tc.rep
	if r.Missing != 0 || r.Extra != 0 || r.Differing != 0 || r.InFlight != 9 || r.Unconvertible != 1 {
		t.Errorf("counts after: %+v", *r)
	}
	for i, f := range tc.findings {
		want, reason := KindInFlight, "refilling"
		switch kinds[i] {
		case KindInFlight:
			reason = "was " + KindInFlight
		case KindUnconvertible:
			want, reason = KindUnconvertible, "was "+KindUnconvertible
		}
		if f.Kind != want || f.Reason != reason {
			t.Errorf("finding %d (%s): %s %q, want %s %q", i, kinds[i], f.Kind, f.Reason, want, reason)
		}
	}
}
