package workload

import "time"

// Stats counts what a run did. Txns and ByKind count committed transactions;
// a transaction that failed (and was rolled back) counts in Errors instead. A
// transaction cut short by the end of the run counts nowhere.
type Stats struct {
	Txns, Rows, Errors int64
	// ByKind counts committed transactions per kind (the Kind* constants).
	ByKind map[string]int64
	// RowsByKind counts rows inserted, updated or deleted per kind.
	RowsByKind map[string]int64
	// ErrorsByKind counts failed transactions per kind.
	ErrorsByKind map[string]int64
	// Elapsed is the time the workers ran (setup excluded).
	Elapsed time.Duration
}

func newStats() Stats {
	return Stats{ByKind: map[string]int64{}, RowsByKind: map[string]int64{}, ErrorsByKind: map[string]int64{}}
}

// TxnsPerSecond is the committed transaction rate the run reached.
func (s Stats) TxnsPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Txns) / s.Elapsed.Seconds()
}

func (s *Stats) commit(kind string, rows int64) {
	s.Txns++
	s.Rows += rows
	s.ByKind[kind]++
	s.RowsByKind[kind] += rows
}

func (s *Stats) fail(kind string) {
	s.Errors++
	s.ErrorsByKind[kind]++
}

func (s *Stats) add(o Stats) {
	s.Txns += o.Txns
	s.Rows += o.Rows
	s.Errors += o.Errors
	for k, v := range o.ByKind {
		s.ByKind[k] += v
	}
	for k, v := range o.RowsByKind {
		s.RowsByKind[k] += v
	}
	for k, v := range o.ErrorsByKind {
		s.ErrorsByKind[k] += v
	}
}
