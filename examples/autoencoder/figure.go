package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/datasets"
)

// entry is one curve of a figure: a method (-opt) with a normalisation.
type entry struct {
	label, opt, norm string
}

// config returns c set up for the entry's run.
func (e entry) config(c config) config {
	c.opt, c.norm = e.opt, e.norm
	c.figure = ""
	return c
}

// dir returns the directory under out of the entry's log.
func (e entry) dir(out string) string {
	return filepath.Join(out, strings.NewReplacer("+", "", " ", "", ",", "-", "α", "alpha").Replace(strings.ToLower(e.label)))
}

// figures are the two experiments that thesis §3.4.3 planned and left
// empty ("WIP"): figure 3.1 compares SGD, centered gradient descent and
// mean-only batch normalisation; figure 3.2 compares ACP with a fixed α,
// ACP with the heuristic α, natural neural networks, K-FAC and batch
// normalisation.
var figures = map[string][]entry{
	"3.1": {
		{"SGD", "sgd", "none"},
		{"centered GD", "centered", "none"},
		{"SGD + mean-only BN", "sgd", "meanbn"},
	},
	"3.2": {
		{"ACP, fixed α", "acp-fixed", "none"},
		{"ACP, heuristic α", "acp", "none"},
		{"NNN", "nnn", "none"},
		{"K-FAC", "kfac", "none"},
		{"SGD + BN", "sgd", "bn"},
	},
	// race runs every method of the table but newton (whose exact blocks do
	// not fit the benchmark's layers) for the same training time from the
	// same initialization, evaluating on the full training set at the
	// training times of raceTimes (see runFigure).
	"race": {
		{"K-FAC", "kfac", "none"},
		{"EKFAC", "ekfac", "none"},
		{"Shampoo", "shampoo", "none"},
		{"SOAP", "soap", "none"},
		{"Hessian-free", "hf", "none"},
		{"ACP, heuristic α", "acp", "none"},
		{"ACP, fixed α", "acp-fixed", "none"},
		{"NNN", "nnn", "none"},
		{"centered GD", "centered", "none"},
		{"Adam", "adam", "none"},
		{"RMSProp", "rmsprop", "none"},
		{"Nesterov", "nesterov", "none"},
		{"SGD", "sgd", "none"},
	},
	// baselines completes the README's table with the usual first-order
	// methods under the same budget.
	"baselines": {
		{"Nesterov", "nesterov", "none"},
		{"RMSProp", "rmsprop", "none"},
		{"Adam", "adam", "none"},
	},
}

// command returns the go run command that reproduces this run.
func command() string {
	cmd := "go run ./examples/autoencoder"
	if b := secondorder.Backend(); strings.HasPrefix(b, "openblas") && !strings.Contains(b, "run time") {
		cmd = "go run -tags openblas ./examples/autoencoder"
	}
	return strings.Join(append([]string{cmd}, os.Args[1:]...), " ")
}

