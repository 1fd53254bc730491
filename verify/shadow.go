package verify

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// Shadow reads: the mapping's access patterns run on both sides — the SQL
// the application runs today on the source, the DynamoDB call that replaces
// it on the target — for parameter values sampled from the source, and the
// answers are compared: the same items (each row through the mapping, as
// the items ferry writes) in the same order, each attribute under the type
// rules of verify. A sample that differs while sync runs is read again after
// sync's checkpoint has passed the source's position (in flight, not a
// difference, if it then agrees).

// ShadowConfig configures a shadow run.
type ShadowConfig struct {
	SourceURL string
	Plan      *transform.Plan
	Dynamo    *dynamodb.Client
	// Patterns limits the run to these patterns (default: all).
	Patterns []string
	// Samples is how many parameter values each pattern is run for, drawn
	// without replacement (at or above the distinct values: every one).
	Samples int
	Seed    uint64
	// Checkpoint, when set, reads sync's checkpoint: a differing sample is
	// read again once it passes the source position read before it.
	Checkpoint CheckpointFunc
	Rechecks   int
	Wait       time.Duration
	Logger     *slog.Logger
	// MaxDiffs is how many differing samples are listed per pattern (default 5).
	MaxDiffs int
}

// ShadowReport is the result of a shadow run.
type ShadowReport struct {
	GeneratedAt time.Time       `json:"generated_at"`
	Source      string          `json:"source,omitempty"`
	Mapping     string          `json:"mapping,omitempty"`
	Patterns    []PatternReport `json:"patterns"`
	Verdict     string          `json:"verdict"` // consistent or differences
}

// PatternReport is one pattern's result.
type PatternReport struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Call        string `json:"call"`
	Samples     int    `json:"samples"`
	Agreeing    int    `json:"agreeing"`
	Differing   int    `json:"differing"`
	InFlight    int    `json:"in_flight"`
	// Capacity: read units DynamoDB reported, items it read and returned.
	ConsumedRCU   float64      `json:"consumed_rcu"`
	ItemsRead     int64        `json:"items_read"`
	ItemsReturned int64        `json:"items_returned"`
	Note          string       `json:"note,omitempty"` // a design smell (a filter that drops most of what it reads)
	Differences   []ShadowDiff `json:"differences,omitempty"`
	Error         string       `json:"error,omitempty"`
}

// ShadowDiff is one differing sample.
type ShadowDiff struct {
	Params map[string]string `json:"params"`
	Detail string            `json:"detail"`
}

