package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/workload"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// Env is the bench's world: a local stack of its own, the ferry binary under
// test and a scratch directory.
type Env struct {
	Stack   *stack.Stack
	Ferry   string // path of the ferry binary
	Repo    string // repository root (mappings/pagila.yaml)
	Work    string // scratch directory (mappings, profiles)
	Profile string // directory for CPU profiles of the ferry children ("" = none)
	Log     *slog.Logger

	ddb *dynamodb.Client
	kin *kinesis.Client
}

// DynamoClient is a DynamoDB client for the stack's dynalite.
func (e *Env) DynamoClient() *dynamodb.Client {
	if e.ddb == nil {
		e.ddb = e.Stack.DynamoClient()
	}
	return e.ddb
}

// KinesisClient is a Kinesis client for the stack's kinesalite.
func (e *Env) KinesisClient() *kinesis.Client {
	if e.kin == nil {
		e.kin = e.Stack.KinesisClient()
	}
	return e.kin
}

func (e *Env) adminExec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, e.Stack.DatabaseURL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// ScaledDatabase returns the URL of database bench_x<factor>: a clone of the
// pristine Pagila grown to factor times its rows. An existing one (a stack
// kept from an earlier run) is reused: scaling is idempotent.
func (e *Env) ScaledDatabase(ctx context.Context, factor int) (string, error) {
	name := fmt.Sprintf("bench_x%d", factor)
	url := e.Stack.DatabaseURL(name)
	if err := e.adminExec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+stack.TemplateDB); err != nil {
		var exists bool
		if c, cerr := pgx.Connect(ctx, url); cerr == nil {
			exists = true
			c.Close(context.Background())
		}
		if !exists {
			return "", fmt.Errorf("create %s: %w", name, err)
		}
	}
	if factor > 1 {
		start := time.Now()
		res, err := workload.Scale(ctx, workload.ScaleConfig{SourceURL: url, Factor: factor})
		if err != nil {
			return "", err
		}
		if res.CopiesMade > 0 {
			e.Log.Info("bench: scaled", "database", name, "rows", res.Rows, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	// A kept database may carry slots of an interrupted run; they would pin WAL.
	if err := e.dropSlots(ctx, name); err != nil {
		return "", err
	}
	// Set hint bits and the visibility map now, so that no measured run pays
	// for the first reads of fresh rows.
	if conn, err := pgx.Connect(ctx, url); err == nil {
		if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
			e.Log.Warn("bench: vacuum", "database", name, "err", err)
		}
		conn.Close(context.Background())
	}
	return url, nil
}

// Clone copies database src to a fresh database name (dropped first).
func (e *Env) Clone(ctx context.Context, src, name string) (string, error) {
	if err := e.Drop(ctx, name); err != nil {
		return "", err
	}
	if err := e.adminExec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+src); err != nil {
		return "", fmt.Errorf("clone %s to %s: %w", src, name, err)
	}
	return e.Stack.DatabaseURL(name), nil
}

// Drop removes a database made by Clone (with its slots).
func (e *Env) Drop(ctx context.Context, name string) error {
	return e.Stack.DropDatabase(ctx, name)
}

func (e *Env) dropSlots(ctx context.Context, db string) error {
	return e.adminExec(ctx, fmt.Sprintf(
		"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '%s' AND NOT active", db))
}

// LoadPlan compiles a mapping file against a database.
func LoadPlan(ctx context.Context, url, mappingPath string) (*transform.Plan, error) {
	m, err := mappings.Load(mappingPath)
	if err != nil {
		return nil, err
	}
	conn, err := extract.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	tables, err := extract.LoadTables(ctx, conn)
	if err != nil {
		return nil, err
	}
	return transform.Compile(m, tables)
}

// Mapping writes a copy of mappings/pagila.yaml that targets DynamoDB table
// target and Kinesis stream stream ("" = no stream: items only).
func (e *Env) Mapping(target, stream string) (string, error) {
	data, err := os.ReadFile(filepath.Join(e.Repo, "mappings", "pagila.yaml"))
	if err != nil {
		return "", err
	}
	s := strings.Replace(string(data), "\n  target: pagila\n", "\n  target: "+target+"\n", 1)
	streamLine := ""
	if stream != "" {
		streamLine = "  stream: " + stream + "\n"
	}
	s = strings.Replace(s, "\n  stream: pagila-changes\n", "\n"+streamLine, 1)
	if s == string(data) || !strings.Contains(s, "target: "+target) {
		return "", errors.New("mappings/pagila.yaml: defaults.target/stream lines not found")
	}
	name := target + ".yaml"
	if stream == "" {
		name = target + "-items.yaml"
	}
	path := filepath.Join(e.Work, name)
	return path, os.WriteFile(path, []byte(s), 0o644)
}

