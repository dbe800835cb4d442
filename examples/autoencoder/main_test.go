package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
	"gonum.org/v1/gonum/mat"
)

// TestMain runs the command's main with the arguments in $AUTOENCODER_ARGS
// when $AUTOENCODER_MAIN is set, so that TestMainExitStatus can run it in a
// subprocess.
func TestMain(m *testing.M) {
	if os.Getenv("AUTOENCODER_MAIN") == "1" {
		os.Args = append([]string{"autoencoder"}, strings.Fields(os.Getenv("AUTOENCODER_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// parse returns the configuration of the command line args.
func parse(t *testing.T, args ...string) config {
	t.Helper()
	c, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("flags %q: %v", args, err)
	}
	return c
}

// needMNIST skips the test in -short mode when MNIST is not available
// without fetching it.
func needMNIST(t *testing.T) {
	t.Helper()
	if testing.Short() {
		if _, _, err := (datasets.MNISTConfig{NoFetch: true}).Find(); err != nil {
			t.Skip("MNIST not available without fetching:", err)
		}
	}
}

var mnist = sync.OnceValues(func() (*datasets.MNIST, error) { return datasets.LoadMNIST("") })

// TestRunSmallNet trains a small autoencoder on MNIST for 60 updates and
// checks the front-door contract: the final line's format, a CSV log that
// starts at update 0, and a final train error well below the untrained
// network's. Skipped only when MNIST cannot be found in -short mode.
func TestRunSmallNet(t *testing.T) {
	needMNIST(t)
	dir := t.TempDir()
	c := parse(t, "-arch", "784-64-16-64-784", "-updates", "60", "-time", "0", "-out", dir, "-eval", "500", "-log-every", "1h", "-final-eval", "3000")
	var out bytes.Buffer
	sum, err := run(c, &out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`^final: updates=60 seconds=[0-9.]+ train_err=[0-9.]+ test_err=[0-9.]+$`).MatchString(last) {
		t.Errorf("last line %q does not have the final: form", last)
	}
	if !strings.Contains(out.String(), "evaluating on the first 3000 train and 3000 test images (-final-eval) (6000 images)...") {
		t.Errorf("output does not announce the -final-eval subset:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "sgd lr=0.01 momentum=0.9 nesterov=false") {
		t.Errorf("output does not name SGD with its defaults:\n%s", out.String())
	}
	if !(sum.trainErr < 0.5*sum.initialErr) {
		t.Errorf("train error %.3f is not below half the untrained network's %.3f", sum.trainErr, sum.initialErr)
	}
	log, err := os.ReadFile(filepath.Join(dir, "log.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(rows) != 3 || rows[0] != "update,seconds,epoch,train_loss,train_err,test_err" || !strings.HasPrefix(rows[1], "0,0.000,0,") || !strings.HasPrefix(rows[2], "60,") {
		t.Errorf("log.csv rows:\n%s\nwant a header, update 0 and update 60", log)
	}
}

// TestEveryMethodTrains runs every method of the table for a few updates on
// a small network, so that each constructor's glue (K-FAC's Monte-Carlo
// Fisher, NNN's whitening, Newton's sub-batch GN rows, batch
// normalisation) runs against the real passes, and checks that the errors
// stay finite. Newton needs a net whose layers fit -max-params.
func TestEveryMethodTrains(t *testing.T) {
	needMNIST(t)
	full, err := mnist()
	if err != nil {
		t.Fatal(err)
	}
	// The first 2000 training and 500 test images, to keep the final
	// evaluations on the full sets short.
	data := *full
	data.TrainImages, data.TestImages = subset(full.TrainImages, 2000), subset(full.TestImages, 500)
	type run struct{ name, opt, norm, arch string }
	var runs []run
	for _, m := range methods {
		arch := "784-16-784"
		if m.name == "newton" {
			arch = "784-2-784"
		}
		runs = append(runs, run{m.name, m.name, "none", arch})
	}
	runs = append(runs, run{"sgd+bn", "sgd", "bn", "784-16-784"}, run{"sgd+meanbn", "sgd", "meanbn", "784-16-784"})
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			c := parse(t, "-opt", r.opt, "-norm", r.norm, "-arch", r.arch, "-updates", "4", "-time", "0", "-eval", "200", "-log-every", "1h")
			if err := c.check(); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			sum, err := train(c, &data, &out, "")
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if sum.updates != 4 || math.IsNaN(sum.trainErr) || math.IsInf(sum.trainErr, 0) || math.IsNaN(sum.testErr) {
				t.Errorf("updates=%d train_err=%v test_err=%v, want 4 updates and finite errors", sum.updates, sum.trainErr, sum.testErr)
			}
		})
	}
}

// TestRunRejectsBadFlags checks that bad settings are errors that name the
// flag, returned before any data is loaded (run has printed nothing, not
// even the MNIST line).
func TestRunRejectsBadFlags(t *testing.T) {
	base := []string{"-arch", "784-30-784", "-updates", "1", "-batch", "10"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"arch", []string{"-arch", "784-x-784"}, "-arch"},
		{"arch ends", []string{"-arch", "784-30-10"}, "-arch"},
		{"batch", []string{"-batch", "0"}, "-batch"},
		{"loss", []string{"-loss", "hinge"}, "-loss"},
		{"init", []string{"-init", "zeros"}, "-init"},
		{"opt", []string{"-opt", "lbfgs"}, "-opt"},
		{"norm", []string{"-norm", "layer"}, "-norm"},
		{"no stop", []string{"-updates", "0", "-time", "0"}, "nothing would stop"},
		{"lr negative", []string{"-lr", "-1"}, "-lr -1: optim: SGD: Rate=-1"},
		{"lr zero", []string{"-lr", "0"}, "-lr 0"},
		{"lr NaN", []string{"-opt", "adam", "-lr", "NaN"}, "-lr NaN: optim: Adam: Rate=NaN"},
		{"momentum", []string{"-momentum", "1.5"}, "-momentum 1.5: optim: SGD: Momentum=1.5"},
		{"momentum centered", []string{"-opt", "centered", "-momentum", "-0.1"}, "optim: Centered: Momentum=-0.1"},
		{"damping kfac", []string{"-opt", "kfac", "-damping", "-1"}, "-damping -1: optim: KFAC: Damping=-1"},
		{"damping acp", []string{"-opt", "acp", "-damping", "-1"}, "-damping -1: optim: ACP: Damping=-1"},
		{"damping newton", []string{"-opt", "newton", "-arch", "784-2-784", "-damping", "-1"}, "optim: Newton: Damping=-1"},
		{"alpha zero", []string{"-opt", "acp", "-alpha", "0"}, "-alpha 0"},
		{"alpha negative", []string{"-opt", "acp-fixed", "-alpha", "-2"}, "optim: ACP: Alpha=-2"},
		{"period", []string{"-opt", "kfac", "-period", "0"}, "-period 0"},
		{"stats-period", []string{"-opt", "kfac", "-stats-period", "0"}, "-stats-period 0"},
		{"whiten-eps", []string{"-opt", "nnn", "-whiten-eps", "-1"}, "-whiten-eps -1"},
		{"max-params", []string{"-opt", "newton", "-max-params", "0"}, "-max-params 0"},
		{"newton too large", []string{"-opt", "newton"}, "-max-params 5000"},
		{"norm with kfac", []string{"-opt", "kfac", "-norm", "bn"}, "-norm bn cannot be combined with -opt kfac"},
		{"figure method settings", []string{"-figure", "3.2", "-out", "x", "-damping", "-1"}, "figure 3.2, ACP, fixed α: -opt acp-fixed -damping -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parse(t, append(append([]string{}, base...), tc.args...)...)
			var out bytes.Buffer
			_, err := run(c, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if out.Len() > 0 {
				t.Errorf("run printed %q before refusing the settings", out.String())
			}
		})
	}
}

// TestFlagsUnsetOrSet checks the two states of a method flag: unset gives
// the method's default, set gives the value, zero included. -momentum 0
// must give no momentum to every method whose default is 0.9.
func TestFlagsUnsetOrSet(t *testing.T) {
	for _, name := range []string{"sgd", "nesterov", "centered", "acp", "acp-fixed"} {
		t.Run(name, func(t *testing.T) {
			if got := settingsOf(t, parse(t, "-opt", name)).momentum; got != 0.9 {
				t.Errorf("-opt %s: momentum %v, want the default 0.9", name, got)
			}
			if got := settingsOf(t, parse(t, "-opt", name, "-momentum", "0")).momentum; got != 0 {
				t.Errorf("-opt %s -momentum 0: momentum %v, want 0", name, got)
			}
			if got := settingsOf(t, parse(t, "-opt", name, "-momentum", "0.5")).momentum; got != 0.5 {
				t.Errorf("-opt %s -momentum 0.5: momentum %v, want 0.5", name, got)
			}
		})
	}
	// -damping 0 asks for no damping: Undamped, which Validate accepts.
	for _, name := range []string{"acp", "kfac", "newton"} {
		c := parse(t, "-opt", name, "-arch", "784-2-784", "-damping", "0")
		tr, err := newTrainer(c, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			t.Fatalf("-opt %s -damping 0: %v", name, err)
		}
		if s := settingsOf(t, c); s.damping != 0 || !s.undamped {
			t.Errorf("-opt %s -damping 0: damping %v undamped %v, want 0 and true (%s)", name, s.damping, s.undamped, tr.label)
		}
	}
}

// settings are the numeric settings of a method as its optimizer holds
// them.
type settings struct {
	lr, momentum, damping, alpha float64
	nesterov, undamped           bool
	period                       int
}

// settingsOf builds the method of c and returns its optimizer's settings.
func settingsOf(t *testing.T, c config) settings {
	t.Helper()
	tr, err := newTrainer(c, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatalf("-opt %s: %v", c.opt, err)
	}
	rules := func(r optim.Rules) settings {
		return settings{lr: r.Rate, momentum: r.Momentum, damping: r.Damping, nesterov: r.Nesterov, undamped: r.Undamped, period: r.InversePeriod}
	}
	switch o := tr.opt.(type) {
	case *optim.SGD:
		return settings{lr: o.Rate, momentum: o.Momentum, nesterov: o.Nesterov}
	case *optim.RMSProp:
		return settings{lr: o.Rate, momentum: o.Momentum}
	case *optim.Adam:
		return settings{lr: o.Rate}
	case *optim.Centered:
		return settings{lr: o.Rate, momentum: o.Momentum, nesterov: o.Nesterov}
	case *optim.ACP:
		s := rules(o.Rules)
		s.alpha = o.Alpha
		return s
	case *optim.KFAC:
		return rules(o.Rules)
	case *optim.EKFAC:
		return rules(o.Rules)
	case *optim.Shampoo:
		return rules(o.Rules)
	case *optim.SOAP:
		return rules(o.Rules)
	case *optim.HessianFree:
		return settings{damping: o.Damping}
	case *optim.Newton:
		return rules(o.Rules)
	}
	t.Fatalf("-opt %s: optimizer %T not covered by the test", c.opt, tr.opt)
	return settings{}
}

// TestMethodDefaults pins the benchmark defaults of every method (the
// README's table), so that restructuring the constructors cannot move the
// results, and checks that every method of the table is covered.
func TestMethodDefaults(t *testing.T) {
	want := map[string]struct {
		s     settings
		label string
	}{
		"sgd":       {settings{lr: 0.01, momentum: 0.9}, "sgd lr=0.01 momentum=0.9 nesterov=false"},
		"nesterov":  {settings{lr: 0.01, momentum: 0.9, nesterov: true}, "sgd lr=0.01 momentum=0.9 nesterov=true"},
		"rmsprop":   {settings{lr: 1e-3}, "rmsprop lr=0.001 momentum=0"},
		"adam":      {settings{lr: 1e-3}, "adam lr=0.001"},
		"centered":  {settings{lr: 0.1, momentum: 0.9}, "centered lr=0.1 momentum=0.9"},
		"acp":       {settings{lr: 0.1, momentum: 0.9, damping: 3, period: 20}, "acp lr=0.1 momentum=0.9 damping=3 norm-constraint=0.001 (relative) alpha=max squared gradient period=20"},
		"acp-fixed": {settings{lr: 0.3, momentum: 0.9, damping: 10, alpha: 1, period: 20}, "acp lr=0.3 momentum=0.9 damping=10 norm-constraint=0.001 (relative) alpha=1 period=20"},
		"kfac":      {settings{lr: 1, damping: 0.1, period: 20}, "kfac lr=1 momentum=0 damping=0.1 (relative) norm-constraint=0.001 (relative) inverse-period=20 stats-period=1 fisher=monte-carlo on all examples per batch"},
		"ekfac":     {settings{lr: 1, damping: 0.1, period: 50}, "ekfac lr=1 momentum=0 damping=0.1 (relative) norm-constraint=0.001 (relative) inverse-period=50 stats-period=1 fisher=monte-carlo on all examples per batch"},
		"shampoo":   {settings{lr: 0.001, damping: 1e-4, period: 50}, "shampoo lr=0.001 momentum=0 damping=0.0001 (relative to each factor) period=50 norm-constraint=+Inf"},
		"soap":      {settings{lr: 0.003, damping: 1e-8, period: 50}, "soap lr=0.003 momentum=0 epsilon=1e-08 period=50 norm-constraint=+Inf"},
		"hf":        {settings{}, "hessian-free λ₀=1 (adapted) norm-constraint=0.1 (relative) max-cg=250, GN products on the batch"},
		"nnn":       {settings{lr: 0.1}, "nnn (whitened layers, ε=100 relative, sgd lr=0.1 momentum=0, refresh every 100 updates)"},
		"newton":    {settings{lr: 1, damping: 0.1}, "block-diagonal newton lr=1 damping=0.1 (relative) norm-constraint=0.001 (relative), exact GN blocks on 10 examples per batch"},
	}
	for _, m := range methods {
		w, ok := want[m.name]
		if !ok {
			t.Errorf("method %q has no expected defaults in this test", m.name)
			continue
		}
		c := parse(t, "-opt", m.name, "-arch", "784-2-784")
		if got := settingsOf(t, c); got != w.s {
			t.Errorf("-opt %s: settings %+v, want %+v", m.name, got, w.s)
		}
		tr, _ := newTrainer(c, rand.New(rand.NewPCG(1, 1)))
		if tr.label != w.label {
			t.Errorf("-opt %s: label %q, want %q", m.name, tr.label, w.label)
		}
	}
	if len(want) != len(methods) {
		t.Errorf("%d expected methods, %d in the table", len(want), len(methods))
	}
}

// TestFlagsHelp checks that -h is flag.ErrHelp and that the method flags
// print the method's default rather than a number.
func TestFlagsHelp(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	if !strings.HasPrefix(out.String(), "autoencoder trains the deep autoencoder") {
		t.Errorf("-h does not start with what the program does:\n%s", out.String())
	}
	for _, name := range []string{"lr", "momentum", "damping", "period"} {
		if !regexp.MustCompile(`(?m)^  -` + name + ` .*\n.*\(default: the method's; see README\)$`).MatchString(out.String()) {
			t.Errorf("-h does not say -%s defaults to the method's:\n%s", name, out.String())
		}
	}
	for _, m := range methods {
		if !strings.Contains(out.String(), m.name) {
			t.Errorf("-h does not list -opt %s", m.name)
		}
	}
	if _, err := parseFlags([]string{"-momentum", "x"}, io.Discard); err == nil {
		t.Error("-momentum x accepted")
	}
	if _, err := parseFlags([]string{"kfac"}, io.Discard); err == nil {
		t.Error("a positional argument accepted")
	}
}

// TestMainExitStatus runs the command in a subprocess with invalid
// settings: it must exit with status 2 after one line on stderr, no stack
// trace, and print nothing on stdout (MNIST was not loaded).
func TestMainExitStatus(t *testing.T) {
	for _, args := range []string{"-lr -1", "-momentum 1.5", "-opt kfac -damping -1", "-opt acp -momentum 0 -period 0"} {
		t.Run(args, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "AUTOENCODER_MAIN=1", "AUTOENCODER_ARGS="+args)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; stderr:\n%s", err, stderr.String())
			}
			msg := stderr.String()
			if !strings.HasPrefix(msg, "autoencoder: ") || strings.Count(msg, "\n") != 1 || strings.Contains(msg, "goroutine") {
				t.Errorf("stderr %q, want one line starting autoencoder:", msg)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout %q, want nothing before the settings are checked", stdout.String())
			}
		})
	}
}

