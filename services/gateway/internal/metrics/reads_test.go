package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReadsStartAtZeroForEverySiteAndOutcome(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewReads(reg, []string{"xsw", "czbooks"})
	if err != nil {
		t.Fatal(err)
	}
	// Every site and outcome exists from the start, so that a hit rate over a quiet
	// outcome is computed, not absent.
	if n := testutil.CollectAndCount(m.reads); n != 2*len(ServedFrom) {
		t.Errorf("%d series, want %d", n, 2*len(ServedFrom))
	}
	m.Read("xsw", ServedDatabase)
	m.Read("xsw", ServedDatabase)
	m.Read("czbooks", ServedQueued)
	for _, c := range []struct {
		site, from string
		want       float64
	}{
		{"xsw", ServedDatabase, 2}, {"czbooks", ServedQueued, 1}, {"xsw", ServedMemory, 0}, {"czbooks", ServedDatabase, 0},
	} {
		if got := testutil.ToFloat64(m.reads.WithLabelValues(c.site, c.from)); got != c.want {
			t.Errorf("reads{%s,%s} = %v, want %v", c.site, c.from, got, c.want)
		}
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
