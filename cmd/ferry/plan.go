package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pricing"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

func cmdPlan(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("plan --source URL (--mapping FILE [--compile --out FILE] | --generate [--out FILE])",
		"Validates a mapping against the live source schema and prints the plan: each column's\n"+
			"DynamoDB type, the keys and GSIs, and the largest item. With --compile, also writes the\n"+
			"compiled plan (the mapping and the mapped tables' definitions) to --out, for appliers that\n"+
			"run without a connection to the source. With --generate, writes a 1:1 mapping (one\n"+
			"DynamoDB table per source table, keyed by its primary key) instead.", stdout)
	source := fs.String("source", "", "PostgreSQL URL of the source database (PG* variables fill the rest)")
	mapping := fs.String("mapping", "", "mapping file (YAML) to validate")
	generate := fs.Bool("generate", false, "write a 1:1 mapping for every table of the source instead of validating one")
	out := fs.String("out", "", "with --generate: file to write (default: standard output); with --compile: the compiled plan's file (required)")
	compile := fs.Bool("compile", false, "also write the compiled plan (JSON) to --out: the applier function's plan, no source connection needed")
	stream := fs.String("stream", "ferry-changes", "with --generate: Kinesis stream for the generated mapping (empty: none)")
	patternTarget := fs.String("pattern-target", "", "with --generate: also map tables created later in the generated schemas (a pattern entry per schema, `source: \"public.*\"`) into this DynamoDB table, keyed by table name and primary key")
	withAWS := fs.Bool("aws", false, "also price the migration on AWS from measurements of the source (rows, encoded item and record sizes of a sample, change and WAL rates over a window)")
	var af awsFlags
	fs.IntVar(&af.sample, "aws-sample", 1000, "with --aws: rows sampled per table for item and record sizes")
	fs.DurationVar(&af.window, "aws-window", 10*time.Second, "with --aws: window over which the change and WAL rates are measured")
	fs.Float64Var(&af.backfillHours, "backfill-hours", 2, "with --aws: backfill duration the Kinesis shards are sized for")
	fs.Float64Var(&af.warmWCU, "warm-wcu", 40000, "with --aws: writes/s of a warmed or provisioned target table")
	fs.DurationVar(&af.retention, "retention", defaultRetention, "with --aws: the streams' retention (as --retention of backfill and sync gives the streams ferry creates)")
	fs.Float64Var(&af.lambdaBatch, "lambda-batch", 100, "with --aws: records per invocation of the Lambda applier")
	fs.Float64Var(&af.lambdaMemory, "lambda-memory", 512, "with --aws: the Lambda applier's memory (MB)")
	fs.Float64Var(&af.lambdaMillis, "lambda-ms", 200, "with --aws: the duration of one invocation of the Lambda applier (ms)")
	fs.StringVar(&af.pricesFile, "prices", "", "with --aws: JSON file of prices overriding the built-in us-east-1 list prices (keys as in internal/pricing)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireFlag("source", *source); err != nil {
		return err
	}
	if *withAWS && (af.sample < 0 || af.window < 0 || af.backfillHours <= 0 || af.warmWCU < 0 || af.lambdaBatch < 0) {
		return usagef("--aws: --aws-sample and --aws-window must not be negative, --backfill-hours must be positive")
	}
	if *generate && *compile {
		return usagef("--generate and --compile exclude each other")
	}
	if *generate {
		return generateMapping(ctx, *source, *stream, *out, *patternTarget, stdout)
	}
	if *compile {
		if err := requireFlag("out", *out); err != nil {
			return err
		}
	}
	if err := requireFlag("mapping", *mapping); err != nil {
		return err
	}
	c, err := loadPlan(ctx, *source, *mapping)
	if err != nil {
		return err
	}
	sizes, err := largestRows(ctx, *source, c.plan)
	if err != nil {
		return err
	}
	printPlan(stdout, c, sizes)
	if *compile {
		if err := writeCompiled(*mapping, *out, c); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote the compiled plan to %s (%d tables)\n", *out, len(c.plan.Tables))
	}
	if *withAWS {
		prices := pricing.Default
		if af.pricesFile != "" {
			if prices, err = pricing.LoadPrices(af.pricesFile); err != nil {
				return usageError{err}
			}
		}
		var notes []string
		in, samples, err := measureAWS(ctx, *source, c.plan, af, &notes)
		if err != nil {
			return err
		}
		printAWS(stdout, in, samples, prices, pricing.Compute(in, prices), notes)
	}
	return nil
}

