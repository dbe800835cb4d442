package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/secondorder/secondorder/datasets"
)

// TestRunTiny runs the measurement on a small autoencoder: a report at the
// start, every -every updates and after each refresh, with one eigenvalue
// per layer, all finite.
func TestRunTiny(t *testing.T) {
	if testing.Short() {
		if _, _, err := (datasets.MNISTConfig{NoFetch: true}).Find(); err != nil {
			t.Skip("MNIST not available without fetching:", err)
		}
	}
	var out bytes.Buffer
	if err := run(config{arch: "784-12-6-12-784", eps: 1, lr: 0.01, period: 4, updates: 8, every: 2}, &out); err != nil {
		t.Fatal(err)
	}
	var reports int
	for _, line := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(line, "update") {
			continue
		}
		reports++
		_, vals, _ := strings.Cut(line, "per layer:")
		if f := strings.Fields(vals); len(f) != 4 {
			t.Errorf("%d eigenvalues for 4 layers: %q", len(f), line)
		}
		if strings.Contains(line, "NaN") || strings.Contains(line, "Inf") {
			t.Errorf("non-finite value: %q", line)
		}
	}
	// Updates 0 (whitened), 2, 4, 4 (whitened), 6, 8, 8 (whitened).
	if reports != 7 {
		t.Errorf("%d reports, want 7:\n%s", reports, out.String())
	}
}