// DeleteTargets deletes DynamoDB tables and Kinesis streams (missing ones are fine).
func (e *Env) DeleteTargets(ctx context.Context, tables, streams []string) {
	for _, t := range tables {
		_, _ = e.DynamoClient().DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(t)})
	}
	for _, s := range streams {
		_, _ = e.KinesisClient().DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(s)})
	}
}

// EnsureTables creates the plan's DynamoDB tables under other names.
func (e *Env) EnsureTables(ctx context.Context, plan *transform.Plan, rename func(string) string) error {
	var specs []load.TableSpec
	for _, t := range plan.Targets() {
		spec := load.TableSpec{Name: rename(t.Name), Key: load.KeySchema{PK: t.PK, SK: t.SK}}
		for name, k := range t.GSIs {
			spec.GSIs = append(spec.GSIs, load.GSISpec{Name: name, Key: load.KeySchema{PK: k[0], SK: k[1]}})
		}
		specs = append(specs, spec)
	}
	return load.EnsureTables(ctx, e.DynamoClient(), specs)
}

// Child is a finished ferry process.
type Child struct {
	Wall    time.Duration
	PeakRSS int64 // bytes: the kernel's high-water mark (VmHWM, also wait4's ru_maxrss)
	Stdout  string
	Stderr  string
}

// RunFerry runs the ferry binary with args and the stack's AWS environment,
// and measures its wall time and peak RSS.
func (e *Env) RunFerry(ctx context.Context, profile string, args ...string) (Child, error) {
	p, err := e.StartFerry(ctx, profile, args...)
	if err != nil {
		return Child{}, err
	}
	return p.Wait()
}

// Proc is a running ferry process.
type Proc struct {
	cmd      *exec.Cmd
	start    time.Time
	out, err bytes.Buffer
	hwm      chan int64
	args     []string
}

// StartFerry starts the ferry binary; profile names a CPU profile to write
// into Env.Profile ("" = none).
func (e *Env) StartFerry(ctx context.Context, profile string, args ...string) (*Proc, error) {
	p := &Proc{args: args, hwm: make(chan int64, 1)}
	p.cmd = exec.CommandContext(ctx, e.Ferry, args...)
	p.cmd.Env = append(os.Environ(), e.Stack.Env()...)
	if e.Profile != "" && profile != "" {
		p.cmd.Env = append(p.cmd.Env, "FERRY_CPUPROFILE="+filepath.Join(e.Profile, profile+".prof"))
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	p.cmd.Cancel = func() error { return p.cmd.Process.Signal(syscall.SIGTERM) }
	p.cmd.WaitDelay = 30 * time.Second
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", e.Ferry, err)
	}
	go p.sampleHWM()
	return p, nil
}

// sampleHWM polls /proc/PID/status for VmHWM until the process is gone.
func (p *Proc) sampleHWM() {
	var peak int64
	path := "/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status"
	for {
		v, ok := readVmHWM(path)
		if !ok {
			break
		}
		peak = max(peak, v)
		time.Sleep(10 * time.Millisecond)
	}
	p.hwm <- peak
}

var vmHWM = regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB`)

func readVmHWM(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	m := vmHWM.FindSubmatch(b)
	if m == nil {
		return 0, false // a zombie: memory is gone
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10, true
}

// Stop asks the process to stop (SIGTERM).
func (p *Proc) Stop() { _ = p.cmd.Process.Signal(syscall.SIGTERM) }

// Wait waits for the process; an exit code other than 0 is an error that
// carries the end of its stderr.
func (p *Proc) Wait() (Child, error) {
	err := p.cmd.Wait()
	c := Child{Wall: time.Since(p.start), Stdout: p.out.String(), Stderr: p.err.String()}
	c.PeakRSS = <-p.hwm
	// wait4's ru_maxrss only when /proc could not be read: on Linux a child's
	// ru_maxrss starts at its parent's RSS at fork (it survives exec), so
	// every child of this process seemed to peak at the bench's own ~160 MiB.
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && c.PeakRSS == 0 {
		c.PeakRSS = ru.Maxrss << 10
	}
	if err != nil {
		return c, fmt.Errorf("ferry %s: %w\n%s", strings.Join(p.args[:min(len(p.args), 1)], " "), err, tail(c.Stderr+c.Stdout, 2000))
	}
	return c, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// summaryRows reads the rows total from a backfill summary ("total  N …").
func summaryRows(stdout string) (int64, error) {
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 1 && f[0] == "total" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no total line in the backfill summary:\n%s", tail(stdout, 1000))
}