// generateMapping writes the 1:1 mapping of the source (transform.GenerateMapping)
// to out (standard output when empty), and says what the generator renamed,
// excluded or skipped: on standard error when the mapping goes to standard
// output, else after the "wrote" line.
func generateMapping(ctx context.Context, source, stream, out, patternTarget string, stdout io.Writer) error {
	if stream != "" {
		if err := mappings.CheckStreamName(stream); err != nil {
			return usagef("--stream: %v", err)
		}
	}
	tables, err := readCatalog(ctx, source)
	if err != nil {
		return err
	}
	g := transform.GenerateMapping(tables, stream)
	if g.Tables == 0 {
		return usagef("plan --generate: no table of the source can be mapped (%d skipped):\n  %s",
			g.Skipped, strings.Join(g.Notes, "\n  "))
	}
	if patternTarget != "" {
		g.YAML = append(g.YAML, patternEntries(tables, patternTarget)...)
		if _, err := mappings.Parse("generated", g.YAML); err != nil {
			return usagef("--pattern-target %q: %v", patternTarget, err)
		}
	}
	notes := io.Writer(os.Stderr)
	if out == "" {
		if _, err := stdout.Write(g.YAML); err != nil {
			return err
		}
	} else {
		if err := os.WriteFile(out, g.YAML, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
		skipped := ""
		if g.Skipped > 0 {
			skipped = fmt.Sprintf(", %d skipped", g.Skipped)
		}
		fmt.Fprintf(stdout, "wrote %s (%d tables%s)\n", out, g.Tables, skipped)
		notes = stdout
	}
	for _, n := range g.Notes {
		fmt.Fprintf(notes, "note: %s\n", n)
	}
	return nil
}

func largestRows(ctx context.Context, source string, p *transform.Plan) (map[string]int64, error) {
	conn, err := extract.Connect(ctx, source)
	if err != nil {
		return nil, usageError{err}
	}
	defer conn.Close(context.Background())
	out := map[string]int64{}
	for _, t := range p.Tables {
		n, err := extract.LargestRowBytes(ctx, conn, t.Source)
		if err != nil {
			return nil, err
		}
		out[t.Source.QualifiedName()] = n
	}
	return out, nil
}

func printPlan(w io.Writer, c *compiled, sizes map[string]int64) {
	fmt.Fprintf(w, "Mapping %s: %d tables → DynamoDB %s; Kinesis %s\n\n", c.mapping.File, len(c.plan.Tables),
		strings.Join(targetNames(c.plan), ", "), strings.Join(c.plan.Streams(), ", "))
	for _, tp := range c.plan.Tables {
		fmt.Fprintf(w, "%s → %s (~%d rows)\n", tp.Source.QualifiedName(), tp.Target, max(tp.Source.EstimatedRows, 0))
		key := "  key: " + tp.PK.Name + " = " + tp.Map.PartitionKey.Template.Raw
		if tp.SK != nil {
			key += ", " + tp.SK.Name + " = " + tp.Map.SortKey.Template.Raw
		}
		fmt.Fprintln(w, key)
		if escapesValues(tp) {
			fmt.Fprintln(w, "  (in templates of several columns, values escape \\ and the separator with \\: keys stay unique)")
		}
		for _, g := range tp.Map.GSIs {
			line := fmt.Sprintf("  gsi %s: %s = %s", g.Name, g.PartitionKey.Name, g.PartitionKey.Template.Raw)
			if g.SortKey != nil {
				line += fmt.Sprintf(", %s = %s", g.SortKey.Name, g.SortKey.Template.Raw)
			}
			if g.When != nil {
				cond := "IS NOT NULL"
				if g.When.IsNull {
					cond = "IS NULL"
				}
				line += fmt.Sprintf(" (only when %s %s)", g.When.Column, cond)
			}
			fmt.Fprintln(w, line)
		}
		if tp.Stream != "" {
			pk := tp.Source.Name + ":<primary key>"
			if tp.Map.Stream != nil && tp.Map.Stream.PartitionKey != nil {
				pk = tp.Map.Stream.PartitionKey.Raw
			}
			fmt.Fprintf(w, "  stream: %s (partition key %s)\n", tp.Stream, pk)
		}
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "    column\tpostgres\tdynamodb\tkinesis json\trefused (row dead-lettered or stops)")
		var generated []string
		for _, col := range tp.Columns {
			refused := col.Refused()
			if refused == "" {
				refused = "—"
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", col.Name, col.Type, col.DynamoType(), col.EventType(), refused)
			if expr := tp.Generated(col); expr != "" {
				generated = append(generated, fmt.Sprintf("%s = %s", col.Name, expr))
			}
		}
		for _, ex := range tp.Map.Exclude {
			fmt.Fprintf(tw, "    %s\t%s\t(excluded)\t\t\n", ex.Name, tp.Source.Columns[tp.Source.ColumnIndex(ex.Name)].Type)
		}
		tw.Flush()
		for _, g := range generated {
			fmt.Fprintf(w, "  generated column %s: pgoutput does not send it; sync computes it from each change's row with this expression\n", g)
		}
		for _, note := range replicationNotes(tp) {
			fmt.Fprintf(w, "  ! %s\n", note)
		}
		est := itemEstimate(tp, sizes[tp.Source.QualifiedName()])
		warn := ""
		if est > 400*1024 {
			warn = "  ← over DynamoDB's 400 KB item limit"
		}
		fmt.Fprintf(w, "  largest item ≈ %s%s\n\n", humanBytes(est), warn)
	}
	var unmapped []string
	for name, t := range c.tables {
		if c.plan.Table(name) == nil {
			note := ""
			if len(t.PK) == 0 && t.ReplicaIdentity != 'f' {
				note = " (no primary key: add one, or set REPLICA IDENTITY FULL, before mapping it)"
			}
			unmapped = append(unmapped, name+note)
		}
	}
	sort.Strings(unmapped)
	if len(unmapped) > 0 {
		fmt.Fprintf(w, "Not mapped: %s\n", strings.Join(unmapped, ", "))
	}
}

// itemEstimate adds attribute names, key and bookkeeping attributes to the
// largest row's size on disk — an estimate, DynamoDB's own sizing differs a bit.
func itemEstimate(tp *transform.TablePlan, rowBytes int64) int64 {
	n := rowBytes + 64 // _table, _version
	for _, c := range tp.Columns {
		n += int64(len(c.Name)) + 1
	}
	n += int64(len(tp.Map.PartitionKey.Template.Raw)) * 2
	if tp.Map.SortKey != nil {
		n += int64(len(tp.Map.SortKey.Template.Raw)) * 2
	}
	for _, g := range tp.Map.GSIs {
		n += int64(len(g.PartitionKey.Template.Raw)) * 2
	}
	return n
}

func targetNames(p *transform.Plan) []string {
	var out []string
	for n := range p.Targets() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// replicationNotes says what sync needs from a table's replica identity and
// what to do when the table does not provide it.
func replicationNotes(tp *transform.TablePlan) []string {
	var out []string
	ident := tp.Source.Ident()
	switch tp.Source.ReplicaIdentity {
	case 'n':
		out = append(out, fmt.Sprintf("REPLICA IDENTITY NOTHING: UPDATE and DELETE on this table fail once it is published; run ALTER TABLE %s REPLICA IDENTITY DEFAULT (or FULL)", ident))
	case 'd':
		if len(tp.Source.PK) == 0 {
			out = append(out, fmt.Sprintf("no primary key: deletes carry no key; add a primary key, or ALTER TABLE %s REPLICA IDENTITY FULL", ident))
		}
	}
	if cols := tp.KeyColumnsOutsidePK(); len(cols) > 0 && tp.Source.ReplicaIdentity != 'f' {
		out = append(out, fmt.Sprintf("the item key uses %s, outside the primary key: deletes and key changes can only find their item with ALTER TABLE %s REPLICA IDENTITY FULL (or key the item by the primary key); sync refuses to start until then",
			strings.Join(cols, ", "), ident))
	}
	return out
}

// escapesValues reports whether a key or GSI template of tp escapes values.
func escapesValues(tp *transform.TablePlan) bool {
	keys := []*transform.KeyAttr{&tp.PK, tp.SK}
	for i := range tp.GSIs {
		keys = append(keys, &tp.GSIs[i].PK, tp.GSIs[i].SK)
	}
	for _, k := range keys {
		if k != nil && k.EscapesValues() {
			return true
		}
	}
	return false
}

// patternEntries returns a pattern entry per schema of the tables, mapping
// the tables created there later into target (one shared table: the key is
// the table's name and its primary key).
func patternEntries(tables map[string]*extract.Table, target string) []byte {
	schemas := map[string]bool{}
	for _, t := range tables {
		schemas[t.Schema] = true
	}
	var b strings.Builder
	for _, s := range slices.Sorted(maps.Keys(schemas)) {
		fmt.Fprintf(&b, "  # Tables created later in schema %s: sync adds them to the migration online.\n", s)
		fmt.Fprintf(&b, "  - source: %q\n    target: %q\n", s+".*", target)
		b.WriteString("    partition_key: {name: pk, template: \"{_table}#{_pk}\"}\n")
		b.WriteString("    sort_key: {name: sk, template: \"{_table}\"}\n")
	}
	return []byte(b.String())
}

// writeCompiled writes the compiled plan (transform.CompiledPlan) of c, from
// the mapping file's text, to out.
func writeCompiled(mappingPath, out string, c *compiled) error {
	text, err := os.ReadFile(mappingPath)
	if err != nil {
		return usageError{err}
	}
	data, err := json.MarshalIndent(transform.NewCompiledPlan(mappingPath, text, c.plan, time.Now()), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the compiled plan: %w", err)
	}
	return nil
}
