package load

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Leases let several processes share work (a backfill's chunks) through the
// control table, the way the Kinesis Client Library shares shards: each unit
// of work has a lease item with an owner, a lease counter and an expiry.
// Every change is a conditional write on the counter the writer last saw,
// so of two workers racing for a lease exactly one wins, and an owner that
// renews in time can never be taken over:
//
//	Acquire   a free lease (no owner, or none yet): owner = me, counter+1
//	Renew     my lease, counter unchanged since I last wrote it: counter+1, expiry pushed
//	Release   my lease, counter unchanged: owner removed, counter+1
//	TakeOver  an expired lease, counter unchanged since I read it: owner = me, counter+1
//	Finish    my lease, counter unchanged: value stored, owner removed, counter+1;
//	          a finished lease is never acquired again (its work is done)
//
// A worker whose Renew fails with ErrLeaseLost has lost the lease (it was
// taken over after it expired) and must stop working on it. Expiry is the
// owner's clock plus the lease duration, compared with the reader's clock:
// clocks of the workers must agree to well within the time between a
// renewal and the expiry (NTP keeps them within milliseconds; renew every
// third of the duration and up to two thirds of it is tolerated).
//
// Lease items live in the control table under one id per group (id, the
// lease key as sk); they hold no value until finished, so ControlStore.List
// sees a lease as an empty value, a finished one as the value Finish stored
// (the work's result, written at the moment the lease is given up, so that
// work is recorded done at most once), and ControlStore.DeleteAll removes
// them with the group.

// ErrLeaseLost is returned when a lease changed since the caller last saw
// it: another worker renewed, released or took it over.
var ErrLeaseLost = errors.New("lease lost")

// ErrLeaseHeld is returned by Acquire when the lease has a live owner.
var ErrLeaseHeld = errors.New("lease held by another worker")

// Lease attributes of a control item.
const (
	leaseOwner   = "owner"
	leaseCounter = "counter"
	leaseExpires = "expires" // Unix milliseconds
)

// Lease is one lease as a worker last read or wrote it.
type Lease struct {
	Key     string    // the unit of work (the control item's sk)
	Owner   string    // "" when free
	Counter int64     // incremented by every write; conditions compare it
	Expires time.Time // when the owner's hold ends unless renewed (zero when free)
	// Value is what Finish stored: the work is done (nil while it is not).
	Value []byte
}

// Done reports whether the lease was finished: its work is done.
func (l Lease) Done() bool { return l.Value != nil }

// Expired reports whether the lease is held and its expiry is past at now.
func (l Lease) Expired(now time.Time) bool {
	return l.Owner != "" && !now.Before(l.Expires)
}

// Free reports whether nobody holds the lease.
func (l Lease) Free() bool { return l.Owner == "" }

// LeaseStore reads and writes the leases of one group (one control-table
// id) for one worker. It is safe for concurrent use.
type LeaseStore struct {
	ctl      *ControlStore
	id       string
	owner    string
	duration time.Duration
	now      func() time.Time
}

// NewLeaseStore returns the leases under id in ctl, held by owner (a name
// unique among the workers, such as host and process id) for duration at
// a time.
func NewLeaseStore(ctl *ControlStore, id, owner string, duration time.Duration) (*LeaseStore, error) {
	if id == "" || owner == "" || duration <= 0 {
		return nil, fmt.Errorf("lease store: %w: id %q, owner %q and a positive duration (%s) are required", ErrInvalidRequest, id, owner, duration)
	}
	return &LeaseStore{ctl: ctl, id: id, owner: owner, duration: duration, now: time.Now}, nil
}

// Owner returns the worker the store holds leases for.
func (s *LeaseStore) Owner() string { return s.owner }

// Duration returns how long a lease lasts without renewal.
func (s *LeaseStore) Duration() time.Duration { return s.duration }

// Acquire takes the lease of key if it is free (or does not exist yet: it
// is created). It returns ErrLeaseHeld when another worker holds it, even
// expired (an expired lease is taken with TakeOver, after reading it, so
// that the take-over is conditional on what was read), and when it was
// finished (Get tells which).
func (s *LeaseStore) Acquire(ctx context.Context, key string) (Lease, error) {
	l, err := s.write(ctx, key, "attribute_not_exists(#owner) AND attribute_not_exists(#v)", Item{}, true)
	if errors.Is(err, ErrLeaseLost) {
		return Lease{}, fmt.Errorf("acquire lease %s/%s: %w", s.id, key, ErrLeaseHeld)
	}
	return l, err
}

// Renew extends the caller's lease by the lease duration. It fails with
// ErrLeaseLost when the lease is no longer the caller's as it last saw it.
func (s *LeaseStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	if l.Owner != s.owner {
		return Lease{}, fmt.Errorf("renew lease %s/%s: %w: held by %q, not %q", s.id, l.Key, ErrLeaseLost, l.Owner, s.owner)
	}
	return s.write(ctx, l.Key, "#owner = :me AND #counter = :seen", s.seen(l), true)
}

// Release gives the caller's lease up (ErrLeaseLost if it is not the
// caller's as it last saw it); another worker can Acquire it at once.
func (s *LeaseStore) Release(ctx context.Context, l Lease) error {
	if l.Owner != s.owner {
		return fmt.Errorf("release lease %s/%s: %w: held by %q, not %q", s.id, l.Key, ErrLeaseLost, l.Owner, s.owner)
	}
	_, err := s.write(ctx, l.Key, "#owner = :me AND #counter = :seen", s.seen(l), false)
	return err
}

// Finish records the caller's lease done with value (not empty) and gives
// it up, in one conditional write: it fails with ErrLeaseLost, storing
// nothing, when the lease is no longer the caller's as it last saw it (the
// work was taken over; the new owner records it). So of all the workers
// that held a lease, exactly one records its work done.
func (s *LeaseStore) Finish(ctx context.Context, l Lease, value []byte) error {
	if l.Owner != s.owner {
		return fmt.Errorf("finish lease %s/%s: %w: held by %q, not %q", s.id, l.Key, ErrLeaseLost, l.Owner, s.owner)
	}
	if len(value) == 0 {
		return fmt.Errorf("finish lease %s/%s: %w: empty value", s.id, l.Key, ErrInvalidRequest)
	}
	values := s.seen(l)
	values[":v"] = &types.AttributeValueMemberB{Value: value}
	_, err := s.write(ctx, l.Key, "#owner = :me AND #counter = :seen", values, false)
	return err
}

// TakeOver takes an expired lease as read (by Get or List): it fails with
// ErrLeaseLost when the lease changed since (its owner renewed or released
// it, or another worker took it first), and refuses a lease that has not
// expired by the store's clock.
func (s *LeaseStore) TakeOver(ctx context.Context, l Lease) (Lease, error) {
	if !l.Expired(s.now()) {
		return Lease{}, fmt.Errorf("take over lease %s/%s: %w: held by %q until %s", s.id, l.Key, ErrLeaseHeld, l.Owner, l.Expires.Format(time.RFC3339Nano))
	}
	return s.write(ctx, l.Key, "#counter = :seen", s.seen(l), true)
}

// seen is the condition values for a lease as the caller last saw it.
func (s *LeaseStore) seen(l Lease) Item {
	return Item{":seen": &types.AttributeValueMemberN{Value: strconv.FormatInt(l.Counter, 10)}}
}

// write increments the lease's counter under cond, and either makes the
// store's owner hold it for the lease duration (hold) or frees it. A failed
// condition is ErrLeaseLost.
func (s *LeaseStore) write(ctx context.Context, key, cond string, values Item, hold bool) (Lease, error) {
	k, err := s.ctl.key(s.id, key)
	if err != nil {
		return Lease{}, err
	}
	names := map[string]string{"#owner": leaseOwner, "#counter": leaseCounter, "#expires": leaseExpires}
	if strings.Contains(cond, "#v") || values[":v"] != nil {
		names["#v"] = controlValue
	}
	// Every name and value is used by the update or the condition (DynamoDB
	// rejects unused ones): :me is the new owner, or (release) the one the
	// condition expects.
	values[":one"] = &types.AttributeValueMemberN{Value: "1"}
	values[":me"] = &types.AttributeValueMemberS{Value: s.owner}
	update := "ADD #counter :one"
	if hold {
		values[":exp"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(s.now().Add(s.duration).UnixMilli(), 10)}
		update += " SET #owner = :me, #expires = :exp"
	} else {
		update += " REMOVE #owner, #expires"
	}
	if values[":v"] != nil {
		update = strings.Replace(update, "ADD #counter :one", "ADD #counter :one SET #v = :v", 1)
	}
	out, err := s.ctl.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.ctl.table,
		Key:                       k,
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		applied, err := conditionalResult(err, "lease write", s.ctl.table)
		if err == nil && !applied {
			return Lease{}, fmt.Errorf("lease %s/%s: %w", s.id, key, ErrLeaseLost)
		}
		return Lease{}, fmt.Errorf("lease %s/%s: %w", s.id, key, err)
	}
	return leaseOf(key, out.Attributes)
}

