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
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
	"gonum.org/v1/gonum/mat"
)

// TestMain runs the command's main with the arguments in $CLASSIFIER_ARGS
// when $CLASSIFIER_MAIN is set, so that TestMainExitStatus can run it in a
// subprocess.
func TestMain(m *testing.M) {
	if os.Getenv("CLASSIFIER_MAIN") == "1" {
		os.Args = append([]string{"classifier"}, strings.Fields(os.Getenv("CLASSIFIER_ARGS"))...)
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

// finalLine is the form of the last line of a run.
var finalLine = regexp.MustCompile(`^final: updates=(\d+) seconds=[0-9.]+ train_loss=[0-9.]+ test_loss=[0-9.]+ test_acc=[0-9.]+%$`)

// TestFlagDefaults checks the documented defaults of the command line.
func TestFlagDefaults(t *testing.T) {
	c := parse(t)
	want := config{arch: "784-100-10", act: "relu", budget: 30 * time.Second, batch: 100, seed: 1, opt: "adam", logEvery: 5 * time.Second, checkpointEvery: 500}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
	if err := c.check(); err != nil {
		t.Errorf("the defaults are refused: %v", err)
	}
}

// TestFlagsHelp checks that -h is flag.ErrHelp and lists every method on
// one line, and that bad flag syntax is refused.
func TestFlagsHelp(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	if !strings.HasPrefix(out.String(), "classifier trains an MNIST classifier") {
		t.Errorf("-h does not start with what the program does:\n%s", out.String())
	}
	for _, m := range methods {
		if !regexp.MustCompile(`(?m)^\s+` + m.name + `\s+\S`).MatchString(out.String()) {
			t.Errorf("-h has no line for -opt %s:\n%s", m.name, out.String())
		}
	}
	for _, name := range []string{"lr", "momentum", "damping"} {
		if !regexp.MustCompile(`(?m)^  -` + name + ` .*\n.*\(default: the optimizer's zero value, see -opt\)$`).MatchString(out.String()) {
			t.Errorf("-h does not say that -%s defaults to the optimizer's zero value:\n%s", name, out.String())
		}
	}
	for _, args := range [][]string{{"-momentum", "x"}, {"-lr", ""}, {"adam"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// TestZeroValues checks the point of the example: with no method flag,
// every optimizer is its zero value (Nesterov's flag aside), and each flag
// given sets its field and nothing else, zero included.
func TestZeroValues(t *testing.T) {
	zero := map[string]optimizer{
		"sgd":      &optim.SGD{},
		"nesterov": &optim.SGD{Nesterov: true},
		"rmsprop":  &optim.RMSProp{},
		"adam":     &optim.Adam{},
		"centered": &optim.Centered{},
		"acp":      &optim.ACP{},
		"kfac":     &optim.KFAC{},
		"ekfac":    &optim.EKFAC{},
		"shampoo":  &optim.Shampoo{},
		"soap":     &optim.SOAP{},
		"hf":       &optim.HessianFree{},
		"newton":   &optim.Newton{},
	}
	for _, m := range methods {
		want, ok := zero[m.name]
		if !ok {
			t.Errorf("method %q is not covered by this test", m.name)
			continue
		}
		tr, err := newTrainer(parse(t, "-opt", m.name, "-arch", "784-2-10"), rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			t.Fatalf("-opt %s: %v", m.name, err)
		}
		if !reflect.DeepEqual(tr.opt, want) {
			t.Errorf("-opt %s: optimizer %+v, want the zero value %+v", m.name, tr.opt, want)
		}
	}
	if len(zero) != len(methods) {
		t.Errorf("%d methods in the test, %d in the table", len(zero), len(methods))
	}

	set := []struct {
		args []string
		want optimizer
	}{
		{[]string{"-opt", "sgd", "-lr", "0.1", "-momentum", "0.9"}, &optim.SGD{Rate: 0.1, Momentum: 0.9}},
		{[]string{"-opt", "sgd", "-momentum", "0"}, &optim.SGD{}},
		{[]string{"-opt", "nesterov", "-momentum", "0.9"}, &optim.SGD{Momentum: 0.9, Nesterov: true}},
		{[]string{"-opt", "rmsprop", "-momentum", "0.5"}, &optim.RMSProp{Momentum: 0.5}},
		{[]string{"-opt", "adam", "-lr", "0.01"}, &optim.Adam{Rate: 0.01}},
		{[]string{"-opt", "centered", "-lr", "0.1"}, &optim.Centered{Rate: 0.1}},
		{[]string{"-opt", "acp", "-damping", "3"}, &optim.ACP{Rules: optim.Rules{Damping: 3}}},
		{[]string{"-opt", "kfac", "-damping", "0"}, &optim.KFAC{Rules: optim.Rules{Undamped: true}}},
		{[]string{"-opt", "kfac", "-lr", "0.5", "-momentum", "0.9"}, &optim.KFAC{Rules: optim.Rules{Rate: 0.5, Momentum: 0.9}}},
		{[]string{"-opt", "newton", "-arch", "784-2-10", "-damping", "10"}, &optim.Newton{Rules: optim.Rules{Damping: 10}}},
	}
	for _, tc := range set {
		tr, err := newTrainer(parse(t, tc.args...), rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(tr.opt, tc.want) {
			t.Errorf("%q: optimizer %+v, want %+v", tc.args, tr.opt, tc.want)
		}
	}
}

// TestRunRejectsBadFlags checks that bad settings are errors that name the
// flag, returned before any data is loaded (run has printed nothing, not
// even the MNIST line).
func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"arch syntax", []string{"-arch", "784-x-10"}, `bad -arch "784-x-10"`},
		{"arch input", []string{"-arch", "100-10"}, "the first size must be 784"},
		{"arch output", []string{"-arch", "784-100-9"}, "the last 10"},
		{"arch one size", []string{"-arch", "784"}, "need at least"},
		{"act", []string{"-act", "sigmoid"}, `unknown -act "sigmoid"`},
		{"batch", []string{"-batch", "0"}, "-batch"},
		{"updates", []string{"-updates", "-1"}, "-updates"},
		{"no stop", []string{"-updates", "0", "-time", "0"}, "nothing would stop"},
		{"log-every", []string{"-log-every", "-1s"}, "-log-every"},
		{"log-updates", []string{"-log-updates", "-1"}, "-log-updates must be non-negative"},
		{"opt", []string{"-opt", "lbfgs"}, `unknown -opt "lbfgs" (available: sgd, nesterov, rmsprop, adam, centered, acp, kfac, ekfac, shampoo, soap, hf, newton)`},
		{"lr zero", []string{"-lr", "0"}, "-lr 0: want a positive learning rate"},
		{"lr negative", []string{"-opt", "sgd", "-lr", "-1"}, "-opt sgd -lr -1: optim: SGD: Rate=-1"},
		{"lr NaN", []string{"-lr", "NaN"}, "-opt adam -lr NaN: optim: Adam: Rate=NaN"},
		{"lr Inf kfac", []string{"-opt", "kfac", "-lr", "Inf"}, "optim: KFAC: Rate=+Inf"},
		{"momentum", []string{"-opt", "sgd", "-momentum", "1"}, "-momentum 1: optim: SGD: Momentum=1"},
		{"momentum rmsprop", []string{"-opt", "rmsprop", "-momentum", "-0.1"}, "optim: RMSProp: Momentum=-0.1"},
		{"momentum centered", []string{"-opt", "centered", "-momentum", "2"}, "optim: Centered: Momentum=2"},
		{"momentum acp", []string{"-opt", "acp", "-momentum", "1.5"}, "optim: ACP: Momentum=1.5"},
		{"momentum adam", []string{"-opt", "adam", "-momentum", "0.9"}, "-momentum does not apply to -opt adam"},
		{"damping sgd", []string{"-opt", "sgd", "-damping", "1"}, "-damping does not apply to -opt sgd (its flags: lr, momentum)"},
		{"damping acp", []string{"-opt", "acp", "-damping", "-1"}, "-opt acp -damping -1: optim: ACP: Damping=-1"},
		{"damping kfac", []string{"-opt", "kfac", "-damping", "NaN"}, "optim: KFAC: Damping=NaN"},
		{"damping newton", []string{"-opt", "newton", "-arch", "784-2-10", "-damping", "-1"}, "optim: Newton: Damping=-1"},
		{"newton too large", []string{"-opt", "newton"}, "layer 0 (784→100) has 78500 parameters, more than optim.DefaultNewtonMaxParams = 5000"},
		{"newton second layer", []string{"-opt", "newton", "-arch", "784-2-2000-10"}, "layer 1 (2→2000) has 6000 parameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parse(t, tc.args...)
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

// TestMainExitStatus runs the command in a subprocess with invalid
// settings: it must exit with status 2 after one line on stderr, no stack
// trace, and print nothing on stdout (MNIST was not loaded).
func TestMainExitStatus(t *testing.T) {
	for _, args := range []string{"-lr -1", "-opt kfac -damping -1", "-opt newton"} {
		t.Run(args, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "CLASSIFIER_MAIN=1", "CLASSIFIER_ARGS="+args)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; stderr:\n%s", err, stderr.String())
			}
			msg := stderr.String()
			if !strings.HasPrefix(msg, "classifier: ") || strings.Count(msg, "\n") != 1 || strings.Contains(msg, "goroutine") {
				t.Errorf("stderr %q, want one line starting classifier:", msg)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout %q, want nothing before the settings are checked", stdout.String())
			}
		})
	}
}

// TestEveryMethodTrains runs every method of the table at its zero value
// on MNIST for 50 updates of a small network (the curvature-based ones with
// ReLU and tanh hidden units), so that each constructor's glue (K-FAC's
// Monte-Carlo Fisher, Newton's exact Fisher rows) runs against the real
// passes, and checks the front-door contract: finite losses, a final line of
// the documented form, and a test accuracy that a diverging or stalled run
// cannot reach (minAccuracy). Newton runs on 784-2-10, whose blocks are small
// enough for a test.
func TestEveryMethodTrains(t *testing.T) {
	needMNIST(t)
	data, err := mnist()
	if err != nil {
		t.Fatal(err)
	}
	// minAccuracy is the test accuracy in % each method must pass after 50
	// updates: chance is 10 %; plain SGD and centered GD at η = 0.01 are
	// slow starters (30–36 %), the adaptive and curvature-based methods
	// reach 79–87 % with ReLU, and two hidden units cap Newton near 40 %.
	minAccuracy := map[string]float64{"sgd": 20, "nesterov": 20, "centered": 20, "rmsprop": 70, "adam": 70, "acp": 65, "kfac": 70, "ekfac": 70, "shampoo": 70, "soap": 70, "hf": 70, "newton": 25}
	for _, m := range methods {
		acts := []string{"relu"}
		if m.name == "acp" || m.name == "kfac" || m.name == "ekfac" || m.name == "newton" {
			acts = append(acts, "tanh")
		}
		for _, act := range acts {
			t.Run(m.name+"/"+act, func(t *testing.T) {
				arch := "784-32-10"
				if m.name == "newton" {
					arch = "784-2-10"
				}
				c := parse(t, "-opt", m.name, "-arch", arch, "-act", act, "-updates", "50", "-time", "0", "-log-every", "0")
				if err := c.check(); err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				sum, err := train(c, data, &out)
				if err != nil {
					t.Fatalf("%v\n%s", err, out.String())
				}
				lines := strings.Split(strings.TrimSpace(out.String()), "\n")
				if last := lines[len(lines)-1]; !finalLine.MatchString(last) || sum.updates != c.updates || !strings.HasPrefix(last, "final: updates="+strconv.Itoa(c.updates)+" ") {
					t.Errorf("last line %q, want the final: form with %d updates\n%s", last, c.updates, out.String())
				}
				for _, v := range []float64{sum.trainLoss, sum.testLoss, sum.testAcc} {
					if bad(v) {
						t.Errorf("train_loss %v test_loss %v test_acc %v, want finite", sum.trainLoss, sum.testLoss, sum.testAcc)
						break
					}
				}
				if min, ok := minAccuracy[m.name]; !ok {
					t.Errorf("no minAccuracy for %s", m.name)
				} else if !(sum.testAcc > min) {
					t.Errorf("test accuracy %.2f%% after %d updates, want > %g%%", sum.testAcc, sum.updates, min)
				}
				t.Logf("%s: %.2f%% → %.2f%% in %d updates", tr(t, c), sum.initialAcc, sum.testAcc, sum.updates)
			})
		}
	}
}

// tr returns the label of the method of c.
func tr(t *testing.T, c config) string {
	t.Helper()
	m, err := newTrainer(c, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return m.label
}

// TestRunWritesLogAndPlot runs the command end to end (MNIST loaded by run)
// with -out, and checks the CSV log (a header, the untrained network at
// update 0, the last update) and the PNG.
func TestRunWritesLogAndPlot(t *testing.T) {
	needMNIST(t)
	dir := filepath.Join(t.TempDir(), "adam")
	c := parse(t, "-arch", "784-16-10", "-updates", "30", "-time", "0", "-log-every", "1h", "-out", dir)
	var out bytes.Buffer
	sum, err := run(c, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "adam η=0.001 β₁=0.9 β₂=0.999") {
		t.Errorf("output does not name Adam with its zero value's settings:\n%s", out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; !finalLine.MatchString(last) {
		t.Errorf("last line %q does not have the final: form", last)
	}
	if !(sum.testAcc > sum.initialAcc) {
		t.Errorf("test accuracy %.2f%%, not above the untrained network's %.2f%%", sum.testAcc, sum.initialAcc)
	}
	log, err := os.ReadFile(filepath.Join(dir, "log.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(rows) != 3 || rows[0] != "update,seconds,epoch,train_loss,test_loss,test_acc" ||
		!strings.HasPrefix(rows[1], "0,0.000,0,") || !strings.HasPrefix(rows[2], "30,") {
		t.Errorf("log.csv:\n%s\nwant a header, update 0 and update 30", log)
	}
	png, err := os.ReadFile(filepath.Join(dir, "curve.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		t.Errorf("curve.png is not a PNG image (%d bytes)", len(png))
	}
}

// TestDiverged checks that a run whose loss overflows ends with the
// documented error rather than a NaN final line.
func TestDiverged(t *testing.T) {
	needMNIST(t)
	data, err := mnist()
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, "-opt", "sgd", "-lr", "1e300", "-arch", "784-8-10", "-updates", "20", "-time", "0", "-log-every", "0")
	var out bytes.Buffer
	_, err = train(c, data, &out)
	if err == nil || !regexp.MustCompile(`^training diverged at update \d+ `).MatchString(err.Error()) {
		t.Errorf("error %v, want \"training diverged at update N\"\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "final:") {
		t.Errorf("a diverged run printed a final line:\n%s", out.String())
	}
}

// TestEvaluator compares the chunked evaluation with a direct computation
// on a set that spans several chunks.
func TestEvaluator(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	net, init, err := newNetwork([]int{6, 5, classes}, "tanh")
	if err != nil {
		t.Fatal(err)
	}
	net.Init(init, rng)
	n := 2*evalChunk + 17
	x := mat.NewDense(n, 6, nil)
	x.Apply(func(_, _ int, _ float64) float64 { return rng.NormFloat64() }, x)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = rng.IntN(classes)
	}
	y := datasets.OneHot(labels, classes)
	e := &evaluator{net: net, loss: nn.CrossEntropy{}}
	loss, acc := e.run(newEvalSet(x, y, labels, 0))
	f := net.Forward(x)
	wantLoss := nn.CrossEntropy{}.Value(net.Output(), y)
	wantAcc := 100 * nn.Accuracy(f, labels)
	if math.Abs(loss-wantLoss) > 1e-12*wantLoss || math.Abs(acc-wantAcc) > 1e-9 {
		t.Errorf("run() = %v, %v; want %v, %v", loss, acc, wantLoss, wantAcc)
	}
	// A subset is the first examples.
	loss, acc = e.run(newEvalSet(x, y, labels, 10))
	f = net.Forward(x.Slice(0, 10, 0, 6))
	wantLoss = nn.CrossEntropy{}.Value(net.Output(), y.Slice(0, 10, 0, classes).(*mat.Dense))
	wantAcc = 100 * nn.Accuracy(f, labels[:10])
	if math.Abs(loss-wantLoss) > 1e-12*wantLoss || math.Abs(acc-wantAcc) > 1e-9 {
		t.Errorf("run() on 10 examples = %v, %v; want %v, %v", loss, acc, wantLoss, wantAcc)
	}
}

// TestTimeLimitFlags checks the stopping flags: -updates N alone has no
// time limit, -time alone or both keep the time given, neither is 30 s.
func TestTimeLimitFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		updates int
		budget  time.Duration
	}{
		{nil, 0, 30 * time.Second},
		{[]string{"-updates", "20"}, 20, 0},
		{[]string{"-time", "10s"}, 0, 10 * time.Second},
		{[]string{"-updates", "20", "-time", "10s"}, 20, 10 * time.Second},
		{[]string{"-time", "30s", "-updates", "20"}, 20, 30 * time.Second},
		{[]string{"-updates", "0"}, 0, 30 * time.Second},
	} {
		c := parse(t, tc.args...)
		if c.updates != tc.updates || c.budget != tc.budget {
			t.Errorf("%q: updates %d, time %v; want %d and %v", tc.args, c.updates, c.budget, tc.updates, tc.budget)
		}
	}
	if _, err := parseFlags([]string{"-log-every", "1s", "-log-updates", "5"}, io.Discard); err == nil {
		t.Error("-log-every with -log-updates accepted")
	}
}

// TestRunRefusesExistingOutput checks that a run into a directory that
// holds the log or the plot of an earlier one stops before loading MNIST
// and leaves the old file as it was.
func TestRunRefusesExistingOutput(t *testing.T) {
	for _, file := range []string{"log.csv", "curve.png"} {
		t.Run(file, func(t *testing.T) {
			dir := t.TempDir()
			old := filepath.Join(dir, file)
			if err := os.WriteFile(old, []byte("earlier run\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			c := parse(t, "-arch", "784-8-10", "-updates", "1", "-out", dir)
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
		c := parse(t, "-arch", "784-8-10", "-updates", "1", "-mnist", tc.dir)
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
// -log-updates, K-FAC so that the sampled targets are covered too: the two
// CSV logs must have the same rows, at updates 0, 5, …, 20, apart from the
// wall-clock seconds column.
func TestLogUpdatesReproducible(t *testing.T) {
	needMNIST(t)
	data, err := mnist()
	if err != nil {
		t.Fatal(err)
	}
	var logs [2][]string
	for i := range logs {
		dir := t.TempDir()
		c := parse(t, "-opt", "kfac", "-arch", "784-16-10", "-updates", "20", "-log-updates", "5", "-seed", "3", "-out", dir)
		if err := c.check(); err != nil {
			t.Fatal(err)
		}
		if _, err := train(c, data, io.Discard); err != nil {
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
	p := progress{w: &b, total: 100, start: time.Now()}
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
}
