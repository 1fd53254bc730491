package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/internal/lambdaesm"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
)

// ApplyResult is the apply pair: a backlog of changes applied by `ferry sync`
// itself (--apply direct) and by the Lambda applier under the Runtime
// Interface Emulator (--apply stream), on the same data.
type ApplyResult struct {
	Changes        int64
	Direct, Stream Figure // changes/s
	Ratio          Figure // stream ÷ direct, per run
	Shards, PF     int
}

// applyBacklog is the statement that makes the backlog: one change per
// rental (16,044 on Pagila ×1), in one transaction.
const applyBacklog = "UPDATE rental SET last_update = last_update + interval '1 millisecond'"

// PairApply measures, runs times each, how fast a backlog of changes made
// while sync was stopped is applied: by sync's own conditional writes, and
// through the stream by the applier function (4 shards, ParallelizationFactor
// 4, 4 concurrent environments), from sync's start until the function has
// caught up.
func (e *Env) PairApply(ctx context.Context, runs int) (*ApplyResult, error) {
	res := &ApplyResult{Shards: 4, PF: 4}
	bootstrap := filepath.Join(e.Work, "ferry-lambda", "bootstrap")
	if err := lambdaesm.BuildBootstrap(ctx, "github.com/ferry-migrate/ferry/cmd/ferry-lambda", bootstrap); err != nil {
		return nil, err
	}
	var direct, stream, ratio []float64
	for run := range runs {
		var rates [2]float64
		for i, mode := range []string{"direct", "stream"} {
			n, took, err := e.applyOnce(ctx, mode, run, bootstrap)
			if err != nil {
				return nil, fmt.Errorf("apply %s: %w", mode, err)
			}
			res.Changes = n
			rates[i] = float64(n) / took.Seconds()
			e.Log.Info("bench: apply", "mode", mode, "changes", n, "took", took.Round(time.Millisecond), "changes_s", int(rates[i]))
		}
		direct, stream = append(direct, rates[0]), append(stream, rates[1])
		ratio = append(ratio, rates[1]/rates[0])
	}
	res.Direct, res.Stream, res.Ratio = Summarize(direct), Summarize(stream), Summarize(ratio)
	return res, nil
}

func (e *Env) applyOnce(ctx context.Context, mode string, run int, bootstrap string) (int64, time.Duration, error) {
	name := fmt.Sprintf("bench_apply_%s_%d", mode, run)
	url, err := e.Clone(ctx, stack.TemplateDB, name)
	if err != nil {
		return 0, 0, err
	}
	defer e.Drop(context.WithoutCancel(ctx), name)
	target, stream, ctl, slot := name, "bench-apply-"+mode, name+"_control", name
	mapping, err := e.Mapping(target, stream)
	if err != nil {
		return 0, 0, err
	}
	defer e.DeleteTargets(context.WithoutCancel(ctx), []string{target, ctl}, []string{stream})
	common := []string{"--source", url, "--mapping", mapping, "--slot", slot, "--publication", slot, "--control-table", ctl}
	if _, err := e.RunFerry(ctx, "", append([]string{"backfill", "--shards", "4", "--progress", "none"}, common...)...); err != nil {
		return 0, 0, err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, 0, err
	}
	tag, err := conn.Exec(ctx, applyBacklog)
	conn.Close(context.Background())
	if err != nil {
		return 0, 0, err
	}
	var m *lambdaesm.Mapping
	if mode == "stream" {
		plan := filepath.Join(filepath.Dir(bootstrap), "plan.json")
		if _, err := e.RunFerry(ctx, "", "plan", "--source", url, "--mapping", mapping, "--compile", "--out", plan); err != nil {
			return 0, 0, err
		}
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		rt, err := lambdaesm.StartRuntime(ctx, lambdaesm.RuntimeConfig{
			Bootstrap: bootstrap, Concurrency: 4, Timeout: 60 * time.Second, Logger: quiet, Region: e.Stack.Region,
			Env: append([]string{"FERRY_PLAN=" + plan, "FERRY_CONTROL_TABLE=" + ctl}, e.Stack.Env()...),
		})
		if err != nil {
			return 0, 0, err
		}
		defer rt.Close()
		mc := lambdaesm.DefaultMappingConfig(stream)
		mc.StartingPosition = lambdaesm.Latest // after the backfill's events
		mc.ParallelizationFactor, mc.BisectBatchOnFunctionError = 4, true
		mc.FunctionResponseTypes = []string{"ReportBatchItemFailures"}
		mc.Logger = quiet
		if m, err = lambdaesm.StartMapping(ctx, e.KinesisClient(), rt, mc); err != nil {
			return 0, 0, err
		}
		defer m.Close()
		common = append(common, "--apply", "stream")
	}
	start := time.Now()
	p, err := e.StartFerry(ctx, "", append([]string{"sync", "--progress", "none"}, common...)...)
	if err != nil {
		return 0, 0, err
	}
	defer func() { p.Stop(); _, _ = p.Wait() }()
	if err := testkit.WaitCaughtUp(ctx, url, slot, 10*time.Minute); err != nil {
		return 0, 0, err
	}
	if m != nil {
		if err := m.WaitCaughtUp(ctx); err != nil {
			return 0, 0, err
		}
	}
	return tag.RowsAffected(), time.Since(start), nil
}
