package verify

import (
	"encoding/hex"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// finding is a Finding with what re-checks and repairs need.
type finding struct {
	Finding
	tc      *tableCheck
	keyID   string
	itemKey transform.Item // the item's key attributes
	pk      []string       // source primary key values (text form); nil when unknown
	version extract.Position
	hasVer  bool // the item was seen with a _version
	// deadItem: an extra item relabelled dead-lettered (the stale item of a
	// dead-lettered row), not a source row.
	deadItem bool
}

// tableCheck is the state of one source table's check.
type tableCheck struct {
	tp       *transform.TablePlan // nil for the "(unmapped)" collector
	rep      *TableReport
	max      int
	keyNames []string    // "(unmapped)": the target's key attributes
	dead     DeadLetters // rows known to be dead-lettered (nil: none)
	deadIdx  deadIndex   // dead, by the primary key columns items store
	// deadItems counts the dead-lettered findings that are items, not
	// source rows (they do not reduce Matching).
	deadItems int64

	chunks   []extract.Chunk
	nb       int      // buckets (a power of two)
	exp, act []Digest // per bucket: source side, DynamoDB side
	sel      []bool   // buckets of the current drill-down round

	mu       sync.Mutex
	findings []*finding
	held     map[string]transform.Item // drill-down: items of selected buckets
}

// add counts a finding and keeps it if it is among the first max findings in
// report order (so that a truncated list is the same on every run). It is
// not called once re-checks have started.
func (tc *tableCheck) add(f *finding) {
	tc.dead.relabel(&f.Finding)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.count(f.Kind, 1)
	if f.deadItem && f.Kind == KindDeadLettered {
		tc.deadItems++
	}
	f.tc = tc
	var dropped bool
	tc.findings, dropped = keepSmallest(tc.findings, f, tc.max, func(a, b *finding) int { return compareFindings(a.Finding, b.Finding) })
	if dropped {
		tc.rep.FindingsTruncated = true
	}
}

// explainExtra relabels an extra item as dead-lettered when its own primary
// key columns name a row of the dead-letter files (DeadLetters.relabelItem).
// Call it before add.
func (tc *tableCheck) explainExtra(f *finding, item transform.Item) {
	f.deadItem = tc.dead.relabelItem(tc.tp, &tc.deadIdx, &f.Finding, item)
}

// keepSmallest adds x to h, a max-heap (by cmp) of at most n elements, so
// that h holds the n smallest elements seen; dropped reports that an element
// did not fit.
func keepSmallest[T any](h []T, x T, n int, cmp func(a, b T) int) (out []T, dropped bool) {
	if len(h) < n {
		h = append(h, x)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if cmp(h[i], h[p]) <= 0 {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
		return h, false
	}
	if n == 0 || cmp(x, h[0]) >= 0 {
		return h, true
	}
	h[0] = x
	for i := 0; ; {
		l, r, big := 2*i+1, 2*i+2, i
		if l < len(h) && cmp(h[l], h[big]) > 0 {
			big = l
		}
		if r < len(h) && cmp(h[r], h[big]) > 0 {
			big = r
		}
		if big == i {
			break
		}
		h[i], h[big] = h[big], h[i]
		i = big
	}
	return h, true
}

func (tc *tableCheck) count(kind string, n int64) {
	switch kind {
	case KindMissing:
		tc.rep.Missing += n
	case KindExtra:
		tc.rep.Extra += n
	case KindDiffers:
		tc.rep.Differing += n
	case KindInFlight:
		tc.rep.InFlight += n
	case KindUnconvertible:
		tc.rep.Unconvertible += n
	case KindDeadLettered:
		tc.rep.DeadLettered += n
	}
}

// setKind moves a finding from one kind to another (or drops it: kind "").
func (tc *tableCheck) setKind(f *finding, kind string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.count(f.Kind, -1)
	if kind == "" {
		tc.findings = slices.DeleteFunc(tc.findings, func(g *finding) bool { return g == f })
		return
	}
	f.Kind = kind
	tc.count(kind, 1)
}

// report returns the table's report with its findings sorted.
func (tc *tableCheck) report() TableReport {
	r := *tc.rep
	r.Matching = max(0, r.SourceRows-r.Missing-r.Differing-r.InFlight-r.Unconvertible-(r.DeadLettered-tc.deadItems))
	r.Findings = make([]Finding, 0, len(tc.findings))
	for _, f := range tc.findings {
		r.Findings = append(r.Findings, f.Finding)
	}
	SortFindings(r.Findings)
	return r
}

// SortFindings orders findings by table, kind, key and position (stable
// reports for stable input).
func SortFindings(fs []Finding) { slices.SortFunc(fs, compareFindings) }

func compareFindings(a, b Finding) int {
	if c := strings.Compare(a.Table, b.Table); c != 0 {
		return c
	}
	if c := strings.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := compareKeys(a.Key, b.Key); c != 0 {
		return c
	}
	return strings.Compare(a.Position, b.Position)
}

// compareKeys orders "col=value, col=value" keys with integer values compared
// by value.
func compareKeys(a, b string) int {
	for a != "" && b != "" {
		var pa, pb string
		pa, a, _ = strings.Cut(a, ", ")
		pb, b, _ = strings.Cut(b, ", ")
		ca, va, _ := strings.Cut(pa, "=")
		cb, vb, _ := strings.Cut(pb, "=")
		if c := strings.Compare(ca, cb); c != 0 {
			return c
		}
		if isDigits(va) && isDigits(vb) && len(va) != len(vb) {
			return len(va) - len(vb)
		}
		if c := strings.Compare(va, vb); c != 0 {
			return c
		}
	}
	return strings.Compare(a, b)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// keyOfItem returns the item's key identity (as transform.Key builds it) and
// its key attributes, for a table's key design.
func keyOfItem(tp *transform.TablePlan, item transform.Item) (string, transform.Item, bool) {
	pk, ok := item[tp.PK.Name].(*types.AttributeValueMemberS)
	if !ok {
		return "", nil, false
	}
	key := transform.Item{tp.PK.Name: pk}
	id := pk.Value
	if tp.SK != nil {
		sk, ok := item[tp.SK.Name].(*types.AttributeValueMemberS)
		if !ok {
			return "", nil, false
		}
		key[tp.SK.Name] = sk
		id += "\x00" + sk.Value
	}
	return id, key, true
}

// renderKey renders key attributes for reports: strings as they are.
func renderKey(key transform.Item) map[string]string {
	out := make(map[string]string, len(key))
	for k, v := range key {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			out[k] = s.Value
		} else {
			out[k] = Render(v)
		}
	}
	return out
}

// pkOfRow returns the row's primary key values in key order.
func pkOfRow(tp *transform.TablePlan, row extract.Row) []string {
	out := make([]string, len(tp.Source.PK))
	for i, idx := range tp.Source.PK {
		out[i] = row[idx].Text
	}
	return out
}

// pkOfItem derives the source primary key from the item's own columns (stored
// under their source names), in a text form PostgreSQL accepts as a literal of
// the column's type.
func pkOfItem(tp *transform.TablePlan, item transform.Item) ([]string, bool) {
	out := make([]string, len(tp.Source.PK))
	for i, idx := range tp.Source.PK {
		switch v := item[tp.Source.Columns[idx].Name].(type) {
		case *types.AttributeValueMemberS:
			out[i] = v.Value
		case *types.AttributeValueMemberN:
			out[i] = v.Value
		case *types.AttributeValueMemberB:
			out[i] = `\x` + hex.EncodeToString(v.Value)
		case *types.AttributeValueMemberBOOL:
			out[i] = map[bool]string{true: "t", false: "f"}[v.Value]
		default:
			return nil, false
		}
	}
	return out, true
}

// keyString renders primary key values as "col=value, col=value".
func keyString(tp *transform.TablePlan, pk []string) string {
	var b strings.Builder
	for i, idx := range tp.Source.PK {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tp.Source.Columns[idx].Name)
		b.WriteByte('=')
		if i < len(pk) {
			b.WriteString(pk[i])
		}
	}
	return b.String()
}

// itemVersion reads an item's _version.
func itemVersion(item transform.Item) (extract.Position, bool) {
	n, ok := item[transform.AttrVersion].(*types.AttributeValueMemberN)
	if !ok {
		return extract.Position{}, false
	}
	p, err := extract.ParseVersion(n.Value)
	return p, err == nil
}
