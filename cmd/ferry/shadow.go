package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/verify"
)

func cmdShadow(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("shadow --source URL --mapping FILE [--patterns p1,p2] [--samples N] [--format text|json|markdown|html]",
		"Runs the mapping's access patterns (access_patterns:) on both sides: the SQL the application\n"+
			"runs today on the source and the DynamoDB call that replaces it, for parameter values sampled\n"+
			"from the source without replacement, and compares the answers: the same items in the same\n"+
			"order, each attribute under verify's type rules. Reports per pattern the samples, agreeing,\n"+
			"differing (the first differences with their parameters) and DynamoDB's cost: read units, items\n"+
			"read against items returned. While sync runs, a differing sample is read again after sync's\n"+
			"checkpoint passes the source's position (in flight if it then agrees).\n\n"+
			"Exit codes: 0 every pattern agrees, 1 differences, 2 could not check.", stdout)
	source := fs.String("source", "", "PostgreSQL URL of the source database (PG* variables fill the rest)")
	mapping := fs.String("mapping", "", "mapping file (YAML) with access_patterns")
	patterns := fs.String("patterns", "", "comma-separated patterns to run (default: all)")
	samples := fs.Int("samples", 20, "parameter values per pattern, drawn without replacement (at or above the distinct values: every one)")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "seed of the sampling (the report's samples are repeatable with it)")
	format := fs.String("format", "text", "report format: text, json, markdown or html")
	out := fs.String("out", "", "write the report to this file (default: standard output)")
	slot := fs.String("slot", "ferry", "sync's replication slot (while sync runs, differing samples are re-read after its checkpoint)")
	control := fs.String("control-table", "ferry_control", "DynamoDB table holding ferry's run state and checkpoints")
	wait := fs.Duration("wait", 30*time.Second, "bound of each wait for sync's checkpoint")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, f := range [][2]string{{"source", *source}, {"mapping", *mapping}} {
		if err := requireFlag(f[0], f[1]); err != nil {
			return err
		}
	}
	if *samples < 1 {
		return usagef("--samples must be at least 1")
	}
	c, err := loadPlan(ctx, *source, *mapping)
	if err != nil {
		return err
	}
	if len(c.plan.Mapping.AccessPatterns) == 0 {
		return usagef("mapping %s declares no access_patterns", *mapping)
	}
	ddb, _, err := awsClients(ctx)
	if err != nil {
		return err
	}
	ctl := load.NewControlStore(ddb, *control)
	cfg := verify.ShadowConfig{SourceURL: *source, Plan: c.plan, Dynamo: ddb, Samples: *samples, Seed: *seed, Wait: *wait, Logger: slog.Default()}
	if *patterns != "" {
		cfg.Patterns = strings.Split(*patterns, ",")
	}
	if running, err := slotActive(ctx, *source, *slot); err != nil {
		return err
	} else if running {
		cfg.Checkpoint = syncCheckpoint(ctl, *slot)
	}
	rep, err := verify.Shadow(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("shadow interrupted")
		}
		return usageError{fmt.Errorf("shadow could not check: %w", err)}
	}
	rep.Source, rep.Mapping = describeSource(*source), *mapping
	var buf bytes.Buffer
	if err := verify.WriteShadow(&buf, rep, *format); err != nil {
		return usageError{err}
	}
	if err := emitReport(stdout, "shadow", *out, rep.Verdict, buf.Bytes()); err != nil {
		return err
	}
	for _, p := range rep.Patterns {
		if p.Error != "" {
			return usageError{fmt.Errorf("shadow: pattern %s could not be checked: %s", p.Name, p.Error)}
		}
	}
	if rep.Verdict != verify.VerdictConsistent {
		return errDifferences
	}
	return nil
}

// slotActive reports whether a process streams from the slot (sync runs).
func slotActive(ctx context.Context, source, slot string) (bool, error) {
	conn, err := extract.Connect(ctx, source)
	if err != nil {
		return false, usageError{err}
	}
	defer conn.Close(context.Background())
	info, exists, err := extract.LookupSlot(ctx, conn, slot)
	if err != nil {
		return false, err
	}
	return exists && info.Active, nil
}
