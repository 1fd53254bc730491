package verify

import (
	"context"
	"fmt"
)

// RefillingFunc returns the tables (qualified names) that a running sync is
// re-reading after a schema change, each with the online snapshot request
// that re-reads it.
type RefillingFunc func(ctx context.Context) (map[string]string, error)

// markRefilling reports the differences of tables still being re-read after
// a schema change as in flight: their items lag the new definition until
// the re-read reaches them, which verify cannot tell apart from a real
// difference row by row.
func (v *verifier) markRefilling(ctx context.Context) error {
	if v.cfg.Refilling == nil {
		return nil
	}
	refilling, err := v.cfg.Refilling(ctx)
	if err != nil {
		return fmt.Errorf("tables re-read after a schema change: %w", err)
	}
	for _, tc := range v.tables {
		if tc.tp == nil {
			continue
		}
		if id, ok := refilling[tc.tp.Source.QualifiedName()]; ok {
			tc.markInFlight("the table is being re-read after a schema change (online snapshot " + id + ")")
		}
	}
	return nil
}

// markInFlight turns the table's missing, extra and differing findings (and
// counts, also of findings not listed) into in-flight ones.
func (tc *tableCheck) markInFlight(reason string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.rep.InFlight += tc.rep.Missing + tc.rep.Extra + tc.rep.Differing
	tc.rep.Missing, tc.rep.Extra, tc.rep.Differing = 0, 0, 0
	for _, f := range tc.findings {
		switch f.Kind {
		case KindMissing, KindExtra, KindDiffers:
			f.Kind, f.Reason = KindInFlight, reason
		}
	}
}