// TestEvaluatorErrors compares the chunked evaluation with a direct
// computation of the mean squared reconstruction error on a batch that
// spans several chunks.
func TestEvaluatorErrors(t *testing.T) {
	net := nn.NewAutoencoder([]int{6, 3, 6})
	net.Init(nn.Glorot{}, newTestRand())
	n := 2*evalChunk + 17
	x := mat.NewDense(n, 6, nil)
	r := newTestRand()
	x.Apply(func(_, _ int, _ float64) float64 { return r.Float64() }, x)
	e := &evaluator{net: net, loss: nn.Quadratic{}}
	loss, sq := e.errors(x)
	f := net.Forward(x)
	var d mat.Dense
	d.Sub(f, x)
	want := mat.Norm(&d, 2)
	want = want * want / float64(n)
	if math.Abs(sq-want) > 1e-9*want || math.Abs(loss-want) > 1e-9*want {
		t.Errorf("errors() = %v, %v; want %v for both (quadratic loss)", loss, sq, want)
	}
}

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(3, 3)) }

// TestTimeLimitFlags checks the stopping flags: -updates N alone has no
// time limit, -time alone or both keep the time given, neither is 45 s.
func TestTimeLimitFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		updates int
		budget  time.Duration
	}{
		{nil, 0, 45 * time.Second},
		{[]string{"-updates", "20"}, 20, 0},
		{[]string{"-time", "10s"}, 0, 10 * time.Second},
		{[]string{"-updates", "20", "-time", "10s"}, 20, 10 * time.Second},
		{[]string{"-time", "45s", "-updates", "20"}, 20, 45 * time.Second},
		{[]string{"-updates", "0"}, 0, 45 * time.Second},
	} {
		c := parse(t, tc.args...)
		if c.updates != tc.updates || c.budget != tc.budget {
			t.Errorf("%q: updates %d, time %v; want %d and %v", tc.args, c.updates, c.budget, tc.updates, tc.budget)
		}
	}
	if _, err := parseFlags([]string{"-log-every", "1s", "-log-updates", "5"}, io.Discard); err == nil {
		t.Error("-log-every with -log-updates accepted")
	}
	c := parse(t, "-log-updates", "-1")
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "-log-updates") {
		t.Errorf("-log-updates -1: %v", err)
	}
}

