package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/hpsearch"
	"gonum.org/v1/gonum/mat"
)

// tinyConfig is a comparison small enough for a test: 2 searches of 5
// experiments per method (a 2×2 grid) on a 49-16-4-16-49 autoencoder trained
// for 10 updates on 7×7 images.
func tinyConfig(out string) config {
	c := defaultConfig()
	c.searches, c.experiments, c.workers, c.out = 2, 5, 2, out
	c.pool, c.train, c.eval, c.hidden, c.updates, c.batch = 4, 400, 100, "16-4-16", 10, 20
	c.command = "go test"
	return c
}

func skipWithoutMNIST(t *testing.T) {
	if testing.Short() {
		if _, _, err := (datasets.MNISTConfig{NoFetch: true}).Find(); err != nil {
			t.Skip("MNIST not available without fetching:", err)
		}
	}
}

// TestRunTiny runs a tiny comparison and checks the printed table and every
// output file: the table has a finite mean for each method, results.csv
// has one finite best per search, trials.csv.gz every experiment, the
// histories read back with hpsearch.ReadHistory and the figures are PNGs.
// Skipped only when MNIST cannot be found in -short mode.
func TestRunTiny(t *testing.T) {
	skipWithoutMNIST(t)
	dir := t.TempDir()
	var out bytes.Buffer
	cmp, err := run(context.Background(), tinyConfig(dir), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	for _, m := range []string{"grid search", "random search", "biased random search"} {
		found := false
		for _, line := range strings.Split(text, "\n") {
			if !strings.HasPrefix(line, "| "+m+" |") {
				continue
			}
			found = true
			cells := strings.Split(line, "|")
			if len(cells) != 9 {
				t.Errorf("table row %q has %d cells, want 7", line, len(cells)-2)
				continue
			}
			for _, k := range []int{2, 3} { // mean and sd
				v, err := strconv.ParseFloat(strings.TrimSpace(cells[k]), 64)
				if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					t.Errorf("table row %q: cell %d is not a finite non-negative number", line, k)
				}
			}
			if got := strings.TrimSpace(cells[4]); got != "2" {
				t.Errorf("table row %q: %s searches, want 2", line, got)
			}
		}
		if !found {
			t.Errorf("no table row for %s in\n%s", m, text)
		}
	}
	if !strings.Contains(text, "Biased random search beats random search: **") {
		t.Errorf("no verdict in\n%s", text)
	}

	res := readCSV(t, filepath.Join(dir, "results.csv"))
	if len(res) != 1+3*2 || strings.Join(res[0], ",") != "method,search,best,lr,alpha" {
		t.Fatalf("results.csv: %v, want a header and 6 searches", res)
	}
	for _, row := range res[1:] {
		for _, s := range row[2:] {
			if v, err := strconv.ParseFloat(s, 64); err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
				t.Errorf("results.csv row %v: %q is not a finite positive number", row, s)
			}
		}
	}

	f, err := os.Open(filepath.Join(dir, "trials.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	trials, err := csv.NewReader(zr).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + 2*(4+5+5); len(trials) != want { // grid: 2×2
		t.Errorf("trials.csv.gz has %d lines, want %d", len(trials), want)
	}

	for _, m := range cmp.methods {
		f, err := os.Open(filepath.Join(dir, "history_"+m+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		h, err := hpsearch.ReadHistory(f, cmp.space)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := 5
		if m == "grid" {
			want = 4
		}
		if len(h) != want {
			t.Errorf("history_%s.jsonl has %d trials, want %d", m, len(h), want)
		}
	}
	for _, name := range []string{"fig2.2.png", "fig2.3.png"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 1000 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG (%d bytes)", name, len(b))
		}
	}
	table, err := os.ReadFile(filepath.Join(dir, "table.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(table), "| biased random search |") || !strings.Contains(string(table), "Command: `go test`") {
		t.Errorf("table.md lacks the table or the command:\n%s", table)
	}

	// -replot reads trials.csv.gz back and gives the same table.
	c := tinyConfig(dir)
	c.replot = true
	var again bytes.Buffer
	if _, err := run(context.Background(), c, &again); err != nil {
		t.Fatal(err)
	}
	if want := cmp.markdown(); !strings.Contains(again.String(), want) {
		t.Errorf("-replot printed\n%s\nwant the table\n%s", again.String(), want)
	}
}

// TestExperimentReproducible checks that an experiment is a function of its
// hyperparameters and seed, whatever ran before on the same trainer, and that
// a reasonable learning rate lowers the error of the untrained network.
func TestExperimentReproducible(t *testing.T) {
	skipWithoutMNIST(t)
	data, err := datasets.LoadMNIST("")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := newTask(data.TrainImages, 4, 400, 100, []int{16, 4, 16}, 30, 20)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTrainer(tk)
	ctx := context.Background()
	a, _ := tr.run(ctx, 0.5, 2, experimentRand(1, 3, 4))
	tr.run(ctx, 3, 50, experimentRand(1, 0, 0))
	b, _ := tr.run(ctx, 0.5, 2, experimentRand(1, 3, 4))
	if a != b || math.IsNaN(a) {
		t.Errorf("same experiment gave %v then %v", a, b)
	}
	untrained, _ := newTrainer(&task{sizes: tk.sizes, updates: 1, batch: 20, train: tk.train, eval: tk.eval}).run(ctx, 1e-12, 2, experimentRand(1, 3, 4))
	if !(a < untrained) {
		t.Errorf("trained error %v is not below the untrained %v", a, untrained)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestPool(t *testing.T) {
	x := mat.NewDense(1, 16, nil)
	for j := range 16 {
		x.Set(0, j, float64(j))
	}
	got := pool(x, 4, 2)
	// Blocks of the 4×4 image 0…15: {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15}.
	want := []float64{2.5, 4.5, 10.5, 12.5}
	if !mat.Equal(got, mat.NewDense(1, 4, want)) {
		t.Errorf("pool = %v, want %v", mat.Formatted(got), want)
	}
}

func TestWelch(t *testing.T) {
	// a: mean 3, variance 2.5; b: mean 6, variance 10.
	w, ok := welchTest([]float64{1, 2, 3, 4, 5}, []float64{2, 4, 6, 8, 10})
	if !ok {
		t.Fatal("no test")
	}
	// t = −3/√2.5, df = 2.5²/(0.5²/4 + 2²/4); p by numerical integration of
	// the Student density.
	if math.Abs(w.t+3/math.Sqrt(2.5)) > 1e-12 || math.Abs(w.df-6.25/1.0625) > 1e-9 || math.Abs(w.pLess-0.0537656) > 1e-6 {
		t.Errorf("welch = %+v, want t = −1.8974, df = 5.8824, p = 0.0537656", w)
	}
	if _, ok := welchTest([]float64{1}, []float64{2, 3}); ok {
		t.Error("a test with one value")
	}
	m, sd := meanSD([]float64{1, 2, 3, 4, 5})
	if m != 3 || math.Abs(sd-math.Sqrt(2.5)) > 1e-15 {
		t.Errorf("meanSD = %v, %v; want 3, √2.5", m, sd)
	}
}

// TestRunRejectsBadFlags checks that bad settings are errors naming the flag,
// before any data is loaded.
func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*config)
		want string
	}{
		{func(c *config) { c.searches = 0 }, "-searches"},
		{func(c *config) { c.experiments = -1 }, "-experiments"},
		{func(c *config) { c.workers = 0 }, "-workers"},
		{func(c *config) { c.methods = "grid,bayes" }, "-methods"},
		{func(c *config) { c.methods = "grid,grid" }, "-methods"},
		{func(c *config) { c.hidden = "16-x" }, "-hidden"},
		{func(c *config) { c.lr = "1:0.1" }, "-lr"},
		{func(c *config) { c.alpha = "0:10" }, "-alpha"},
	} {
		c := defaultConfig()
		tc.mod(&c)
		_, err := run(context.Background(), c, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one mentioning %q", err, tc.want)
		}
	}
}

func TestSearchSeedsDiffer(t *testing.T) {
	seen := map[uint64]bool{}
	for _, m := range []string{"grid", "random", "biased"} {
		for s := range 100 {
			seen[searchSeed(1, m, s)] = true
		}
	}
	if len(seen) != 300 {
		t.Errorf("%d distinct seeds for 300 searches", len(seen))
	}
}
