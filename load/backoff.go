package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Defaults for a zero [Backoff].
const (
	DefaultBackoffBase        = 25 * time.Millisecond
	DefaultBackoffMax         = 2 * time.Second
	DefaultBackoffMaxAttempts = 20
)

// ErrRetriesExhausted is returned (wrapped) when a retry budget is used up.
var ErrRetriesExhausted = errors.New("retries exhausted")

// Backoff is a capped exponential backoff with full jitter: the wait before
// retry n (n >= 1) is uniformly random in [0, min(Max, Base*2^(n-1))).
//
// Zero values take the defaults: Base 25ms, Max 2s, MaxAttempts 20. A
// negative MaxAttempts means unlimited (the context is then the only bound).
type Backoff struct {
	Base        time.Duration
	Max         time.Duration
	MaxAttempts int
}

// Validate reports every invalid field, joined.
func (b Backoff) Validate() error {
	var errs []error
	if b.Base < 0 {
		errs = append(errs, fmt.Errorf("backoff: Base %v is negative", b.Base))
	}
	if b.Max < 0 {
		errs = append(errs, fmt.Errorf("backoff: Max %v is negative", b.Max))
	}
	if b.Base > 0 && b.Max > 0 && b.Base > b.Max {
		errs = append(errs, fmt.Errorf("backoff: Base %v is greater than Max %v", b.Base, b.Max))
	}
	return errors.Join(errs...)
}

func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = DefaultBackoffBase
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Max < b.Base {
		b.Max = b.Base
	}
	if b.MaxAttempts == 0 {
		b.MaxAttempts = DefaultBackoffMaxAttempts
	}
	return b
}

// Delay returns the ceiling of the wait before retry attempt (1-based),
// before jitter.
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.withDefaults()
	if attempt < 1 {
		attempt = 1
	}
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Sleep waits before retry attempt (1-based: the first retry is attempt 1).
// It returns an error wrapping [ErrRetriesExhausted] without waiting when
// attempt exceeds MaxAttempts, and ctx.Err() when ctx is done first. It
// blocks; it is safe for concurrent use.
func (b Backoff) Sleep(ctx context.Context, attempt int) error {
	b = b.withDefaults()
	if b.MaxAttempts > 0 && attempt > b.MaxAttempts {
		return fmt.Errorf("attempt %d of %d: %w", attempt, b.MaxAttempts, ErrRetriesExhausted)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ceil := b.Delay(attempt)
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Retry runs fn until it succeeds, fails with an error retryable does not
// accept (nil accepts [IsTransient] failures), or the backoff gives up or ctx
// ends: the common case of [RetryLoop]. Before each retry it calls onRetry
// (when set) with the attempt (1-based) and the failure, then waits with b.
// A failure after the last attempt is returned wrapped together with the
// reason the retries ended; a failure after ctx ended is returned as it is.
func Retry(ctx context.Context, b Backoff, retryable func(error) bool, onRetry func(attempt int, err error), fn func() error) error {
	if retryable == nil {
		retryable = IsTransient
	}
	return RetryLoop{
		Backoff:   b,
		Retryable: func(err error) bool { return ctx.Err() == nil && retryable(err) },
		OnRetry:   onRetry,
	}.Do(ctx, func(int) error { return fn() })
}

// RetryLoop is ferry's one retry loop: the writers' partial-batch retries,
// the pipelines' whole-batch retries and sync's reconnects are all a
// RetryLoop with their own classification and messages. The zero value
// retries [IsTransient] failures with the default [Backoff].
type RetryLoop struct {
	// Backoff paces the retries and bounds their number.
	Backoff Backoff
	// Retryable reports whether a failure is worth another attempt; any
	// other failure is returned at once. Default [IsTransient]. A loop that
	// must stop when ctx ends says so here (the wait checks ctx anyway).
	Retryable func(error) bool
	// OnRetry, when set, is called before the wait for each retry with the
	// attempt (1-based) and the failure that caused it.
	OnRetry func(attempt int, err error)
	// GiveUp, when set, builds the error returned when the backoff ends the
	// retries: last is the last failure, reason the backoff's error
	// (wrapping [ErrRetriesExhausted], or ctx.Err()). Default: both wrapped,
	// "last (retries: reason)".
	GiveUp func(last, reason error) error
	// FreshAfter, when positive, starts the attempt count afresh after a
	// call of fn that ran longer than FreshAfter before it failed (a
	// connection that lived a while is not one more failure in a row).
	FreshAfter time.Duration

	now func() time.Time // the clock of FreshAfter; nil: time.Now (tests set it)
}

// Do calls fn until it returns nil, a failure Retryable does not accept, or
// the backoff gives up. fn receives 0 on the first call and the attempt
// number (as given to OnRetry) on each retry. Do blocks; a RetryLoop is safe
// for concurrent use when its callbacks are.
func (l RetryLoop) Do(ctx context.Context, fn func(attempt int) error) error {
	retryable, now := l.Retryable, l.now
	if retryable == nil {
		retryable = IsTransient
	}
	if now == nil {
		now = time.Now
	}
	for attempt := 0; ; {
		started := now()
		err := fn(attempt)
		if err == nil || !retryable(err) {
			return err
		}
		if l.FreshAfter > 0 && now().Sub(started) > l.FreshAfter {
			attempt = 0
		}
		attempt++
		if l.OnRetry != nil {
			l.OnRetry(attempt, err)
		}
		if serr := l.Backoff.Sleep(ctx, attempt); serr != nil {
			if l.GiveUp != nil {
				return l.GiveUp(err, serr)
			}
			return fmt.Errorf("%w (retries: %w)", err, serr)
		}
	}
}
