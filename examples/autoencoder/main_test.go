package main

import (
	"bytes"

	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"gonum.org/v1/gonum/mat"
)

// TestRunSmallNet trains a small autoencoder on MNIST for 60 updates and
// checks the front-door contract: the final line's format, a CSV log that
// starts at update 0, and a final train error well below the untrained
// network's. Skipped only when MNIST cannot be found in -short mode.
func TestRunSmallNet(t *testing.T) {
	if testing.Short() {
		if _, _, err := (datasets.MNISTConfig{NoFetch: true}).Find(); err != nil {
			t.Skip("MNIST not available without fetching:", err)
		}
	}
	dir := t.TempDir()
	c := config{arch: "784-64-16-64-784", updates: 60, batch: 100, momentum: -1, seed: 1,
		opt: "sgd", loss: "quadratic", init: "sparse", out: dir, evalSize: 500, logEvery: time.Hour}
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

// TestRunRejectsBadFlags checks that bad settings are errors that name the
// flag, before any data is loaded.
func TestRunRejectsBadFlags(t *testing.T) {
	base := config{arch: "784-30-784", updates: 1, batch: 10, opt: "sgd", loss: "quadratic", init: "sparse", momentum: -1}
	for _, tc := range []struct {
		name string
		mod  func(*config)
		want string
	}{
		{"arch", func(c *config) { c.arch = "784-x-784" }, "-arch"},
		{"arch ends", func(c *config) { c.arch = "784-30-10" }, "-arch"},
		{"batch", func(c *config) { c.batch = 0 }, "-batch"},
		{"loss", func(c *config) { c.loss = "hinge" }, "-loss"},
		{"init", func(c *config) { c.init = "zeros" }, "-init"},
		{"opt", func(c *config) { c.opt = "lbfgs" }, "-opt"},
		{"no stop", func(c *config) { c.updates, c.budget = 0, 0 }, "nothing would stop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mod(&c)
			_, err := run(c, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
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
