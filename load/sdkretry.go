package load

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// NewSDKRetryer is the retryer of ferry's AWS clients (the CLI's and the
// Lambda applier's): the SDK's standard retryer (jittered exponential
// backoff; a user's AWS_MAX_ATTEMPTS still applies) with maxAttempts
// attempts, waits capped at maxBackoff (0: the SDK's 20 s), and without its
// client-side retry quota.
//
// The quota is a circuit breaker for interactive clients: after a few
// hundred throttled or failed requests it stops retrying at all, so under
// sustained throttling every write of a batch would fail at its first error,
// the whole batch would be sent again, and a migration would livelock
// instead of slowing down (seen in TestSyncUnderFaults). ferry's own
// [RetryLoop] above the SDK bounds the load instead.
func NewSDKRetryer(maxAttempts int, maxBackoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		if maxBackoff > 0 {
			o.MaxBackoff = maxBackoff
		}
		o.RateLimiter = ratelimit.None
	})
}
