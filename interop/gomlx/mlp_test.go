package gomlx

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

func newBackend(t *testing.T) backends.Backend {
	t.Helper()
	b, err := simplego.New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Finalize)
	return b
}

// maxDiff returns max |a − b| over the entries, +Inf for other shapes.
func maxDiff(a, b mat.Matrix) float64 {
	ra, ca := a.Dims()
	rb, cb := b.Dims()
	if ra != rb || ca != cb {
		return math.Inf(1)
	}
	d := 0.0
	for i := range ra {
		for j := range ca {
			d = max(d, math.Abs(a.At(i, j)-b.At(i, j)))
		}
	}
	return d
}

// TestRecordsMatchNN checks the records that GoMLX's reverse-mode
// differentiation gives against those of package nn's hand-written
// backward pass, on the same weights and batch: Input, Grad, GradW, GradB
// and Risk, and Back, whose last layer must be softmax − one-hot(sampled
// target) and whose lower layers must be nn's backward pass of those
// vectors.
func TestRecordsMatchNN(t *testing.T) {
	const tol = 1e-12
	backend := newBackend(t)
	for _, act := range []Activation{Tanh, ReLU} {
		t.Run(act.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(act)))
			sizes := []int{5, 7, 6, 4}
			m := NewMLP(backend, sizes, act, rng)
			for _, b := range m.B {
				for i := range b.Len() {
					b.SetVec(i, 0.3*rng.NormFloat64())
				}
			}
			const n = 9
			x := mat.NewDense(n, sizes[0], nil)
			labels := make([]int, n)
			for i := range n {
				for j := range sizes[0] {
					x.Set(i, j, rng.NormFloat64())
				}
				labels[i] = rng.IntN(sizes[3])
			}
			y := datasets.OneHot(labels, sizes[3])
			recs, err := m.Records(x, y, rand.New(rand.NewPCG(4, 4)))
			if err != nil {
				t.Fatal(err)
			}

			var hidden nn.Activation = nn.Tanh{}
			if act == ReLU {
				hidden = nn.ReLU{}
			}
			net := nn.New(sizes, []nn.Activation{hidden, hidden, nn.Softmax{}})
			for l := range m.W {
				net.Layer(l).W().Copy(m.W[l])
				net.Layer(l).B().CopyVec(m.B[l])
			}
			net.Forward(x)
			net.Backward(nn.CrossEntropy{}, y)
			want := net.Records()
			for l, r := range recs {
				for _, c := range []struct {
					field     string
					got, want mat.Matrix
				}{
					{"Input", r.Input, want[l].Input},
					{"Grad", r.Grad, want[l].Grad},
					{"GradW", r.GradW, want[l].GradW},
					{"GradB", r.GradB, want[l].GradB},
				} {
					if d := maxDiff(c.got, c.want); !(d <= tol) {
						t.Errorf("layer %d %s: max difference %g from nn", l, c.field, d)
					}
				}
				if d := math.Abs(r.Risk - want[l].Risk); !(d <= tol) {
					t.Errorf("layer %d Risk %g, nn %g", l, r.Risk, want[l].Risk)
				}
				if err := r.CheckGradScale(); err != nil {
					t.Errorf("layer %d: %v", l, err)
				}
			}

			// The last layer's Back rows are f − e_s: Grad − Back + y is
			// the one-hot sampled target e_s.
			L := len(recs) - 1
			var es mat.Dense
			es.Sub(recs[L].Grad, recs[L].Back)
			es.Add(&es, y)
			for i := range n {
				ones, sum := 0, 0.0
				for j := range sizes[3] {
					v := es.At(i, j)
					sum += v
					if math.Abs(v-1) <= tol {
						ones++
					} else if !(math.Abs(v) <= tol) {
						t.Fatalf("row %d of the sampled target is %v, not one-hot", i, mat.Row(nil, i, &es))
					}
				}
				if ones != 1 {
					t.Fatalf("row %d of the sampled target has %d ones", i, ones)
				}
			}
			net.BackwardVectors(recs[L].Back, nil)
			for l, r := range recs {
				if d := maxDiff(r.Back, want[l].Back); !(d <= tol) {
					t.Errorf("layer %d Back: max difference %g from nn's backward pass of the same vectors", l, d)
				}
			}

			noBack, err := m.Records(x, y, nil)
			if err != nil {
				t.Fatal(err)
			}
			if noBack[0].Back != nil {
				t.Error("Back set without a random source")
			}
		})
	}
}

// TestTrainsWithSecondorder trains a small classifier whose passes run in
// GoMLX with K-FAC and ACP (zero values) through the records, on Gaussian
// blobs: the training loss must fall below a tenth of its initial value,
// and the accuracy exceed 95 %.
func TestTrainsWithSecondorder(t *testing.T) {
	backend := newBackend(t)
	for _, tc := range []struct {
		name string
		opt  optim.Optimizer
		mc   bool
	}{
		{"kfac", &optim.KFAC{}, true},
		{"acp", &optim.ACP{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 5))
			x, labels, _ := datasets.Blobs(rng, 600, 8, 3, 3, 1)
			y := datasets.OneHot(labels, 3)
			m := NewMLP(backend, []int{8, 16, 3}, Tanh, rng)
			batches := datasets.NewBatches(600, rng, datasets.BatchConfig{Size: 50})
			var xb, yb mat.Dense
			var first, last float64
			for u := range 150 {
				batches.Next()
				batches.Rows(&xb, x)
				batches.Rows(&yb, y)
				var sampler *rand.Rand
				if tc.mc {
					sampler = rng
				}
				recs, err := m.Records(&xb, &yb, sampler)
				if err != nil {
					t.Fatal(err)
				}
				if u == 0 {
					first = recs[0].Risk
				}
				last = recs[0].Risk
				if err := tc.opt.Step(recs); err != nil {
					t.Fatalf("update %d: %v", u, err)
				}
			}
			logits, err := m.Logits(x)
			if err != nil {
				t.Fatal(err)
			}
			acc := nn.Accuracy(logits, labels) // the argmax of the logits is that of the softmax
			t.Logf("risk %.4g → %.4g, training accuracy %.3f", first, last, acc)
			if !(last < first/10) || acc < 0.95 {
				t.Errorf("risk %.4g → %.4g, training accuracy %.3f", first, last, acc)
			}
		})
	}
}
