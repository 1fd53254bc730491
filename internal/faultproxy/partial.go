package faultproxy

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
)

// pickFailed chooses which of n entries fail: each with probability 1/2, at
// least one.
func pickFailed(n int, rng *rand.Rand) []bool {
	failed := make([]bool, n)
	some := false
	for i := range failed {
		failed[i] = rng.IntN(2) == 0
		some = some || failed[i]
	}
	if !some && n > 0 {
		failed[rng.IntN(n)] = true
	}
	return failed
}

// partialBatchWrite forwards a random part of a BatchWriteItem and returns the
// other entries as UnprocessedItems, merged with the upstream's own.
func (p *Proxy) partialBatchWrite(r *http.Request, body []byte, rng *rand.Rand) (int, http.Header, []byte, error) {
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		return p.forwardRead(r, body)
	}
	var items map[string][]json.RawMessage
	if err := json.Unmarshal(req["RequestItems"], &items); err != nil || len(items) == 0 {
		return p.forwardRead(r, body)
	}
	tables := make([]string, 0, len(items))
	n := 0
	for t, l := range items {
		tables = append(tables, t)
		n += len(l)
	}
	sort.Strings(tables) // map order must not change what the seed picks
	failed := pickFailed(n, rng)
	keep := map[string][]json.RawMessage{}
	unprocessed := map[string][]json.RawMessage{}
	i, nfail := 0, 0
	for _, t := range tables {
		for _, e := range items[t] {
			if failed[i] {
				unprocessed[t] = append(unprocessed[t], e)
				nfail++
			} else {
				keep[t] = append(keep[t], e)
			}
			i++
		}
	}
	p.count(Partial, targetBatchWrite, nfail)
	resp := map[string]json.RawMessage{}
	status := http.StatusOK
	hdr := http.Header{"Content-Type": {r.Header.Get("Content-Type")}, "X-Amz-Crc32": {"0"}}
	if len(keep) > 0 {
		req["RequestItems"], _ = json.Marshal(keep)
		fwd, _ := json.Marshal(req)
		st, h, out, err := p.forwardRead(r, fwd)
		if err != nil {
			return 0, nil, nil, err
		}
		if st != http.StatusOK {
			// The forwarded part failed as a whole: the client retries all of it.
			return st, h, out, nil
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			return 0, nil, nil, fmt.Errorf("faultproxy: BatchWriteItem answer: %w", err)
		}
		status, hdr = st, h
		var up map[string][]json.RawMessage
		if raw, ok := resp["UnprocessedItems"]; ok {
			_ = json.Unmarshal(raw, &up)
		}
		for t, l := range up {
			unprocessed[t] = append(unprocessed[t], l...)
		}
	}
	resp["UnprocessedItems"], _ = json.Marshal(unprocessed)
	out, _ := json.Marshal(resp)
	return status, hdr, out, nil
}

// partialPutRecords forwards a random part of a PutRecords; the other entries
// answer ErrorCode ProvisionedThroughputExceededException, in their places.
func (p *Proxy) partialPutRecords(r *http.Request, body []byte, rng *rand.Rand) (int, http.Header, []byte, error) {
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		return p.forwardRead(r, body)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(req["Records"], &recs); err != nil || len(recs) == 0 {
		return p.forwardRead(r, body)
	}
	failed := pickFailed(len(recs), rng)
	var keep []json.RawMessage
	nfail := 0
	for i, rec := range recs {
		if failed[i] {
			nfail++
		} else {
			keep = append(keep, rec)
		}
	}
	p.count(Partial, targetPutRecords, nfail)
	type entry = map[string]any
	var upRecs []json.RawMessage
	upFailed := 0
	resp := map[string]json.RawMessage{}
	status := http.StatusOK
	hdr := http.Header{"Content-Type": {r.Header.Get("Content-Type")}}
	if len(keep) > 0 {
		req["Records"], _ = json.Marshal(keep)
		fwd, _ := json.Marshal(req)
		st, h, out, err := p.forwardRead(r, fwd)
		if err != nil {
			return 0, nil, nil, err
		}
		if st != http.StatusOK {
			return st, h, out, nil
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			return 0, nil, nil, fmt.Errorf("faultproxy: PutRecords answer: %w", err)
		}
		if err := json.Unmarshal(resp["Records"], &upRecs); err != nil || len(upRecs) != len(keep) {
			return 0, nil, nil, fmt.Errorf("faultproxy: PutRecords answered %d entries for %d records", len(upRecs), len(keep))
		}
		_ = json.Unmarshal(resp["FailedRecordCount"], &upFailed)
		status, hdr = st, h
	}
	merged := make([]json.RawMessage, len(recs))
	j := 0
	for i := range recs {
		if failed[i] {
			merged[i], _ = json.Marshal(entry{
				"ErrorCode":    "ProvisionedThroughputExceededException",
				"ErrorMessage": "Rate exceeded for shard (injected by faultproxy)",
			})
			continue
		}
		merged[i] = upRecs[j]
		j++
	}
	resp["Records"], _ = json.Marshal(merged)
	resp["FailedRecordCount"], _ = json.Marshal(upFailed + nfail)
	out, _ := json.Marshal(resp)
	return status, hdr, out, nil
}
