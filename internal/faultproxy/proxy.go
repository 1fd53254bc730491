// Package faultproxy is an in-process HTTP proxy for tests that sits between
// ferry and an AWS JSON endpoint (dynalite, kinesalite) and injects the
// failures production brings: throttling, partial batches, server errors,
// connection resets, latency spikes and outages. ferry reaches it through the
// standard AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_KINESIS settings.
//
// Faults are chosen per request by a seeded random generator, per API (the
// X-Amz-Target header, e.g. "DynamoDB_20120810.BatchWriteItem"), and counted.
package faultproxy

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind is a kind of injected fault.
type Kind string

// The faults the proxy injects.
const (
	// Throttle answers 400 with ProvisionedThroughputExceededException or
	// ThrottlingException (alternately), without forwarding.
	Throttle Kind = "throttle"
	// Partial forwards part of a BatchWriteItem and returns the rest as
	// UnprocessedItems, or forwards part of a PutRecords and answers the
	// rest with ErrorCode ProvisionedThroughputExceededException, the
	// response array aligned with the request. Other APIs pass unharmed.
	Partial Kind = "partial"
	// ServerError answers 500 or 503, before forwarding or after (the
	// request then took effect but its answer is lost).
	ServerError Kind = "server_error"
	// Reset closes the connection without an answer (TCP RST), before
	// forwarding or after.
	Reset Kind = "reset"
	// Latency delays the request by Rule.Delay, then forwards it.
	Latency Kind = "latency"
	// Outage is counted for requests refused while the outage switch is on.
	Outage Kind = "outage"
	// Unauthorized answers 400 UnrecognizedClientException without
	// forwarding, as AWS does for wrong credentials (the emulators accept
	// any).
	Unauthorized Kind = "unauthorized"
)

// Rule injects one kind of fault into a share of the requests.
type Rule struct {
	// Target selects requests by X-Amz-Target: an exact value
	// ("Kinesis_20131202.PutRecords"), a prefix ending in "."
	// ("DynamoDB_20120810."), or "" for every request.
	Target string
	Kind   Kind
	// Rate is the probability (0..1) that a selected request gets the fault.
	Rate float64
	// Delay is the length of a latency spike (default 300 ms).
	Delay time.Duration
}

func (r Rule) matches(target string) bool {
	switch {
	case r.Target == "":
		return true
	case strings.HasSuffix(r.Target, "."):
		return strings.HasPrefix(target, r.Target)
	}
	return target == r.Target
}

// OutageMode is how requests fail while the outage switch is on.
type OutageMode int

// Outage modes.
const (
	OutageReset       OutageMode = iota // the connection is reset
	OutageUnavailable                   // 503 ServiceUnavailable
)

// Proxy forwards requests to one upstream endpoint, injecting faults. It is
// safe for concurrent use.
type Proxy struct {
	// URL is the proxy's endpoint, http://127.0.0.1:PORT.
	URL string

	upstream  string
	ln        net.Listener
	srv       *http.Server
	transport *http.Transport

	mu          sync.Mutex
	rng         *rand.Rand
	rules       []Rule
	outage      bool
	outageUntil time.Time
	outageMode  OutageMode
	counts      map[string]int64 // kind + " " + target
	requests    map[string]int64 // target
	flip        bool
}

// Start listens on 127.0.0.1 (a free port) and forwards to upstream
// (http://host:port). seed makes the fault choices repeatable.
func Start(upstream string, seed uint64, rules ...Rule) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{
		URL:       "http://" + ln.Addr().String(),
		upstream:  strings.TrimRight(upstream, "/"),
		ln:        ln,
		transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second, DisableCompression: true},
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		rules:     rules,
		counts:    map[string]int64{},
		requests:  map[string]int64{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Close stops the proxy: the listener and every connection are closed.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	p.transport.CloseIdleConnections()
	return err
}

// DropIdle closes the idle connections on both sides of the proxy (clients'
// kept-alive connections, and the proxy's own to the upstream), so that a
// test can count goroutines without the HTTP connection pools in the way.
func (p *Proxy) DropIdle() {
	p.srv.SetKeepAlivesEnabled(false) // closes idle client connections
	p.srv.SetKeepAlivesEnabled(true)
	p.transport.CloseIdleConnections()
}

// SetRules replaces the fault rules (none: a transparent proxy).
func (p *Proxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = rules
}

// SetOutage turns the outage switch on (every request fails, in mode) or off.
func (p *Proxy) SetOutage(on bool, mode OutageMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outage, p.outageMode, p.outageUntil = on, mode, time.Time{}
}

// OutageFor fails every request for d from now, in mode.
func (p *Proxy) OutageFor(d time.Duration, mode OutageMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outage, p.outageMode, p.outageUntil = true, mode, time.Now().Add(d)
}

// Counts returns how many faults of each kind were injected per target, as
// "kind target" → n.
func (p *Proxy) Counts() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// Injected returns how many faults of kind were injected (all targets).
func (p *Proxy) Injected(kind Kind) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for k, v := range p.counts {
		if strings.HasPrefix(k, string(kind)+" ") {
			n += v
		}
	}
	return n
}

// Requests returns how many requests the proxy received per target.
func (p *Proxy) Requests() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.requests))
	for k, v := range p.requests {
		out[k] = v
	}
	return out
}

// String summarises the injected faults, for test logs.
func (p *Proxy) String() string {
	c := p.Counts()
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d", k, c[k])
	}
	return b.String()
}

// decision is what happens to one request.
type decision struct {
	kind  Kind
	rate  float64
	delay time.Duration
	after bool // server error / reset after forwarding
	code  int  // server error status
	alt   bool // throttle: ThrottlingException instead of ProvisionedThroughputExceededException
	rng   *rand.Rand
}

