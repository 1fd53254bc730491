// Command lambda is the middle of `make demo-lambda`: on the local stack, with
// the backfill done, it runs ferry's applier function (cmd/ferry-lambda)
// under the AWS Lambda Runtime Interface Emulator, fed by the event source
// mapping emulator (internal/lambdaesm) on the mapping's stream, starts
// `ferry sync --apply stream`, runs the DVD-store workload, waits until sync
// and then the function have caught up, and stops sync. The demo script
// verifies afterwards.
//
// The AWS endpoints and credentials come from the environment (.local/env).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ferry-migrate/ferry/internal/lambdaesm"
	"github.com/ferry-migrate/ferry/transform"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo-lambda:", err)
		os.Exit(1)
	}
}

func run() error {
	ferry := flag.String("ferry", "bin/ferry", "the ferry binary")
	source := flag.String("source", os.Getenv("FERRY_SOURCE"), "PostgreSQL URL of the source")
	mapping := flag.String("mapping", "mappings/pagila.yaml", "mapping file")
	control := flag.String("control-table", "ferry_control", "ferry's control table")
	dir := flag.String("dir", ".local/demo-lambda", "where the function's package and logs go")
	seconds := flag.Int("seconds", 20, "seconds of workload")
	rate := flag.Int("rate", 100, "workload transactions per second")
	pf := flag.Int("parallelization", 4, "the mapping's ParallelizationFactor")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	fnDir, _ := filepath.Abs(filepath.Join(*dir, "fn"))
	bootstrap := filepath.Join(fnDir, "bootstrap")
	plan := filepath.Join(fnDir, "plan.json")
	step("building the function (provided.al2023 bootstrap) and compiling the plan")
	if err := lambdaesm.BuildBootstrap(ctx, "github.com/ferry-migrate/ferry/cmd/ferry-lambda", bootstrap); err != nil {
		return err
	}
	if err := ferryRun(ctx, *ferry, "plan", "--source", *source, "--mapping", *mapping, "--compile", "--out", plan); err != nil {
		return err
	}
	compiled, err := transform.LoadCompiledPlan(plan)
	if err != nil {
		return err
	}
	streams := compiled.Streams()
	if len(streams) != 1 {
		return fmt.Errorf("the demo runs one mapping on one stream; %s has %d", *mapping, len(streams))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	step(fmt.Sprintf("the function under the Runtime Interface Emulator, a Kinesis event source mapping on %s (ParallelizationFactor %d, bisect, partial batch responses)", streams[0], *pf))
	env := []string{"FERRY_PLAN=" + plan, "FERRY_CONTROL_TABLE=" + *control}
	for _, k := range []string{"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		env = append(env, k+"="+os.Getenv(k))
	}
	rt, err := lambdaesm.StartRuntime(ctx, lambdaesm.RuntimeConfig{
		Bootstrap: bootstrap, Env: env, Concurrency: 4, Timeout: 60 * time.Second, FunctionName: "ferry-applier",
		Region: awsCfg.Region, LogDir: *dir, Logger: log,
	})
	if err != nil {
		return err
	}
	defer rt.Close()
	mc := lambdaesm.DefaultMappingConfig(streams[0])
	mc.StartingPosition = lambdaesm.Latest // the backfill's events are in DynamoDB already
	mc.ParallelizationFactor = *pf
	mc.BisectBatchOnFunctionError = true
	mc.FunctionResponseTypes = []string{"ReportBatchItemFailures"}
	mc.FunctionName = "ferry-applier"
	mc.OnFailure = &lambdaesm.FileDestination{Path: filepath.Join(*dir, "on-failure.jsonl")}
	mc.Logger = log
	m, err := lambdaesm.StartMapping(ctx, kinesis.NewFromConfig(awsCfg), rt, mc)
	if err != nil {
		return err
	}
	defer m.Close()

	step(fmt.Sprintf("ferry sync --apply stream while ferry workload runs %d transactions/s for %ds", *rate, *seconds))
	syncLog, err := os.Create(filepath.Join(*dir, "sync.log"))
	if err != nil {
		return err
	}
	defer syncLog.Close()
	sync := exec.Command(*ferry, "sync", "--source", *source, "--mapping", *mapping, "--control-table", *control, "--apply", "stream", "--status-every", "1s")
	sync.Stdout, sync.Stderr = syncLog, syncLog
	if err := sync.Start(); err != nil {
		return err
	}
	defer func() { _ = sync.Process.Kill() }()
	if err := ferryRun(ctx, *ferry, "workload", "--source", *source, "--rate", strconv.Itoa(*rate), "--duration", strconv.Itoa(*seconds)+"s"); err != nil {
		return err
	}
	if err := ferryRun(ctx, *ferry, "status", "--source", *source, "--mapping", *mapping, "--control-table", *control, "--counts=false", "--wait-caught-up", "2m"); err != nil {
		return err
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := m.WaitCaughtUp(wctx); err != nil {
		return fmt.Errorf("the function did not catch up: %w", err)
	}
	fmt.Printf("the function caught up %s after sync\n", time.Since(start).Round(100*time.Millisecond))
	for _, s := range m.Status() {
		fmt.Printf("  %+v\n", s)
	}
	if err := sync.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := sync.Wait(); err != nil {
		return fmt.Errorf("sync: %w (see %s)", err, syncLog.Name())
	}
	step("ferry status")
	return ferryRun(ctx, *ferry, "status", "--source", *source, "--mapping", *mapping, "--control-table", *control)
}

func step(s string) { fmt.Printf("\n\033[1m== %s\033[0m\n", s) }

func ferryRun(ctx context.Context, ferry string, args ...string) error {
	cmd := exec.CommandContext(ctx, ferry, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ferry %s: %w", args[0], err)
	}
	return nil
}
