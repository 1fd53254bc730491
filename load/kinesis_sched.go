package load

import "container/heap"

// kscheduler hands out PutRecords batches so that per (stream, partition
// key) records go out one at a time, in input order: a key's next record
// becomes ready only when the batch holding its previous one is complete.
// Ready keys are taken in the order of their next record's input position,
// so the output follows the input as closely as the order rule allows. Not
// safe for concurrent use: Put's loop owns it.
type kscheduler struct {
	recs              []Record
	maxRecs, maxBytes int
	streams           []*kstream
	byName            map[string]*kstream
	rr                int // stream to look at first
}

type kstream struct {
	name   string
	queues map[string]*kqueue
	ready  readyHeap
}

// kqueue is the remaining records (input indexes) of one partition key.
type kqueue struct {
	idx []int
}

// kbatch is one PutRecords call: records of distinct keys of one stream.
type kbatch struct {
	stream string
	recs   []*Record
	idx    []int // input index of each record
	queues []*kqueue
}

func newKScheduler(recs []Record, maxRecs, maxBytes int) *kscheduler {
	return &kscheduler{recs: recs, maxRecs: maxRecs, maxBytes: maxBytes, byName: map[string]*kstream{}}
}

// add queues recs[i]; indexes must be added in increasing order.
func (s *kscheduler) add(i int) {
	r := &s.recs[i]
	st := s.byName[r.Stream]
	if st == nil {
		st = &kstream{name: r.Stream, queues: map[string]*kqueue{}}
		s.byName[r.Stream] = st
		s.streams = append(s.streams, st)
	}
	q := st.queues[r.PartitionKey]
	if q == nil {
		q = &kqueue{idx: []int{i}}
		st.queues[r.PartitionKey] = q
		heap.Push(&st.ready, q)
		return
	}
	q.idx = append(q.idx, i)
}

// next returns a batch of ready records, or nil when none is ready. A batch
// always takes its first record, whatever its size.
func (s *kscheduler) next() *kbatch {
	for n := 0; n < len(s.streams); n++ {
		st := s.streams[(s.rr+n)%len(s.streams)]
		if st.ready.Len() == 0 {
			continue
		}
		s.rr = (s.rr + n + 1) % len(s.streams)
		b := &kbatch{stream: st.name}
		bytes := 0
		for st.ready.Len() > 0 && len(b.recs) < s.maxRecs {
			q := st.ready.qs[0]
			r := &s.recs[q.idx[0]]
			if len(b.recs) > 0 && bytes+r.size() > s.maxBytes {
				break
			}
			heap.Pop(&st.ready)
			bytes += r.size()
			b.recs = append(b.recs, r)
			b.idx = append(b.idx, q.idx[0])
			b.queues = append(b.queues, q)
		}
		return b
	}
	return nil
}

// complete takes a finished batch's records off their queues and makes the
// keys with records left ready again.
func (s *kscheduler) complete(b *kbatch) {
	st := s.byName[b.stream]
	for _, q := range b.queues {
		q.idx = q.idx[1:]
		if len(q.idx) > 0 {
			heap.Push(&st.ready, q)
		}
	}
}

// readyHeap orders ready keys by the input index of their next record.
type readyHeap struct {
	qs []*kqueue
}

func (h *readyHeap) Len() int           { return len(h.qs) }
func (h *readyHeap) Less(i, j int) bool { return h.qs[i].idx[0] < h.qs[j].idx[0] }
func (h *readyHeap) Swap(i, j int)      { h.qs[i], h.qs[j] = h.qs[j], h.qs[i] }
func (h *readyHeap) Push(x any)         { h.qs = append(h.qs, x.(*kqueue)) }
func (h *readyHeap) Pop() any {
	q := h.qs[len(h.qs)-1]
	h.qs = h.qs[:len(h.qs)-1]
	return q
}
