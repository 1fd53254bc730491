package extract

import (
	"reflect"
	"testing"
)

func TestComparePartitions(t *testing.T) {
	p := func(oid, node uint32, name string) Partition { return Partition{OID: oid, Name: name, FileNode: node} }
	old := Partitions{1: p(1, 11, "public.p1"), 2: p(2, 12, "public.p2"), 3: p(3, 13, "public.p3")}
	for _, tc := range []struct {
		name string
		cur  Partitions
		want PartitionChanges
	}{
		{"same", Partitions{1: p(1, 11, "public.p1"), 2: p(2, 12, "public.p2"), 3: p(3, 13, "public.p3")}, PartitionChanges{}},
		{"renamed is the same partition", Partitions{1: p(1, 11, "public.q1"), 2: p(2, 12, "public.p2"), 3: p(3, 13, "public.p3")}, PartitionChanges{}},
		{"detached or dropped", Partitions{2: p(2, 12, "public.p2")},
			PartitionChanges{Gone: []Partition{p(1, 11, "public.p1"), p(3, 13, "public.p3")}}},
		{"truncated", Partitions{1: p(1, 11, "public.p1"), 2: p(2, 99, "public.p2"), 3: p(3, 13, "public.p3")},
			PartitionChanges{Rewritten: []Partition{p(2, 99, "public.p2")}}},
		{"attached", Partitions{1: p(1, 11, "public.p1"), 2: p(2, 12, "public.p2"), 3: p(3, 13, "public.p3"), 7: p(7, 17, "public.p0")},
			PartitionChanges{Added: []Partition{p(7, 17, "public.p0")}}},
		{"all at once", Partitions{2: p(2, 98, "public.p2"), 3: p(3, 13, "public.p3"), 8: p(8, 18, "public.p8")},
			PartitionChanges{Gone: []Partition{p(1, 11, "public.p1")}, Rewritten: []Partition{p(2, 98, "public.p2")}, Added: []Partition{p(8, 18, "public.p8")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ComparePartitions(old, tc.cur)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.Empty() != tc.want.Empty() {
				t.Errorf("Empty %v", got.Empty())
			}
		})
	}
}