// Shadow runs the access patterns.
func Shadow(ctx context.Context, cfg ShadowConfig) (*ShadowReport, error) {
	if cfg.Samples <= 0 {
		cfg.Samples = 20
	}
	if cfg.Rechecks <= 0 {
		cfg.Rechecks = 3
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	if cfg.MaxDiffs <= 0 {
		cfg.MaxDiffs = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	aps := cfg.Plan.Mapping.AccessPatterns
	for _, want := range cfg.Patterns {
		if !slices.ContainsFunc(aps, func(ap *mappings.AccessPattern) bool { return ap.Name == want }) {
			return nil, fmt.Errorf("no access pattern %q in the mapping", want)
		}
	}
	conn, err := extract.Connect(ctx, cfg.SourceURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rep := &ShadowReport{GeneratedAt: time.Now().UTC(), Verdict: VerdictConsistent}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	for _, ap := range aps {
		if len(cfg.Patterns) > 0 && !slices.Contains(cfg.Patterns, ap.Name) {
			continue
		}
		pr := runPattern(ctx, conn, &cfg, ap, rng)
		if pr.Differing > 0 || pr.Error != "" {
			rep.Verdict = VerdictDifferences
		}
		rep.Patterns = append(rep.Patterns, pr)
	}
	return rep, nil
}

// shadowPattern is a pattern resolved against the plan.
type shadowPattern struct {
	ap       *mappings.AccessPattern
	tables   []*transform.TablePlan
	target   string
	keyAttrs []string // the table's item key (pk, sk)
}

func runPattern(ctx context.Context, conn *pgx.Conn, cfg *ShadowConfig, ap *mappings.AccessPattern, rng *rand.Rand) PatternReport {
	pr := PatternReport{Name: ap.Name, Description: ap.Description, Call: describeCall(ap)}
	sp := &shadowPattern{ap: ap}
	for _, s := range ap.SQL {
		tp := cfg.Plan.Table(s.Table)
		if tp == nil {
			pr.Note = fmt.Sprintf("skipped: it reads table %s, which the mapping does not map", s.Table)
			return pr
		}
		sp.tables = append(sp.tables, tp)
	}
	sp.target = sp.tables[0].Target
	sp.keyAttrs = []string{sp.tables[0].PK.Name}
	if sp.tables[0].SK != nil {
		sp.keyAttrs = append(sp.keyAttrs, sp.tables[0].SK.Name)
	}
	values := [][]string{nil}
	if ap.Sample != "" {
		var err error
		if values, err = extract.SampleValues(ctx, conn, ap.Sample, cfg.Samples, rng); err != nil {
			pr.Error = err.Error()
			return pr
		}
	}
	for _, vals := range values {
		params := map[string]string{}
		for i, name := range ap.Params {
			if i < len(vals) {
				params[name] = vals[i]
			}
		}
		detail, err := sp.check(ctx, conn, cfg, params, &pr)
		for attempt := 0; err == nil && detail != "" && cfg.Checkpoint != nil && attempt < cfg.Rechecks; attempt++ {
			// Sync may not have applied what the source already shows: wait
			// for its checkpoint to pass the source's position, read again.
			if werr := waitSyncPast(ctx, conn, cfg); werr != nil {
				break
			}
			var again string
			again, err = sp.check(ctx, conn, cfg, params, &pr)
			if again == "" && err == nil {
				pr.InFlight++
				detail = ""
				break
			}
			detail = again
		}
		pr.Samples++
		switch {
		case err != nil:
			pr.Error = err.Error()
			return pr
		case detail == "":
			pr.Agreeing++
		default:
			pr.Differing++
			if len(pr.Differences) < cfg.MaxDiffs {
				pr.Differences = append(pr.Differences, ShadowDiff{Params: params, Detail: detail})
			}
		}
	}
	if pr.ItemsRead > 0 && pr.ItemsReturned*2 < pr.ItemsRead {
		pr.Note = fmt.Sprintf("reads %d items to return %d: most of what it reads is dropped; a key condition or a sparse index would serve it", pr.ItemsRead, pr.ItemsReturned)
	}
	return pr
}

// waitSyncPast waits until sync's checkpoint passes the source's current WAL
// position.
func waitSyncPast(ctx context.Context, conn *pgx.Conn, cfg *ShadowConfig) error {
	var s string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		return err
	}
	want, err := extract.ParseLSN(s)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(cfg.Wait)
	for time.Now().Before(deadline) {
		lsn, ok, err := cfg.Checkpoint(ctx)
		if err != nil {
			return err
		}
		if ok && lsn >= want {
			return nil
		}
		select { // poll interval of a bounded wait
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("sync's checkpoint did not pass %s within %s", want, cfg.Wait)
}

// check runs one sample on both sides; detail is "" when they agree.
func (sp *shadowPattern) check(ctx context.Context, conn *pgx.Conn, cfg *ShadowConfig, params map[string]string, pr *PatternReport) (detail string, err error) {
	want, err := sp.expected(ctx, conn, params)
	if err != nil {
		return "", err
	}
	got, err := sp.actual(ctx, cfg.Dynamo, params, pr)
	if err != nil {
		return "", err
	}
	return sp.compare(want, got), nil
}

// expected is the SQL's rows as items, in the SQL's order (one statement)
// or in the call's sort order (several statements of different tables,
// which one DynamoDB call returns in sort key order), cut at the limit.
func (sp *shadowPattern) expected(ctx context.Context, conn *pgx.Conn, params map[string]string) ([]transform.Item, error) {
	var items []transform.Item
	for i, s := range sp.ap.SQL {
		tp := sp.tables[i]
		q := fillSQL(s.Query, params)
		rows, err := extract.QueryRows(ctx, conn, tp.Source, q)
		if err != nil {
			return nil, fmt.Errorf("access pattern %s: %w", sp.ap.Name, err)
		}
		for _, row := range rows {
			item, _, err := tp.Item(row, extract.Position{})
			if err != nil {
				return nil, fmt.Errorf("access pattern %s: a row of %s has no item: %w", sp.ap.Name, tp.Source.QualifiedName(), err)
			}
			items = append(items, item)
		}
	}
	if len(sp.ap.SQL) > 1 {
		attr := sp.sortAttr()
		slices.SortStableFunc(items, func(a, b transform.Item) int {
			c := cmp.Compare(attrString(a[attr]), attrString(b[attr]))
			if sp.ap.Call.Desc {
				return -c
			}
			return c
		})
	}
	if l := sp.ap.Call.Limit; l > 0 && len(items) > l {
		items = items[:l]
	}
	return items, nil
}

// sortAttr is the sort key attribute of the index (or table) the call reads.
func (sp *shadowPattern) sortAttr() string {
	c := &sp.ap.Call
	if c.SortAttr != "" {
		return c.SortAttr
	}
	tp := sp.tables[0]
	if c.Index == "" {
		if tp.SK != nil {
			return tp.SK.Name
		}
		return ""
	}
	for _, t := range sp.tables {
		for _, g := range t.GSIs {
			if g.Name == c.Index && g.SK != nil {
				return g.SK.Name
			}
		}
	}
	return ""
}

func attrString(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return Render(v)
}

// fillSQL puts the params into the SQL as quoted literals.
func fillSQL(q string, params map[string]string) string {
	for name, v := range params {
		q = strings.ReplaceAll(q, "{"+name+"}", extract.QuoteLiteral(v))
	}
	return q
}

// actual runs the DynamoDB call.
func (sp *shadowPattern) actual(ctx context.Context, ddb *dynamodb.Client, params map[string]string, pr *PatternReport) ([]transform.Item, error) {
	c := &sp.ap.Call
	key := c.Key.Render(params)
	if c.IsGet() && len(sp.keyAttrs) == len(c.Sort)+1 {
		k := transform.Item{c.KeyAttr: &types.AttributeValueMemberS{Value: key}}
		if len(c.Sort) == 1 {
			k[c.SortAttr] = &types.AttributeValueMemberS{Value: c.Sort[0].Render(params)}
		}
		out, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(sp.target), Key: k, ConsistentRead: aws.Bool(true),
			ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
		if err != nil {
			return nil, fmt.Errorf("access pattern %s: GetItem: %w", sp.ap.Name, err)
		}
		if out.ConsumedCapacity != nil && out.ConsumedCapacity.CapacityUnits != nil {
			pr.ConsumedRCU += *out.ConsumedCapacity.CapacityUnits
		}
		if out.Item == nil {
			return nil, nil
		}
		pr.ItemsRead++
		pr.ItemsReturned++
		return []transform.Item{out.Item}, nil
	}
	names := map[string]string{"#k": c.KeyAttr}
	vals := map[string]types.AttributeValue{":k": &types.AttributeValueMemberS{Value: key}}
	cond := "#k = :k"
	if c.SortOp != "" {
		names["#s"] = c.SortAttr
		for i, t := range c.Sort {
			vals[fmt.Sprintf(":s%d", i)] = &types.AttributeValueMemberS{Value: t.Render(params)}
		}
		switch c.SortOp {
		case "eq":
			cond += " AND #s = :s0"
		case "begins_with":
			cond += " AND begins_with(#s, :s0)"
		case "between":
			cond += " AND #s BETWEEN :s0 AND :s1"
		case "lt":
			cond += " AND #s < :s0"
		case "le":
			cond += " AND #s <= :s0"
		case "gt":
			cond += " AND #s > :s0"
		case "ge":
			cond += " AND #s >= :s0"
		}
	}
	in := &dynamodb.QueryInput{TableName: aws.String(sp.target), KeyConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: vals, ScanIndexForward: aws.Bool(!c.Desc),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal}
	if c.Index != "" {
		in.IndexName = aws.String(c.Index) // GSIs read eventually consistent
	} else {
		in.ConsistentRead = aws.Bool(true)
	}
	if c.Limit > 0 {
		in.Limit = aws.Int32(int32(c.Limit))
	}
	var items []transform.Item
	p := dynamodb.NewQueryPaginator(ddb, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("access pattern %s: Query: %w", sp.ap.Name, err)
		}
		if page.ConsumedCapacity != nil && page.ConsumedCapacity.CapacityUnits != nil {
			pr.ConsumedRCU += *page.ConsumedCapacity.CapacityUnits
		}
		pr.ItemsRead += int64(page.ScannedCount)
		pr.ItemsReturned += int64(page.Count)
		items = append(items, page.Items...)
		if c.Limit > 0 && len(items) >= c.Limit {
			items = items[:c.Limit]
			break
		}
	}
	return items, nil
}

// compare returns "" when the answers agree, else the first difference.
func (sp *shadowPattern) compare(want, got []transform.Item) string {
	keyOf := func(it transform.Item) string {
		parts := make([]string, len(sp.keyAttrs))
		for i, k := range sp.keyAttrs {
			parts[i] = attrString(it[k])
		}
		return strings.Join(parts, "/")
	}
	for i := 0; i < min(len(want), len(got)); i++ {
		wk, gk := keyOf(want[i]), keyOf(got[i])
		if wk != gk {
			return fmt.Sprintf("answer %d: the source gives item %s, DynamoDB %s (%d and %d items)", i+1, wk, gk, len(want), len(got))
		}
		if diffs := CompareItems(want[i], got[i], transform.AttrVersion); len(diffs) > 0 {
			var cols []string
			for _, d := range diffs {
				cols = append(cols, fmt.Sprintf("%s: source %s, DynamoDB %s", d.Column, d.Source, d.Target))
			}
			return fmt.Sprintf("item %s differs: %s", wk, strings.Join(cols, "; "))
		}
	}
	switch {
	case len(want) > len(got):
		return fmt.Sprintf("DynamoDB lacks item %s (the source gives %d items, DynamoDB %d)", keyOf(want[len(got)]), len(want), len(got))
	case len(got) > len(want):
		return fmt.Sprintf("DynamoDB returns item %s that the source does not (the source gives %d items, DynamoDB %d)", keyOf(got[len(want)]), len(want), len(got))
	}
	return ""
}

// describeCall is the DynamoDB call in words.
func describeCall(ap *mappings.AccessPattern) string {
	c := &ap.Call
	if c.IsGet() {
		s := "GetItem " + c.KeyAttr + "=" + c.Key.Raw
		if len(c.Sort) == 1 {
			s += ", " + c.SortAttr + "=" + c.Sort[0].Raw
		}
		return s
	}
	s := "Query "
	if c.Index != "" {
		s += c.Index + " "
	}
	s += c.KeyAttr + "=" + c.Key.Raw
	switch c.SortOp {
	case "":
	case "between":
		s += fmt.Sprintf(" AND %s BETWEEN %s AND %s", c.SortAttr, c.Sort[0].Raw, c.Sort[1].Raw)
	case "begins_with":
		s += fmt.Sprintf(" AND begins_with(%s, %s)", c.SortAttr, c.Sort[0].Raw)
	default:
		ops := map[string]string{"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
		s += fmt.Sprintf(" AND %s %s %s", c.SortAttr, ops[c.SortOp], c.Sort[0].Raw)
	}
	if c.Desc {
		s += ", newest first"
	}
	if c.Limit > 0 {
		s += fmt.Sprintf(", limit %d", c.Limit)
	}
	return s
}