// Get reads the lease of key; found is false when it does not exist.
func (s *LeaseStore) Get(ctx context.Context, key string) (l Lease, found bool, err error) {
	k, err := s.ctl.key(s.id, key)
	if err != nil {
		return Lease{}, false, err
	}
	out, err := s.ctl.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.ctl.table, Key: k, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Lease{}, false, fmt.Errorf("lease %s/%s: get: %w", s.id, key, err)
	}
	if out.Item == nil {
		return Lease{}, false, nil
	}
	l, err = leaseOf(key, out.Item)
	return l, err == nil, err
}

// List reads every lease of the group, by key.
func (s *LeaseStore) List(ctx context.Context) (map[string]Lease, error) {
	out := map[string]Lease{}
	err := s.ctl.query(ctx, s.id, false, func(item Item) error {
		sk, ok := item[controlSK].(*types.AttributeValueMemberS)
		if !ok {
			return fmt.Errorf("item without S attribute %q", controlSK)
		}
		if _, ok := item[leaseCounter]; !ok {
			return nil // not a lease
		}
		l, err := leaseOf(sk.Value, item)
		if err != nil {
			return err
		}
		out[sk.Value] = l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("leases %s: list: %w", s.id, err)
	}
	return out, nil
}

// leaseOf reads a lease from its item.
func leaseOf(key string, item Item) (Lease, error) {
	l := Lease{Key: key}
	if v, ok := item[leaseOwner].(*types.AttributeValueMemberS); ok {
		l.Owner = v.Value
	}
	num := func(name string) (int64, error) {
		v, ok := item[name].(*types.AttributeValueMemberN)
		if !ok {
			return 0, nil
		}
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("lease %s: attribute %s: %w", key, name, err)
		}
		return n, nil
	}
	var err error
	if l.Counter, err = num(leaseCounter); err != nil {
		return Lease{}, err
	}
	ms, err := num(leaseExpires)
	if err != nil {
		return Lease{}, err
	}
	if ms > 0 {
		l.Expires = time.UnixMilli(ms)
	}
	if v, ok := item[controlValue].(*types.AttributeValueMemberB); ok {
		l.Value = v.Value
	}
	return l, nil
}

