package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/lambdaesm"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/internal/workload"
	"github.com/ferry-migrate/ferry/load"
)

// The binaries the stream tests run: ferry (backfill, plan, sync, verify) and
// the function's bootstrap, built once per test binary.
var bins struct {
	once             sync.Once
	ferry, bootstrap string
	err              error
}

func buildBins(t *testing.T) (ferry, bootstrap string) {
	t.Helper()
	bins.once.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-lambda-bin-")
		if err != nil {
			bins.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bins.ferry = filepath.Join(dir, "ferry")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bins.ferry, "../ferry").CombinedOutput(); err != nil {
			bins.err = fmt.Errorf("build ferry: %v\n%s", err, out)
			return
		}
		bins.bootstrap = filepath.Join(dir, "fn", "bootstrap")
		bins.err = lambdaesm.BuildBootstrap(ctx, "github.com/ferry-migrate/ferry/cmd/ferry-lambda", bins.bootstrap)
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.ferry, bins.bootstrap
}

// streamEnv is one test's migration: its own database, table, stream,
// control table and slot on the shared stack.
type streamEnv struct {
	st                                   *stack.Stack
	db, mapping, target, stream, control string
	slot, dir, ferry, bootstrap          string
}

func newStreamEnv(t *testing.T) *streamEnv {
	st := stack.ForTest(t)
	e := &streamEnv{st: st, db: st.TestDatabase(t), target: testkit.Name("pagila_"), stream: testkit.Name("pagila-"),
		control: testkit.Name("ctl_"), slot: testkit.Name("ferry_"), dir: t.TempDir()}
	e.mapping = testkit.PagilaMapping(t, e.target, e.stream)
	e.ferry, e.bootstrap = buildBins(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, tbl := range []string{e.target, e.control} {
			_, _ = st.DynamoClient().DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(tbl)})
		}
		_, _ = st.KinesisClient().DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(e.stream)})
	})
	return e
}

// ferryCmd is a ferry command pointed at the stack (the standard AWS chain).
func (e *streamEnv) ferryCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.ferry, args...)
	cmd.Env = append(os.Environ(), e.st.Env()...)
	return cmd
}

func (e *streamEnv) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.ferryCmd(t.Context(), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (e *streamEnv) common() []string {
	return []string{"--source", e.db, "--mapping", e.mapping, "--slot", e.slot, "--control-table", e.control}
}

// startFunction runs the applier under the Runtime Interface Emulator with
// the compiled plan, fed by an event source mapping on the stream.
func (e *streamEnv) startFunction(t *testing.T, mc func(*lambdaesm.MappingConfig), env ...string) (*lambdaesm.Runtime, *lambdaesm.Mapping) {
	t.Helper()
	ctx := t.Context()
	plan := filepath.Join(e.dir, "plan.json")
	e.run(t, "plan", "--compile", "--out", plan, "--source", e.db, "--mapping", e.mapping)
	rt, err := lambdaesm.StartRuntime(ctx, lambdaesm.RuntimeConfig{
		Bootstrap:   e.bootstrap,
		Env:         append(append([]string{EnvPlan + "=" + plan, EnvControlTable + "=" + e.control, EnvWorkers + "=8"}, e.st.Env()...), env...),
		Concurrency: 4,
		Timeout:     60 * time.Second,
		LogDir:      e.dir,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	cfg := lambdaesm.DefaultMappingConfig(e.stream)
	cfg.FunctionResponseTypes = []string{"ReportBatchItemFailures"}
	cfg.BisectBatchOnFunctionError = true
	cfg.ParallelizationFactor = 4
	cfg.BatchSize = 100
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if mc != nil {
		mc(&cfg)
	}
	m, err := lambdaesm.StartMapping(ctx, e.st.KinesisClient(), rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return rt, m
}

// startSync runs `ferry sync --apply stream` until the test stops it.
func (e *streamEnv) startSync(t *testing.T, extra ...string) func() {
	t.Helper()
	var out strings.Builder
	cmd := e.ferryCmd(context.Background(), append(append([]string{"sync", "--apply", "stream", "--status-every", "1s"}, e.common()...), extra...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sync: %v\n%s", err, out.String())
			}
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Errorf("sync did not stop within a minute\n%s", out.String())
		}
	}
	t.Cleanup(stop)
	return stop
}

// hotKey updates one film as fast as rate allows until ctx ends.
func hotKey(ctx context.Context, db string, film int, perSecond int) error {
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if _, err := conn.Exec(ctx, "UPDATE film SET rental_duration = $1 WHERE film_id = $2", 3+i%5, film); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// versionProbe polls items (films and customers, which the workload and the
// hot key edit) and records any item whose _version went backwards.
func versionProbe(ctx context.Context, client *dynamodb.Client, table string) func() []string {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan []string, 1)
	var keys []map[string]types.AttributeValue
	for i := 1; i <= 200; i++ {
		keys = append(keys,
			map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "FILM#" + strconv.Itoa(i)}, "sk": &types.AttributeValueMemberS{Value: "FILM"}},
			map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "CUSTOMER#" + strconv.Itoa(i)}, "sk": &types.AttributeValueMemberS{Value: "PROFILE"}})
	}
	go func() {
		seen := map[string]extract.Position{}
		var regress []string
		for ctx.Err() == nil {
			for start := 0; start < len(keys); start += 100 {
				out, err := client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
					table: {Keys: keys[start : start+100], ConsistentRead: aws.Bool(true)}}})
				if err != nil {
					continue
				}
				for _, it := range out.Responses[table] {
					id := it["pk"].(*types.AttributeValueMemberS).Value
					v, err := extract.ParseVersion(it["_version"].(*types.AttributeValueMemberN).Value)
					if err != nil {
						regress = append(regress, fmt.Sprintf("%s: bad _version: %v", id, err))
						continue
					}
					if prev, ok := seen[id]; ok && v.Less(prev) {
						regress = append(regress, fmt.Sprintf("%s went back from version %s to %s", id, prev.Version(), v.Version()))
					}
					seen[id] = v
				}
			}
			select { // poll interval: dynalite is shared by the parallel tests
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		done <- regress
	}()
	return func() []string { cancel(); return <-done }
}

