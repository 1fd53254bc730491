package lambdaesm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// MaxInvokePayload is the largest event the emulator passes on whole: the
// synchronous invocation limit of 6 MB (6 MiB + 100 bytes in the RIE, which
// silently truncates anything longer). Invoke refuses larger payloads with
// ErrPayloadTooLarge, as Lambda's Invoke API does.
const MaxInvokePayload = 6*1024*1024 + 100

// ErrPayloadTooLarge is returned by Runtime.Invoke for a payload over
// MaxInvokePayload; the function was not invoked.
var ErrPayloadTooLarge = errors.New("lambdaesm: request payload over the 6 MB synchronous invocation limit")

// RuntimeConfig describes a function and how many execution environments run it.
type RuntimeConfig struct {
	// Bootstrap is the function's executable, a provided.al2023 `bootstrap`
	// (see BuildBootstrap). Required. It runs in its own directory, which is
	// also LAMBDA_TASK_ROOT (on AWS, /var/task).
	Bootstrap string
	// Env is the function's own environment (KEY=VALUE), on top of the
	// variables Lambda defines (see StartRuntime). Nothing else of the
	// caller's environment reaches the function but PATH.
	Env []string
	// Concurrency is the number of execution environments, one RIE process
	// each; an environment runs one invocation at a time, as on AWS.
	// Default 1.
	Concurrency int
	// Timeout is the function timeout, in whole seconds (AWS default 3 s).
	// Default 30 s.
	Timeout time.Duration
	// FunctionName is AWS_LAMBDA_FUNCTION_NAME. Default "function".
	FunctionName string
	// MemoryMB is AWS_LAMBDA_FUNCTION_MEMORY_SIZE (not enforced). Default 128.
	MemoryMB int
	// Region is AWS_REGION and AWS_DEFAULT_REGION. Default us-east-1.
	Region string
	// LogDir, when set, receives env-N.log per environment: the emulator's
	// own log and everything the function writes to stdout and stderr (what
	// CloudWatch Logs would get). Default: discarded.
	LogDir string
	// RIELogLevel is the emulator's --log-level. Default "warn".
	RIELogLevel string
	// RIE is the aws-lambda-rie binary. Default: BuildRIE.
	RIE string
	// Logger receives the runtime's own records. Default slog.Default().
	Logger *slog.Logger
}

func (c *RuntimeConfig) defaults() {
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.FunctionName == "" {
		c.FunctionName = "function"
	}
	if c.MemoryMB == 0 {
		c.MemoryMB = 128
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.RIELogLevel == "" {
		c.RIELogLevel = "warn"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem of the configuration.
func (c RuntimeConfig) Validate() error {
	var errs []error
	if c.Bootstrap == "" {
		errs = append(errs, errors.New("Bootstrap: required"))
	} else if st, err := os.Stat(c.Bootstrap); err != nil {
		errs = append(errs, fmt.Errorf("Bootstrap: %w", err))
	} else if st.Mode()&0o111 == 0 {
		errs = append(errs, fmt.Errorf("Bootstrap: %s is not executable", c.Bootstrap))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("Concurrency: %d, want at least 1", c.Concurrency))
	}
	if c.Timeout < 0 || c.Timeout%time.Second != 0 {
		errs = append(errs, fmt.Errorf("Timeout: %v, want whole seconds", c.Timeout))
	}
	for _, kv := range c.Env {
		if !strings.Contains(kv, "=") {
			errs = append(errs, fmt.Errorf("Env: %q is not KEY=VALUE", kv))
		}
	}
	return errors.Join(errs...)
}

// Runtime runs one function in Concurrency execution environments, each an
// AWS Lambda Runtime Interface Emulator process that starts the bootstrap as
// Lambda does (AWS_LAMBDA_RUNTIME_API pointing at its Runtime API, on the
// first invocation; again after the runtime exits or times out).
type Runtime struct {
	cfg    RuntimeConfig
	env    []string
	client *http.Client
	free   chan *environment // idle environments

	mu     sync.Mutex
	all    []*environment
	closed bool
}

// StartRuntime starts cfg.Concurrency emulators on free 127.0.0.1 ports and
// returns once each accepts invocations (the bootstrap itself starts on the
// first invocation, as a Lambda cold start). Close stops them.
//
// The function's environment is what Lambda defines for an OS-only runtime
// (AWS_REGION, AWS_DEFAULT_REGION, AWS_LAMBDA_FUNCTION_NAME,
// AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_FUNCTION_VERSION,
// AWS_LAMBDA_INITIALIZATION_TYPE, AWS_LAMBDA_LOG_GROUP_NAME,
// AWS_LAMBDA_LOG_STREAM_NAME, LAMBDA_TASK_ROOT, LAMBDA_RUNTIME_DIR, LANG,
// TZ=:UTC, PATH; the emulator adds AWS_LAMBDA_RUNTIME_API), then cfg.Env,
// which wins. Credentials (AWS_ACCESS_KEY_ID, …) come only from cfg.Env.
func StartRuntime(ctx context.Context, cfg RuntimeConfig) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lambdaesm: runtime config: %w", err)
	}
	cfg.defaults()
	if cfg.RIE == "" {
		path, err := BuildRIE(ctx)
		if err != nil {
			return nil, err
		}
		cfg.RIE = path
	}
	bootstrap, err := filepath.Abs(cfg.Bootstrap)
	if err != nil {
		return nil, fmt.Errorf("lambdaesm: %w", err)
	}
	cfg.Bootstrap = bootstrap
	r := &Runtime{
		cfg:    cfg,
		env:    functionEnv(cfg),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}},
		free:   make(chan *environment, cfg.Concurrency),
	}
	for i := range cfg.Concurrency {
		e, err := r.start(ctx, i)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.free <- e
	}
	return r, nil
}

