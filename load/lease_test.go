package load

import (
	"errors"
	"testing"
	"time"
)

func TestLeaseExpired(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		l             Lease
		expired, free bool
	}{
		{"free", Lease{Key: "k"}, false, true},
		{"held, live", Lease{Owner: "a", Expires: now.Add(time.Millisecond)}, false, false},
		{"held, expiring now", Lease{Owner: "a", Expires: now}, true, false},
		{"held, expired", Lease{Owner: "a", Expires: now.Add(-time.Second)}, true, false},
	} {
		if got := tc.l.Expired(now); got != tc.expired {
			t.Errorf("%s: Expired = %v, want %v", tc.name, got, tc.expired)
		}
		if got := tc.l.Free(); got != tc.free {
			t.Errorf("%s: Free = %v, want %v", tc.name, got, tc.free)
		}
	}
}

func TestNewLeaseStoreValidates(t *testing.T) {
	for _, tc := range []struct {
		id, owner string
		d         time.Duration
	}{{"", "a", time.Second}, {"g", "", time.Second}, {"g", "a", 0}} {
		if _, err := NewLeaseStore(nil, tc.id, tc.owner, tc.d); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("NewLeaseStore(%q, %q, %s): %v, want ErrInvalidRequest", tc.id, tc.owner, tc.d, err)
		}
	}
}

func TestRenewDeadline(t *testing.T) {
	const d = 12 * time.Second
	renewed := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	expires := renewed.Add(d)
	for _, tc := range []struct {
		name string
		at   time.Duration // after the last renewal
		want time.Duration // after the last renewal
	}{
		{"first attempt, at a third", d / 3, 10 * time.Second},
		{"a failed first attempt's retry, at two thirds", 2 * d / 3, 10 * time.Second},
		{"second attempt, after a stalled first", 10 * time.Second, d},
		{"late attempt", 11 * time.Second, d},
		{"expired", 13 * time.Second, d},
	} {
		if got := renewDeadline(renewed.Add(tc.at), expires, d).Sub(renewed); got != tc.want {
			t.Errorf("%s: deadline %s after the renewal, want %s", tc.name, got, tc.want)
		}
	}
}
