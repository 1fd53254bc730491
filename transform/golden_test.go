package transform

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/mappings"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if string(got) != string(want) {
		t.Errorf("output differs from %s (go test -run %s -update rewrites it):\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}

// TestCompileErrorsGolden pins the exact messages a user sees for a mapping
// with one of each problem Compile finds.
func TestCompileErrorsGolden(t *testing.T) {
	m := pagilaMapping(t)
	src := sourceTables()
	rental := findTable(m, "rental")
	rental.SortKey = keyp(t, "sk", "RENTAL#{rental_date}", lineRentalSK)
	rental.GSIs[1].When.Column = "retrun_date"
	rental.GSIs[0].PartitionKey.Name = "staff_id"
	findTable(m, "payment").Source = "public.paymnt"
	film := findTable(m, "film")
	film.Exclude = []mappings.Name{{Name: "fulltxt", Pos: at(lineFilmExclude)}, {Name: "film_id", Pos: at(lineFilmExclude + 1)}}
	film.Types = []mappings.ColumnType{{Column: "special_features", Conv: mappings.ConvEpochMS, Pos: at(lineFilmTypes)}}
	findTable(m, "film_actor").PartitionKey = key(t, "pk", "FILM#{flim_id}", lineFilmActorPK)
	staff := findTable(m, "staff")
	staff.Types[0].Column = "pictur"
	staff.Types[1].Conv = mappings.ConvBinary
	src["public.note"].PK = nil
	_, err := Compile(m, src)
	if err == nil {
		t.Fatal("Compile succeeded")
	}
	golden(t, "compile_errors.golden", []byte(err.Error()+"\n"))
}

func TestGenerateGolden(t *testing.T) {
	golden(t, "generate_fixture.golden", Generate(sourceTables(), "pagila-changes"))
}