// TestRunRefusesExistingOutput checks that a run into a directory that
// holds the outputs of an earlier one stops before loading MNIST and leaves
// the old files as they were.
func TestRunRefusesExistingOutput(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		args       []string
	}{
		{"log", "log.csv", nil},
		{"figure log", filepath.Join("sgd", "log.csv"), []string{"-figure", "3.1"}},
		{"figure table", "figure3.1.md", []string{"-figure", "3.1"}},
		{"figure plot", "figure3.1-seconds.png", []string{"-figure", "3.1"}},
		{"race csv", "race.csv", []string{"-figure", "race", "-time", "1s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			old := filepath.Join(dir, tc.file)
			if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(old, []byte("earlier run\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			c := parse(t, append([]string{"-arch", "784-8-784", "-updates", "1", "-out", dir}, tc.args...)...)
			var out bytes.Buffer
			_, err := run(c, &out)
			if err == nil || !strings.Contains(err.Error(), old+" already exists") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line naming %s", err, old)
			}
			if out.Len() > 0 {
				t.Errorf("run printed %q before refusing", out.String())
			}
			if b, _ := os.ReadFile(old); string(b) != "earlier run\n" {
				t.Errorf("%s now holds %q", old, b)
			}
		})
	}
}

// TestRunExplicitMNISTDir checks that -mnist DIR is used or refused, never
// replaced by the search: a missing directory, or one without the four
// files, is an error before anything is loaded.
func TestRunExplicitMNISTDir(t *testing.T) {
	partial := t.TempDir()
	for _, name := range []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz"} {
		if err := os.WriteFile(filepath.Join(partial, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	notDir := filepath.Join(partial, "train-images-idx3-ubyte")
	missing := filepath.Join(t.TempDir(), "no", "such", "dir")
	for _, tc := range []struct{ dir, want string }{
		{missing, "-mnist " + missing + ": no such directory"},
		{notDir, "not a directory"},
		{partial, "missing t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"},
	} {
		c := parse(t, "-arch", "784-8-784", "-updates", "1", "-mnist", tc.dir)
		var out bytes.Buffer
		_, err := run(c, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("-mnist %s: error %v, want one containing %q", tc.dir, err, tc.want)
		}
		if out.Len() > 0 {
			t.Errorf("-mnist %s: run printed %q", tc.dir, out.String())
		}
	}
}

// TestLogUpdatesReproducible trains the same small run twice with
// -log-updates: the two CSV logs must have the same rows, at updates 0, 5,
// …, 20, apart from the wall-clock seconds column.
func TestLogUpdatesReproducible(t *testing.T) {
	needMNIST(t)
	full, err := mnist()
	if err != nil {
		t.Fatal(err)
	}
	data := *full
	data.TrainImages, data.TestImages = subset(full.TrainImages, 2000), subset(full.TestImages, 500)
	var logs [2][]string
	for i := range logs {
		dir := t.TempDir()
		c := parse(t, "-arch", "784-16-784", "-updates", "20", "-log-updates", "5", "-eval", "200", "-seed", "3", "-out", dir)
		if err := c.check(); err != nil {
			t.Fatal(err)
		}
		if _, err := train(c, &data, io.Discard, dir); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "log.csv"))
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Split(row, ",")
			logs[i] = append(logs[i], strings.Join(append(f[:1:1], f[2:]...), ","))
		}
	}
	var updates []string
	for _, row := range logs[0][1:] {
		updates = append(updates, strings.SplitN(row, ",", 2)[0])
	}
	if got := strings.Join(updates, " "); got != "0 5 10 15 20" {
		t.Errorf("evaluations at updates %s, want 0 5 10 15 20", got)
	}
	if a, b := strings.Join(logs[0], "\n"), strings.Join(logs[1], "\n"); a != b {
		t.Errorf("logs without seconds differ:\n%s\n---\n%s", a, b)
	}
}

// TestProgress checks the progress lines of a long evaluation: none in
// its first progressEvery, then at most one per progressEvery with the
// count and an estimate of the time left, none once done.
func TestProgress(t *testing.T) {
	var b strings.Builder
	p := progress{w: &b, label: "evaluating", total: 100, start: time.Now()}
	p.add(10)
	if b.Len() > 0 {
		t.Fatalf("progress within %v: %q", progressEvery, b.String())
	}
	p.start = time.Now().Add(-10 * time.Second)
	p.add(15)
	p.add(5)
	p.start = time.Now().Add(-20 * time.Second)
	p.last = time.Now().Add(-2 * progressEvery)
	p.add(70)
	if got, want := b.String(), "  evaluating: 25 of 100 images in 10s, about 30s left\n"; got != want {
		t.Errorf("progress %q, want %q", got, want)
	}
	// Without a writer (progress off) add only counts.
	q := progress{total: 10, start: time.Now().Add(-time.Hour)}
	q.add(1)
	if q.done != 1 {
		t.Errorf("done %d, want 1", q.done)
	}
}