// TestApplyStream: `sync --apply stream` with the applier under the emulators
// (4 shards, ParallelizationFactor 4), the DVD-store workload, a hot key
// updated 50 times a second and a TRUNCATE: after catch-up, verify of
// DynamoDB and of the stream is consistent, and no probed item ever went back
// to an older _version.
func TestApplyStream(t *testing.T) {
	t.Parallel()
	e := newStreamEnv(t)
	ctx := t.Context()
	e.run(t, append([]string{"backfill", "--shards", "4", "--progress", "log"}, e.common()...)...)
	_, m := e.startFunction(t, func(c *lambdaesm.MappingConfig) { c.StartingPosition = lambdaesm.Latest })
	stopSync := e.startSync(t)
	probe := versionProbe(ctx, e.st.DynamoClient(), e.target)

	wctx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if _, err := workload.Run(wctx, workload.Config{SourceURL: e.db, Rate: 100, Seed: 12}); err != nil && wctx.Err() == nil {
			errs <- err
		}
	}()
	go func() { defer wg.Done(); errs <- hotKey(wctx, e.db, 7, 50) }()
	select {
	case <-time.After(8 * time.Second):
	case <-ctx.Done():
	}
	conn, err := pgx.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "TRUNCATE film_category"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO film_category (film_id, category_id) VALUES (1, 2), (3, 4)"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-time.After(8 * time.Second):
	case <-ctx.Done():
	}
	stopLoad()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := testkit.WaitCaughtUp(ctx, e.db, e.slot, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if regress := probe(); len(regress) > 0 {
		for _, r := range regress {
			t.Error(r)
		}
	}
	out := e.run(t, append([]string{"verify", "--stream"}, e.common()...)...)
	t.Logf("verify:\n%s", out)
	stopSync()
	e.checkApplied(t, "public.film_category")
}

// checkApplied asserts that the function applied the stream: every shard has
// an applied position, and the TRUNCATEs of the tables named were swept.
func (e *streamEnv) checkApplied(t *testing.T, truncated ...string) {
	t.Helper()
	state := load.NewApplyState(e.st.DynamoClient(), e.control)
	pos, err := state.ShardPositions(t.Context(), e.stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(pos) != 4 {
		t.Errorf("applied positions of %d shards, want 4 (every shard had changes and a TRUNCATE): %+v", len(pos), pos)
	}
	for _, name := range truncated {
		f, err := state.Fence(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if f.Truncated == "" || f.Swept != f.Truncated {
			t.Errorf("fence of %s: %+v, want a TRUNCATE applied and swept", name, f)
		}
	}
}
