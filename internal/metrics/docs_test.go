package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// knownNames are ferry's metric names, as registered (histograms with the
// series they expand into).
func knownNames(t *testing.T) map[string]bool {
	t.Helper()
	m := New("sync", "ferry")
	ch := make(chan *prometheus.Desc, 100)
	collector{m}.Describe(ch)
	m.batch.Describe(ch)
	m.commit.Describe(ch)
	close(ch)
	names := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		name := fq.FindStringSubmatch(d.String())[1]
		names[name] = true
	}
	for _, h := range []string{"ferry_batch_duration_seconds", "ferry_commit_to_applied_seconds"} {
		for _, s := range []string{"_bucket", "_count", "_sum"} {
			names[h+s] = true
		}
	}
	return names
}

// Every metric is documented in the README, and the Grafana dashboard is
// valid JSON that uses only metrics that exist.
func TestMetricsDocumented(t *testing.T) {
	names := knownNames(t)
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range names {
		if strings.HasPrefix(name, "ferry_") && !strings.HasSuffix(name, "_bucket") && !strings.HasSuffix(name, "_count") &&
			!strings.HasSuffix(name, "_sum") && !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("README.md does not document %s", name)
		}
	}
	for name := range names {
		if !strings.HasPrefix(name, "ferry_") {
			t.Errorf("%s: not prefixed ferry_", name)
		}
		if !regexp.MustCompile(`_(total|bytes|seconds|bucket|count|sum|estimated|done|active)$`).MatchString(name) {
			t.Errorf("%s: no unit suffix", name)
		}
	}
	dash, err := os.ReadFile(filepath.Join(root, "docs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	used := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, name := range regexp.MustCompile(`ferry_[a-z_]+`).FindAllString(tg.Expr, -1) {
				used++
				if !names[name] {
					t.Errorf("dashboard panel %q uses %s, which ferry does not export", p.Title, name)
				}
			}
		}
	}
	if used == 0 {
		t.Error("the dashboard uses no ferry metric")
	}
}