// Invoke runs the function once with payload as its event, synchronously
// (RequestResponse), in the next idle environment, and returns the
// function's response. requestID becomes the invocation's request id
// (lambdacontext's AwsRequestID); empty means a random one.
//
// It blocks while every environment is busy, and until the function returns
// or ctx ends. It is safe for concurrent use. A *FunctionError means the
// function ran and failed (an error returned, a panic, a crash or a timeout:
// classify by its Type); any other error means the function may not have
// run. An environment whose emulator died, or whose invocation was
// abandoned because ctx ended, is stopped and started afresh by the next
// invocation that takes it.
func (r *Runtime) Invoke(ctx context.Context, requestID string, payload []byte) ([]byte, error) {
	if len(payload) > MaxInvokePayload {
		return nil, fmt.Errorf("%w: %d bytes", ErrPayloadTooLarge, len(payload))
	}
	if requestID == "" {
		requestID = newRequestID()
	}
	var e *environment
	select {
	case e = <-r.free:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { r.free <- e }()
	select {
	case <-e.done: // the emulator died: replace it
		ne, err := r.start(ctx, e.n)
		if err != nil {
			return nil, err
		}
		e = ne
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+e.addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("lambdaesm: invoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amzn-RequestId", requestID)
	start := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		// The emulator may still be running the invocation (when ctx ended)
		// and would refuse the next one: stop it, the next Invoke that
		// takes this environment starts a fresh one.
		e.stop()
		return nil, fmt.Errorf("lambdaesm: invoke %s in environment %d: %w", requestID, e.n, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxInvokePayload+1))
	if err != nil {
		return nil, fmt.Errorf("lambdaesm: invoke %s: read response: %w", requestID, err)
	}
	out, err := classifyResponse(resp.StatusCode, body, time.Since(start), r.cfg.Timeout)
	if err != nil {
		var fe *FunctionError
		if errors.As(err, &fe) {
			fe.RequestID = requestID
		}
		return nil, err
	}
	return out, nil
}

// Close stops every environment: SIGTERM to the emulator (it kills the
// runtime and exits), then SIGKILL to the process groups of the emulator and
// of the runtimes it started. It waits for the emulators to exit.
func (r *Runtime) Close() error {
	r.mu.Lock()
	r.closed = true
	all := r.all
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Go(e.stop)
	}
	wg.Wait()
	return nil
}