// runFigure trains each method of the figure for the same budget with the
// same seed and writes, under c.out, one directory of logs per method, the
// plots against updates and against training seconds, and a Markdown table
// of the final errors.
func runFigure(c config, data *datasets.MNIST, w io.Writer) error {
	entries := figures[c.figure]
	var curves []curve
	var table strings.Builder
	fmt.Fprintf(&table, "| method | updates | training seconds | train_err | test_err |\n|---|---|---|---|---|\n")
	race := c.figure == "race"
	for _, e := range entries {
		if !c.trains(e) {
			// -methods: the curve of an earlier run, when there is one.
			cv, ok, err := readCurve(e.dir(c.out))
			if err != nil {
				return err
			}
			if ok {
				cv.name = e.label
				curves = append(curves, cv)
				last := cv.points[len(cv.points)-1]
				fmt.Fprintf(&table, "| %s | %d | %.0f | %.3f | %.3f |\n", e.label, last.update, last.seconds, last.trainErr, last.testErr)
				fmt.Fprintf(w, "\n== figure %s: %s from %s\n", c.figure, e.label, filepath.Join(e.dir(c.out), "log.csv"))
			}
			continue
		}
		ec := e.config(c)
		if race {
			ec.logAt = raceTimes(c.budget)
			if !c.evalSet {
				ec.evalSize = 0 // the full sets
			}
		}
		dir := e.dir(c.out)
		fmt.Fprintf(w, "\n== figure %s: %s\n", c.figure, e.label)
		sum, err := train(ec, data, w, dir)
		if err != nil {
			return fmt.Errorf("figure %s, %s: %w", c.figure, e.label, err)
		}
		curves = append(curves, curve{name: e.label, points: sum.curve})
		fmt.Fprintf(&table, "| %s | %d | %.0f | %.3f | %.3f |\n", e.label, sum.updates, sum.seconds, sum.trainErr, sum.testErr)
	}
	budget := fmt.Sprintf("%d updates", c.updates)
	if c.budget > 0 {
		budget = fmt.Sprintf("%v of training", c.budget)
		if c.updates > 0 {
			budget += fmt.Sprintf(" or %d updates", c.updates)
		}
	}
	title := fmt.Sprintf("Figure %s: %s, batch %d, %s", c.figure, c.arch, c.batch, budget)
	if race {
		title = fmt.Sprintf("Race: %s, batch %d, %s per method, full training set", c.arch, c.batch, budget)
		path := filepath.Join(c.out, "race.csv")
		if err := writeRaceCSV(path, curves); err != nil {
			return err
		}
		fmt.Fprintln(w, "wrote", path)
		table.Reset()
		writeRaceTable(&table, curves, c.budget)
	}
	for _, bySeconds := range []bool{false, true} {
		name := "updates"
		if bySeconds {
			name = "seconds"
		}
		path := filepath.Join(c.out, fmt.Sprintf("figure%s-%s.png", c.figure, name))
		if err := plotCurves(path, title, curves, bySeconds); err != nil {
			return err
		}
		fmt.Fprintln(w, "wrote", path)
	}
	note := fmt.Sprintf("Figure %s, `%s`: full MNIST, net %s, batch %d, %s per method, seed %d, backend %s. "+
		"Errors are squared reconstruction errors per image on the full train and test sets.\n\n",
		c.figure, command(), c.arch, c.batch, budget, c.seed, secondorder.Backend())
	path := filepath.Join(c.out, fmt.Sprintf("figure%s.md", c.figure))
	if err := os.WriteFile(path, []byte(note+table.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s%s", note, table.String())
	return nil
}

// trains reports whether the figure's entry e is trained by this run:
// every entry, or those named by -methods (none for -methods none, which
// redraws the figure from the logs).
func (c config) trains(e entry) bool {
	if c.methods == "" {
		return true
	}
	for _, m := range strings.Split(c.methods, ",") {
		if strings.TrimSpace(m) == e.opt {
			return true
		}
	}
	return false
}

// checkMethods refuses a -methods that names a method outside the figure,
// or -methods without -figure.
func (c config) checkMethods() error {
	if c.methods == "" {
		return nil
	}
	if c.methods == "none" {
		return nil
	}
	for _, m := range strings.Split(c.methods, ",") {
		m = strings.TrimSpace(m)
		found := false
		for _, e := range figures[c.figure] {
			found = found || e.opt == m
		}
		if !found {
			return fmt.Errorf("-methods: %q is not a method of -figure %s", m, c.figure)
		}
	}
	return nil
}

// readCurve reads the evaluations of an earlier run from dir/log.csv; ok
// is false when there is none.
func readCurve(dir string) (cv curve, ok bool, err error) {
	path := filepath.Join(dir, "log.csv")
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return curve{}, false, nil
	}
	if err != nil {
		return curve{}, false, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return curve{}, false, fmt.Errorf("%s: %w", path, err)
	}
	for i, r := range rows {
		if i == 0 {
			continue // header: update,seconds,epoch,train_loss,train_err,test_err
		}
		if len(r) != 6 {
			return curve{}, false, fmt.Errorf("%s: line %d has %d fields, want 6", path, i+1, len(r))
		}
		var p point
		var v [5]float64
		for k, j := range []int{1, 3, 4, 5, 0} {
			if v[k], err = strconv.ParseFloat(r[j], 64); err != nil {
				return curve{}, false, fmt.Errorf("%s: line %d: %w", path, i+1, err)
			}
		}
		p.seconds, p.loss, p.trainErr, p.testErr, p.update = v[0], v[1], v[2], v[3], int(v[4])
		cv.points = append(cv.points, p)
	}
	if len(cv.points) == 0 {
		return curve{}, false, fmt.Errorf("%s: no evaluations", path)
	}
	return cv, true, nil
}

// raceTimes returns the training times at which -figure race evaluates
// every method on the full training set (each evaluation takes about 8 s
// on the benchmark network, outside the training time): roughly geometric,
// and including the horizons of the race's table (1, 5, 10, 30 and 60
// minutes), up to the budget (whose end is always evaluated).
func raceTimes(budget time.Duration) []time.Duration {
	var at []time.Duration
	for _, t := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
		10 * time.Minute, 20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour} {
		if t < budget {
			at = append(at, t)
		}
	}
	return at
}

