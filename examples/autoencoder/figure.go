package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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
	for _, e := range entries {
		ec := e.config(c)
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