// renewDeadline is when a renewal attempt started at now gives up. The first
// attempt of a period may run until the last sixth of the lease, which is
// kept for a second attempt (the ticker has queued the next tick by then):
// the SDK sets no deadline of its own on a request, so one request stalled on
// a half-open connection would otherwise hold the renewal until the lease
// expired, and the lease would be lost although the table answers. A second
// attempt may run until the lease expires, no longer.
func renewDeadline(now, expires time.Time, d time.Duration) time.Time {
	if last := expires.Add(-d / 6); now.Before(last) {
		return last
	}
	return expires
}

// Keep renews the lease every third of the lease duration until stop is
// called or ctx ends; an attempt that does not answer in time is given up
// and tried again before the lease expires (renewDeadline). A renewal whose answer was lost (a timeout) but that
// was applied is recognised (the lease still names this worker, with a
// higher counter) and adopted; the lease's owner must therefore be unique
// to one Keep at a time, as a worker name is among processes and a lease
// among one worker's goroutines. The context it returns (derived from ctx) is
// cancelled when the lease is lost: a renewal failed with ErrLeaseLost (the
// lease was taken over), or none succeeded before the lease expired (the
// control table was out of reach: another worker may take it over now).
// The worker does the leased work under that context, so that it stops
// writing as soon as the lease is no longer its own; context.Cause tells
// why.
//
// stop ends the renewals and returns the lease as last renewed (to Release
// it, or to record the work done under a condition on it) and the reason
// the lease was lost, nil if it was not.
func (s *LeaseStore) Keep(ctx context.Context, l Lease) (held context.Context, stop func() (Lease, error)) {
	held, cancel := context.WithCancelCause(ctx)
	quit := make(chan struct{})
	done := make(chan struct{})
	current := l
	go func() {
		defer close(done)
		tick := time.NewTicker(s.duration / 3)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-held.Done():
				return
			case <-tick.C:
			}
			rctx, rcancel := context.WithDeadline(held, renewDeadline(s.now(), current.Expires, s.duration))
			next, err := s.Renew(rctx, current)
			rcancel()
			if errors.Is(err, ErrLeaseLost) {
				// A renewal that timed out may have been applied all the
				// same: the counter moved, but the lease is still this
				// worker's (no other writes its owner), so it is adopted.
				// The read may take until the lease expires, no longer: the
				// worker must stop by then unless it can show the lease is
				// still its own (another may take it over after). A failed
				// read is not a lost lease: tried again at the next tick,
				// until the lease expires (renewDeadline leaves the read
				// after a first attempt the last sixth of the lease).
				gctx, gcancel := context.WithDeadline(held, current.Expires)
				seen, found, gerr := s.Get(gctx, current.Key)
				gcancel()
				switch {
				case gerr != nil:
					err = gerr
				case found && seen.Owner == s.owner && seen.Counter > current.Counter:
					next, err = seen, nil
				}
			}
			switch {
			case err == nil:
				current = next
			case errors.Is(err, ErrLeaseLost):
				cancel(err)
				return
			case !s.now().Before(current.Expires):
				cancel(fmt.Errorf("lease %s/%s: %w: expired at %s without a renewal (last error: %w)",
					s.id, current.Key, ErrLeaseLost, current.Expires.Format(time.RFC3339Nano), err))
				return
			}
		}
	}()
	return held, func() (Lease, error) {
		close(quit)
		<-done
		err := context.Cause(held)
		if !errors.Is(err, ErrLeaseLost) {
			err = nil
		}
		cancel(nil)
		return current, err
	}
}