// raceHorizons are the columns of the race's table.
var raceHorizons = []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}

// writeRaceTable writes the Markdown table of the race: each method's error
// on the full training set at the first evaluation at or after each
// horizon within the budget.
func writeRaceTable(b *strings.Builder, curves []curve, budget time.Duration) {
	var hs []time.Duration
	for _, h := range raceHorizons {
		if h <= budget {
			hs = append(hs, h)
		}
	}
	if len(hs) == 0 || hs[len(hs)-1] != budget {
		hs = append(hs, budget)
	}
	b.WriteString("| method |")
	for _, h := range hs {
		fmt.Fprintf(b, " %s |", shortDuration(h))
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(hs)) + "\n")
	for _, cv := range curves {
		fmt.Fprintf(b, "| %s |", cv.name)
		for _, h := range hs {
			p, ok := atTime(cv.points, h.Seconds())
			if ok {
				fmt.Fprintf(b, " %.2f |", p.trainErr)
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	}
}

// atTime returns the first point at or after sec seconds of training (the
// last point when it ends within a second before sec, as a run ends at its
// budget).
func atTime(points []point, sec float64) (point, bool) {
	for _, p := range points {
		if p.seconds >= sec {
			return p, true
		}
	}
	if n := len(points); n > 0 && points[n-1].seconds >= sec-1 {
		return points[n-1], true
	}
	return point{}, false
}

// shortDuration writes d as "90 s", "5 min" or "1.5 h".
func shortDuration(d time.Duration) string {
	switch {
	case d < 2*time.Minute && d%time.Minute != 0:
		return strconv.FormatFloat(d.Seconds(), 'g', 3, 64) + " s"
	case d < 2*time.Hour:
		return strconv.FormatFloat(d.Minutes(), 'g', 3, 64) + " min"
	}
	return strconv.FormatFloat(d.Hours(), 'g', 3, 64) + " h"
}

// writeRaceCSV writes every evaluation of every method of the race:
// method, training seconds, updates, and the errors on the full training
// and test sets.
func writeRaceCSV(path string, curves []curve) error {
	f, err := os.Create(path) // derived from the logs; run refuses an existing one unless -methods
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"method", "seconds", "update", "train_err", "test_err"})
	for _, cv := range curves {
		for _, p := range cv.points {
			w.Write([]string{cv.name, fmt.Sprintf("%.3f", p.seconds), strconv.Itoa(p.update),
				fmt.Sprintf("%.6g", p.trainErr), fmt.Sprintf("%.6g", p.testErr)})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
