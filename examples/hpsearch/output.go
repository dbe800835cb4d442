package main

import (
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/secondorder/secondorder/hpsearch"
)

// thesis holds the numbers of the table of thesis §2.3 (100 searches of 100
// experiments on the thesis's task); the grid's mean is not reported.
var thesis = map[string]struct{ mean, sd string }{
	"grid":   {"–", "0"},
	"random": {"27.02", "0.28"},
	"biased": {"26.61", "0.13"},
}

var methodNames = map[string]string{
	"grid":   "grid search",
	"random": "random search",
	"biased": "biased random search",
}

func fmtF(v float64, prec int) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// verdict compares biased with random search by a one-sided Welch t-test;
// it returns "" when either is missing.
func (c *comparison) verdict() string {
	if c.results["random"] == nil || c.results["biased"] == nil {
		return ""
	}
	r, b := c.stats("random"), c.stats("biased")
	w, ok := welchTest(b.bests, r.bests)
	if !ok {
		return fmt.Sprintf("Biased vs random search: too few searches for a test (biased %s, random %s).", fmtF(b.mean, 4), fmtF(r.mean, 4))
	}
	holds := "yes"
	switch {
	case !(b.mean < r.mean):
		holds = "no"
	case w.pLess >= 0.05:
		holds = "not significantly"
	}
	return fmt.Sprintf("Biased random search beats random search: **%s** (mean best %s vs %s; Welch t = %.2f, df = %.1f, one-sided p = %.2g).",
		holds, fmtF(b.mean, 4), fmtF(r.mean, 4), w.t, w.df, w.pLess)
}

// markdown returns the table and the verdict.
func (c *comparison) markdown() string {
	var b strings.Builder
	b.WriteString("| method | mean best | sd best | searches | experiments | thesis mean | thesis sd |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, m := range c.methods {
		st := c.stats(m)
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s | %s |\n",
			methodNames[m], fmtF(st.mean, 4), fmtF(st.sd, 4), st.searches, st.experiments, thesis[m].mean, thesis[m].sd)
	}
	if v := c.verdict(); v != "" {
		b.WriteString("\n" + v + "\n")
	}
	var failed []string
	for _, m := range c.methods {
		if st := c.stats(m); st.failed > 0 {
			failed = append(failed, fmt.Sprintf("%s %d", m, st.failed))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "\nFailed (diverged) experiments, not counted as results: %s.\n", strings.Join(failed, ", "))
	}
	return b.String()
}

