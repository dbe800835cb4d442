package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/secondorder/secondorder/datasets"
)

func needMNIST(t *testing.T) {
	t.Helper()
	if testing.Short() {
		if _, _, err := (datasets.MNISTConfig{NoFetch: true}).Find(); err != nil {
			t.Skip("MNIST not available without fetching:", err)
		}
	}
}

// TestRunTiny draws the curvature of a small autoencoder at two points and
// checks the outputs: a density per point that integrates to about 1 over
// its grid, and for every point the four distances in [0, 1] with EKFAC's
// at most K-FAC's (its eigenvalues are the Frobenius-optimal ones for the
// same basis, George et al. 2018) and the diagonal's the largest on this
// dense layer.
func TestRunTiny(t *testing.T) {
	needMNIST(t)
	dir := t.TempDir()
	c, err := parseFlags([]string{"-arch", "784-12-6-12-784", "-layer", "1", "-at", "0,10", "-steps", "8", "-probes", "2", "-out", dir}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(c, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	rows := readCSV(t, filepath.Join(dir, "blocks.csv"))
	dist := map[string]map[string]float64{}
	for _, r := range rows[1:] {
		v, _ := strconv.ParseFloat(r[2], 64)
		if dist[r[0]] == nil {
			dist[r[0]] = map[string]float64{}
		}
		dist[r[0]][r[1]] = v
		if !(v >= 0 && v <= 1) {
			t.Errorf("update %s, %s: distance %g outside [0, 1]", r[0], r[1], v)
		}
	}
	if len(dist) != 2 {
		t.Fatalf("distances at %d points, want 2:\n%s", len(dist), out.String())
	}
	for u, d := range dist {
		if len(d) != 4 || d["EKFAC"] > d["K-FAC"]+1e-12 || d["diagonal"] < d["K-FAC"] {
			t.Errorf("update %s: %v; want 4 methods, EKFAC ≤ K-FAC ≤ diagonal", u, d)
		}
	}
	spec := readCSV(t, filepath.Join(dir, "spectrum.csv"))
	integral := map[string]float64{}
	var prev []string
	for _, r := range spec[1:] {
		if prev != nil && prev[0] == r[0] {
			x0, _ := strconv.ParseFloat(prev[1], 64)
			x1, _ := strconv.ParseFloat(r[1], 64)
			d0, _ := strconv.ParseFloat(prev[2], 64)
			d1, _ := strconv.ParseFloat(r[2], 64)
			integral[r[0]] += (x1 - x0) * (d0 + d1) / 2
		}
		prev = r
	}
	for u, v := range integral {
		// The Gaussian smoothing puts part of the mass of the extreme
		// nodes outside the grid, at most half of it.
		if v < 0.5 || v > 1.0001 {
			t.Errorf("update %s: density integrates to %g over the grid", u, v)
		}
	}
	for _, name := range []string{"spectrum.png", "blocks.png"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := run(c, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("second run into the same -out: %v, want a refusal", err)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
