package load

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{0, 10 * time.Millisecond},
		{1, 10 * time.Millisecond},
		{2, 20 * time.Millisecond},
		{4, 80 * time.Millisecond},
		{5, 100 * time.Millisecond},
		{1000, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := b.Delay(tt.attempt); got != tt.want {
			t.Errorf("Delay(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
	if got := (Backoff{}).Delay(1); got != DefaultBackoffBase {
		t.Errorf("zero Backoff Delay(1) = %v, want %v", got, DefaultBackoffBase)
	}
}

func TestBackoffSleep(t *testing.T) {
	ctx := context.Background()
	b := Backoff{Base: time.Microsecond, Max: time.Microsecond, MaxAttempts: 2}
	for attempt := 1; attempt <= 2; attempt++ {
		if err := b.Sleep(ctx, attempt); err != nil {
			t.Fatalf("Sleep(%d): %v", attempt, err)
		}
	}
	if err := b.Sleep(ctx, 3); !errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("Sleep(3) = %v, want ErrRetriesExhausted", err)
	}
	if err := (Backoff{MaxAttempts: -1}).Sleep(ctx, 1000); err != nil {
		t.Fatalf("unlimited Sleep: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	long := Backoff{Base: time.Hour, Max: time.Hour}
	// A full-jitter wait can be 0; retry until one is really waited on.
	for err := error(nil); err == nil; {
		err = long.Sleep(cctx, 1)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep after cancel = %v, want context.Canceled", err)
		}
	}
}

func TestBackoffValidate(t *testing.T) {
	if err := (Backoff{}).Validate(); err != nil {
		t.Errorf("zero: %v", err)
	}
	err := Backoff{Base: -1, Max: -1}.Validate()
	if err == nil {
		t.Fatal("negative: no error")
	}
	if err := (Backoff{Base: time.Second, Max: time.Millisecond}).Validate(); err == nil {
		t.Error("Base > Max: no error")
	}
}

func TestRetry(t *testing.T) {
	transient := errors.New("throttled")
	permanent := errors.New("validation")
	fast := Backoff{Base: time.Microsecond, Max: time.Microsecond, MaxAttempts: 3}
	isTransient := func(err error) bool { return errors.Is(err, transient) }
	tests := []struct {
		name      string
		results   []error // fn's result per call; nil after the list
		wantCalls int
		wantErr   error
		exhausted bool
	}{
		{"first try", nil, 1, nil, false},
		{"transient then success", []error{transient, transient}, 3, nil, false},
		{"permanent: no retry", []error{permanent}, 1, permanent, false},
		{"transient past the budget", []error{transient, transient, transient, transient, transient}, 4, transient, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls, retries := 0, 0
			err := Retry(t.Context(), fast, isTransient, func(attempt int, err error) {
				retries++
				if attempt != retries {
					t.Errorf("onRetry attempt %d, want %d", attempt, retries)
				}
			}, func() error {
				calls++
				if calls <= len(tc.results) {
					return tc.results[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls || retries != calls-1 && !tc.exhausted {
				t.Errorf("calls %d, retries %d; want %d calls", calls, retries, tc.wantCalls)
			}
			if !errors.Is(err, tc.wantErr) || tc.wantErr == nil && err != nil {
				t.Errorf("err %v, want %v", err, tc.wantErr)
			}
			if errors.Is(err, ErrRetriesExhausted) != tc.exhausted {
				t.Errorf("err %v: exhausted %v, want %v", err, errors.Is(err, ErrRetriesExhausted), tc.exhausted)
			}
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := 0
	if err := Retry(ctx, fast, isTransient, nil, func() error { calls++; return transient }); !errors.Is(err, transient) || calls != 1 {
		t.Errorf("ended context: err %v after %d calls, want the failure after 1", err, calls)
	}
}

func TestRetryLoop(t *testing.T) {
	partial := errors.New("partial")
	permanent := errors.New("permanent")
	fast := Backoff{Base: time.Nanosecond, Max: time.Nanosecond, MaxAttempts: 2}
	tests := []struct {
		name string
		loop RetryLoop
		// per call: the failure and how long the call runs (fake clock)
		results      []error
		took         []time.Duration
		wantAttempts []int // attempt given to fn, per call
		wantOnRetry  []int
		wantErr      []error // all must match with errors.Is
		wantGiveUp   bool
	}{
		{
			name:         "retryable until success",
			loop:         RetryLoop{Backoff: fast},
			results:      []error{partial, partial, nil},
			wantAttempts: []int{0, 1, 2},
			wantOnRetry:  []int{1, 2},
		},
		{
			name:         "not retryable",
			loop:         RetryLoop{Backoff: fast},
			results:      []error{partial, permanent},
			wantAttempts: []int{0, 1},
			wantOnRetry:  []int{1},
			wantErr:      []error{permanent},
		},
		{
			name:         "budget spent: default give-up wraps both",
			loop:         RetryLoop{Backoff: fast},
			results:      []error{partial, partial, partial},
			wantAttempts: []int{0, 1, 2},
			wantOnRetry:  []int{1, 2, 3},
			wantErr:      []error{partial, ErrRetriesExhausted},
		},
		{
			name:         "budget spent: custom give-up",
			loop:         RetryLoop{Backoff: fast, GiveUp: func(_, reason error) error { return fmt.Errorf("gave up: %w", reason) }},
			results:      []error{partial, partial, partial},
			wantAttempts: []int{0, 1, 2},
			wantOnRetry:  []int{1, 2, 3},
			wantErr:      []error{ErrRetriesExhausted},
			wantGiveUp:   true,
		},
		{
			name:         "long call starts afresh",
			loop:         RetryLoop{Backoff: fast, FreshAfter: time.Minute},
			results:      []error{partial, partial, partial, partial, nil},
			took:         []time.Duration{0, 0, 2 * time.Minute, 0, 0},
			wantAttempts: []int{0, 1, 2, 1, 2},
			wantOnRetry:  []int{1, 2, 1, 2},
		},
		{
			name:         "exactly FreshAfter is not long",
			loop:         RetryLoop{Backoff: fast, FreshAfter: time.Minute},
			results:      []error{partial, partial, partial},
			took:         []time.Duration{0, time.Minute, time.Minute},
			wantAttempts: []int{0, 1, 2},
			wantOnRetry:  []int{1, 2, 3},
			wantErr:      []error{partial, ErrRetriesExhausted},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var clock time.Time
			calls := 0
			var attempts, onRetry []int
			l := tc.loop
			l.now = func() time.Time { return clock }
			l.Retryable = func(err error) bool { return errors.Is(err, partial) }
			l.OnRetry = func(attempt int, err error) {
				onRetry = append(onRetry, attempt)
				if !errors.Is(err, partial) {
					t.Errorf("OnRetry(%d, %v): want the retryable failure", attempt, err)
				}
			}
			err := l.Do(t.Context(), func(attempt int) error {
				attempts = append(attempts, attempt)
				if calls < len(tc.took) {
					clock = clock.Add(tc.took[calls])
				}
				calls++
				if calls > len(tc.results) {
					t.Fatalf("call %d: more calls than results", calls)
				}
				return tc.results[calls-1]
			})
			if !slices.Equal(attempts, tc.wantAttempts) {
				t.Errorf("fn attempts %v, want %v", attempts, tc.wantAttempts)
			}
			if !slices.Equal(onRetry, tc.wantOnRetry) {
				t.Errorf("OnRetry attempts %v, want %v", onRetry, tc.wantOnRetry)
			}
			if len(tc.wantErr) == 0 && err != nil {
				t.Errorf("err %v, want nil", err)
			}
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("err %v, want it to wrap %v", err, want)
				}
			}
			if tc.wantGiveUp && (errors.Is(err, partial) || !strings.HasPrefix(err.Error(), "gave up: ")) {
				t.Errorf("err %v, want GiveUp's error alone", err)
			}
		})
	}
}

func TestRetryLoopDefaultsAndContext(t *testing.T) {
	// Zero Retryable: IsTransient (a cancelled context is not transient).
	calls := 0
	err := RetryLoop{Backoff: Backoff{Base: time.Nanosecond, Max: time.Nanosecond}}.Do(t.Context(), func(int) error {
		calls++
		if calls == 1 {
			return fmt.Errorf("wrapped: %w", ErrRetriesExhausted) // transient
		}
		return context.Canceled
	})
	if !errors.Is(err, context.Canceled) || calls != 2 {
		t.Errorf("err %v after %d calls, want context.Canceled after 2", err, calls)
	}

	// A context that ends during the retries ends them through GiveUp.
	ctx, cancel := context.WithCancel(t.Context())
	var reason error
	err = RetryLoop{
		Backoff:   Backoff{MaxAttempts: -1},
		Retryable: func(error) bool { return true },
		OnRetry:   func(int, error) { cancel() },
		GiveUp:    func(_, r error) error { reason = r; return r },
	}.Do(ctx, func(int) error { return errors.New("x") })
	if !errors.Is(err, context.Canceled) || !errors.Is(reason, context.Canceled) {
		t.Errorf("err %v (reason %v), want context.Canceled", err, reason)
	}
}