// timing returns the number of experiments and their mean duration.
func (c *comparison) timing() (n int, mean time.Duration) {
	var sum time.Duration
	for _, r := range c.finished() {
		for _, t := range r.history {
			sum += t.Duration
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return n, sum / time.Duration(n)
}

// write writes the outputs under dir.
func (c *comparison) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	writers := []struct {
		name string
		f    func(path string) error
	}{
		{"table.md", c.writeTable},
		{"results.csv", c.writeResults},
		{"trials.csv.gz", c.writeTrials},
		{"fig2.2.png", c.plotExplored},
		{"fig2.3.png", c.plotInteraction},
	}
	for _, wr := range writers {
		if err := wr.f(filepath.Join(dir, wr.name)); err != nil {
			return fmt.Errorf("%s: %w", wr.name, err)
		}
	}
	for _, m := range c.methods {
		r := c.representative(m)
		if r == nil {
			continue
		}
		if err := writeHistory(filepath.Join(dir, "history_"+m+".jsonl"), r.history); err != nil {
			return err
		}
	}
	return nil
}

func (c *comparison) writeTable(path string) error {
	var b strings.Builder
	b.WriteString("# Grid, random and biased random search (thesis §2.3)\n\n")
	fmt.Fprintf(&b, "Best result of each search, mean and sample standard deviation over %d searches of %d experiments per method (lower is better).\n\n", c.searches, c.experiments)
	b.WriteString(c.markdown())
	b.WriteString("\n" + c.setting + "\n\n")
	b.WriteString("Each experiment is a real training run from its own random initialisation and minibatch order, seeded by (search, experiment index); the methods propose their points independently. " +
		"The grid is the same in every search, so the grid's standard deviation is the spread due to initialisation and minibatch noise alone " +
		"(the thesis's 0 is that of one deterministic grid search). The thesis's numbers are on its own task, so only the pattern compares, not the values.\n\n")
	n, mean := c.timing()
	fmt.Fprintf(&b, "%d experiments, %.3f s each on average", n, mean.Seconds())
	if c.elapsed > 0 {
		fmt.Fprintf(&b, ", in %s on %d workers", c.elapsed.Round(time.Second), c.workers)
	}
	b.WriteString(".\n\n")
	reps := []string{}
	for _, m := range c.methods {
		if r := c.representative(m); r != nil {
			reps = append(reps, fmt.Sprintf("%s search %d (best %.4f)", m, r.search+1, r.best))
		}
	}
	fmt.Fprintf(&b, "Figure 2.2 (`fig2.2.png`) and `history_<method>.jsonl` show the search with the median best result of each method: %s. "+
		"Figure 2.3 (`fig2.3.png`) bins all %d experiments.\n\n", strings.Join(reps, ", "), n)
	if c.command != "" {
		fmt.Fprintf(&b, "Command: `%s`\n", c.command)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func (c *comparison) writeResults(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"method", "search", "best", "lr", "alpha"})
	for _, r := range c.finished() {
		row := []string{r.method, strconv.Itoa(r.search + 1), "NaN", "NaN", "NaN"}
		if r.ok {
			row[2], row[3], row[4] = fmtG(r.best), fmtG(r.point.Get("lr")), fmtG(r.point.Get("alpha"))
		}
		w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fmtG formats v exactly (the shortest representation that reads back as
// v).
func fmtG(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func (c *comparison) writeTrials(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	w := csv.NewWriter(zw)
	w.Write(trialsHeader)
	for _, r := range c.finished() {
		for _, t := range r.history {
			w.Write([]string{r.method, strconv.Itoa(r.search + 1), strconv.Itoa(t.Index),
				fmtG(t.Point.Get("lr")), fmtG(t.Point.Get("alpha")), fmtG(t.Value),
				strconv.FormatFloat(t.Duration.Seconds(), 'f', 4, 64)})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// trialsHeader is the header of trials.csv.gz; loss is NaN for a failed
// experiment, seconds its duration.
var trialsHeader = []string{"method", "search", "index", "lr", "alpha", "loss", "seconds"}

// trials returns every experiment of the finished searches.
func (c *comparison) trials() []hpsearch.Trial {
	var ts []hpsearch.Trial
	for _, r := range c.finished() {
		ts = append(ts, r.history...)
	}
	return ts
}

// loadTrials reads a trials.csv.gz written by writeTrials back into a
// comparison of the given methods over space (the methods absent from the
// file are left out).
func loadTrials(path string, methods []string, space *hpsearch.Space) (*comparison, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rows, err := csv.NewReader(zr).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(trialsHeader, ",") {
		return nil, fmt.Errorf("%s: header is not %s", path, strings.Join(trialsHeader, ","))
	}
	type key struct {
		method string
		search int
	}
	hist := map[key][]hpsearch.Trial{}
	searches, experiments := 0, 0
	for n, row := range rows[1:] {
		bad := func(what string) error { return fmt.Errorf("%s: line %d: bad %s", path, n+2, what) }
		s, err := strconv.Atoi(row[1])
		if err != nil || s < 1 {
			return nil, bad("search")
		}
		idx, err := strconv.Atoi(row[2])
		if err != nil || idx < 0 {
			return nil, bad("index")
		}
		var v [4]float64
		for j := range v {
			if v[j], err = strconv.ParseFloat(row[3+j], 64); err != nil {
				return nil, bad(trialsHeader[3+j])
			}
		}
		p, err := space.NewPoint(map[string]float64{"lr": v[0], "alpha": v[1]})
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w (give the run's -lr and -alpha)", path, n+2, err)
		}
		t := hpsearch.Trial{Index: idx, Point: p, Value: v[2], Duration: time.Duration(v[3] * float64(time.Second))}
		if math.IsNaN(v[2]) || math.IsInf(v[2], 0) {
			t.Value, t.Err = math.NaN(), hpsearch.ErrNotFinite
		}
		k := key{row[0], s - 1}
		hist[k] = append(hist[k], t)
		searches = max(searches, s)
		experiments = max(experiments, len(hist[k]))
	}
	cmp := &comparison{space: space, searches: searches, experiments: experiments, results: map[string][]*searchResult{}}
	for _, m := range methods {
		var rs []*searchResult
		for s := range searches {
			h, ok := hist[key{m, s}]
			if !ok {
				rs = append(rs, nil)
				continue
			}
			r := &searchResult{method: m, search: s, history: h}
			res := hpsearch.Result{History: h}
			r.point, r.best, r.ok = res.Best()
			if !r.ok {
				r.best = math.NaN()
			}
			rs = append(rs, r)
		}
		if len(hist) > 0 && !allNil(rs) {
			cmp.methods = append(cmp.methods, m)
			cmp.results[m] = rs
		}
	}
	if len(cmp.methods) == 0 {
		return nil, fmt.Errorf("%s: no experiment of the methods %s", path, strings.Join(methods, ", "))
	}
	return cmp, nil
}

func allNil(rs []*searchResult) bool {
	for _, r := range rs {
		if r != nil {
			return false
		}
	}
	return true
}

func writeHistory(path string, h []hpsearch.Trial) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := hpsearch.WriteHistory(f, h); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