func (p *Proxy) decide(target string) decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests[target]++
	if p.outage && !p.outageUntil.IsZero() && time.Now().After(p.outageUntil) {
		p.outage = false
	}
	if p.outage {
		p.counts[string(Outage)+" "+target]++
		return decision{kind: Outage, code: int(p.outageMode)}
	}
	for _, r := range p.rules {
		if !r.matches(target) || p.rng.Float64() >= r.Rate {
			continue
		}
		if r.Kind == Partial && target != targetBatchWrite && target != targetPutRecords {
			continue
		}
		d := decision{kind: r.Kind, rate: r.Rate, delay: r.Delay, after: p.rng.IntN(2) == 0}
		switch r.Kind {
		case ServerError:
			d.code = http.StatusInternalServerError
			if p.rng.IntN(2) == 0 {
				d.code = http.StatusServiceUnavailable
			}
		case Throttle:
			p.flip = !p.flip
			d.alt = p.flip
		case Partial:
			// An own generator, so the entry choices need no lock.
			d.rng = rand.New(rand.NewPCG(p.rng.Uint64(), p.rng.Uint64()))
		case Latency:
			if d.delay <= 0 {
				d.delay = 300 * time.Millisecond
			}
		}
		if r.Kind != Partial { // partial batches are counted per entry when built
			p.counts[string(r.Kind)+" "+target]++
		}
		return d
	}
	return decision{}
}

func (p *Proxy) count(kind Kind, target string, n int) {
	p.mu.Lock()
	p.counts[string(kind)+" "+target] += int64(n)
	p.mu.Unlock()
}

const (
	targetBatchWrite = "DynamoDB_20120810.BatchWriteItem"
	targetPutRecords = "Kinesis_20131202.PutRecords"
)

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	target := r.Header.Get("X-Amz-Target")
	d := p.decide(target)
	switch d.kind {
	case Outage:
		if OutageMode(d.code) == OutageUnavailable {
			writeError(w, r, http.StatusServiceUnavailable, "ServiceUnavailable", "injected outage")
		} else {
			reset(w)
		}
		return
	case Throttle:
		code := "ProvisionedThroughputExceededException"
		if d.alt {
			code = "ThrottlingException"
		}
		if strings.HasPrefix(target, "DynamoDB_") {
			code = "com.amazonaws.dynamodb.v20120810#" + code
		}
		writeError(w, r, http.StatusBadRequest, code, "injected throttling: rate of requests exceeds the allowed throughput")
		return
	case Unauthorized:
		code := "UnrecognizedClientException"
		if strings.HasPrefix(target, "DynamoDB_") {
			code = "com.amazon.coral.service#" + code
		}
		writeError(w, r, http.StatusBadRequest, code, "The security token included in the request is invalid.")
		return
	case Latency:
		t := time.NewTimer(d.delay)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	case ServerError, Reset:
		if !d.after {
			p.fail(w, r, d)
			return
		}
		// The request takes effect upstream; its answer is read (so the
		// upstream connection is reused, not leaked) and thrown away.
		if _, _, _, err := p.forwardRead(r, body); err != nil {
			reset(w)
			return
		}
		p.fail(w, r, d)
		return
	case Partial:
		var status int
		var hdr http.Header
		var out []byte
		var err error
		if target == targetBatchWrite {
			status, hdr, out, err = p.partialBatchWrite(r, body, d.rng)
		} else {
			status, hdr, out, err = p.partialPutRecords(r, body, d.rng)
		}
		if err != nil {
			reset(w)
			return
		}
		respond(w, status, hdr, out)
		return
	}
	status, hdr, out, err := p.forwardRead(r, body)
	if err != nil {
		reset(w)
		return
	}
	respond(w, status, hdr, out)
}

func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, d decision) {
	if d.kind == Reset {
		reset(w)
		return
	}
	name := "InternalServerError"
	if d.code == http.StatusServiceUnavailable {
		name = "ServiceUnavailable"
	}
	writeError(w, r, d.code, name, "injected server error")
}

// forward sends the request upstream and returns the response (body unread).
func (p *Proxy) forward(r *http.Request, body []byte) (*http.Response, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Minute)
	req, err := http.NewRequestWithContext(ctx, r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, nil, err
	}
	for k, vs := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Accept-Encoding", "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
			continue
		}
		req.Header[k] = vs
	}
	req.ContentLength = int64(len(body))
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return resp, cancel, nil
}

// forwardRead forwards and reads the whole answer.
func (p *Proxy) forwardRead(r *http.Request, body []byte) (int, http.Header, []byte, error) {
	resp, cancel, err := p.forward(r, body)
	if err != nil {
		return 0, nil, nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, out, nil
}

func respond(w http.ResponseWriter, status int, hdr http.Header, body []byte) {
	for k, vs := range hdr {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Connection", "Transfer-Encoding", "Keep-Alive":
			continue
		}
		w.Header()[k] = vs
	}
	if w.Header().Get("X-Amz-Crc32") != "" {
		// The body may have been rewritten: the SDK checks this checksum.
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers an AWS JSON protocol error.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/x-amz-json-1.0"
	}
	body := []byte(fmt.Sprintf(`{"__type":%q,"message":%q}`, code, msg))
	h := http.Header{}
	h.Set("Content-Type", ct)
	h.Set("X-Amzn-Requestid", "faultproxy")
	h.Set("X-Amz-Crc32", "0")
	respond(w, status, h, body)
}

// reset closes the client's connection abruptly (RST), answering nothing.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
