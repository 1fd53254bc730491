package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The metrics read on scrape. Their names and meaning are stable (see the
// README's table); labels are bounded (tables of the mapping, a few kinds).
var (
	descRowsRead = prometheus.NewDesc("ferry_backfill_rows_read_total",
		"Source rows the backfill read, by table (a resumed run counts the rows of earlier runs' finished chunks too).", []string{"table"}, nil)
	descRowsEstimated = prometheus.NewDesc("ferry_backfill_rows_estimated",
		"The table's row count as the backfill planned it (the catalogue's estimate), by table.", []string{"table"}, nil)
	descTableDone = prometheus.NewDesc("ferry_backfill_table_done",
		"1 when the backfill has copied the table, 0 while it copies.", []string{"table"}, nil)
	descItems = prometheus.NewDesc("ferry_dynamodb_items_written_total",
		"Items written to DynamoDB (puts, updates and deletes that took effect or were already applied).", nil, nil)
	descRecords = prometheus.NewDesc("ferry_kinesis_records_written_total",
		"Records put on Kinesis.", nil, nil)
	descRetries = prometheus.NewDesc("ferry_retries_total",
		"Retries by kind: dynamodb_unprocessed (UnprocessedItems sent again), kinesis_failed_records (failed PutRecords entries sent again), "+
			"aws_throttle, aws_server_error, aws_transport (failed AWS request attempts, retried by the SDK), sync_batch, sync_checkpoint, sync_other (sync's own retries after the SDK gave up).",
		[]string{"kind"}, nil)
	descThrottles = prometheus.NewDesc("ferry_throttles_total",
		"AWS request attempts answered with throttling (ProvisionedThroughputExceeded, ThrottlingException, …), by service.", []string{"service"}, nil)
	descDead = prometheus.NewDesc("ferry_dead_letters_total",
		"Rows or changes written to the dead-letter file (--on-error=skip).", nil, nil)
	descChanges = prometheus.NewDesc("ferry_sync_changes_applied_total",
		"Changes sync applied since the process started.", nil, nil)
	descLagBytes = prometheus.NewDesc("ferry_sync_lag_bytes",
		"The server's WAL end minus the position sync acknowledged.", nil, nil)
	descLagSeconds = prometheus.NewDesc("ferry_sync_lag_seconds",
		"Age of the oldest change received but not yet applied (0 when caught up).", nil, nil)
	descRetained = prometheus.NewDesc("ferry_sync_retained_wal_bytes",
		"WAL the replication slot keeps on the source.", nil, nil)
	descBudget = prometheus.NewDesc("ferry_sync_wal_budget_bytes",
		"The retained-WAL budget (--wal-budget) above which sync warns.", nil, nil)
	descApplied = prometheus.NewDesc("ferry_sync_applied_lsn_bytes",
		"The WAL position (LSN as a byte offset) up to which sync has applied and acknowledged.", nil, nil)
	descLastCommit = prometheus.NewDesc("ferry_sync_last_commit_timestamp_seconds",
		"Commit time (Unix seconds) of the last source transaction sync applied.", nil, nil)
	descStatusAge = prometheus.NewDesc("ferry_sync_status_timestamp_seconds",
		"When sync last reported its status (Unix seconds).", nil, nil)
	descSchema = prometheus.NewDesc("ferry_sync_schema_changes_total",
		"Schema changes sync followed since the process started.", nil, nil)
	descSnapRows = prometheus.NewDesc("ferry_online_snapshot_rows_total",
		"Rows the current (or last) online snapshot has read.", nil, nil)
	descSnapChunks = prometheus.NewDesc("ferry_online_snapshot_chunks_total",
		"Chunks the current (or last) online snapshot has applied.", nil, nil)
	descSnapActive = prometheus.NewDesc("ferry_online_snapshot_active",
		"1 while an online snapshot is under way.", nil, nil)
)

// collector reads the Metrics' state on scrape.
type collector struct{ m *Metrics }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRowsRead, descRowsEstimated, descTableDone, descItems, descRecords, descRetries,
		descThrottles, descDead, descChanges, descLagBytes, descLagSeconds, descRetained, descBudget, descApplied,
		descLastCommit, descStatusAge, descSchema, descSnapRows, descSnapChunks, descSnapActive} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, name := range m.order {
		t := m.tables[name]
		counter(descRowsRead, float64(t.read), name)
		gauge(descRowsEstimated, float64(t.estimated), name)
		gauge(descTableDone, b2f(t.done), name)
	}
	retries := map[string]int64{}
	for k, v := range m.retries {
		retries[k] = v
	}
	if m.dynamo != nil || m.kinesis != nil {
		c := m.writerCounts()
		counter(descItems, float64(c.items))
		counter(descRecords, float64(c.records))
		retries["dynamodb_unprocessed"] += c.dynamoRetries
		retries["kinesis_failed_records"] += c.kinesisRetries
	}
	for k, v := range retries {
		counter(descRetries, float64(v), k)
	}
	for _, s := range []string{"dynamodb", "kinesis"} { // present from the start, for rate()
		counter(descThrottles, float64(m.throttl[s]), s)
	}
	for s, v := range m.throttl {
		if s != "dynamodb" && s != "kinesis" {
			counter(descThrottles, float64(v), s)
		}
	}
	if m.dead != nil {
		counter(descDead, float64(m.dead.Count()))
	}
	if m.budget > 0 {
		gauge(descBudget, float64(m.budget))
	}
	st := m.sync
	if st == nil {
		return
	}
	counter(descChanges, float64(st.Changes))
	gauge(descLagBytes, float64(max(0, st.LagBytes)))
	gauge(descLagSeconds, st.LagSeconds)
	gauge(descRetained, float64(st.RetainedWAL))
	gauge(descApplied, float64(st.Acked))
	if !st.LastCommit.IsZero() {
		gauge(descLastCommit, float64(st.LastCommit.UnixNano())/1e9)
	}
	gauge(descStatusAge, float64(m.syncAt.UnixNano())/1e9)
	counter(descSchema, float64(st.SchemaChanges))
	if sp := st.Snapshot; sp != nil {
		counter(descSnapRows, float64(sp.Rows))
		counter(descSnapChunks, float64(sp.Chunks))
		gauge(descSnapActive, b2f(!sp.Done))
	} else {
		gauge(descSnapActive, 0)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
