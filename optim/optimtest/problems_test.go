package optimtest

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/nn"
)

// checkGradient compares the parameter gradient of the records,
// nn.Network.ParamGrads after Next, with central finite differences of risk
// as a function of the parameters.
func checkGradient(t *testing.T, p *Task, risk func() float64) {
	t.Helper()
	theta := p.Params()
	got := p.net.ParamGrads(nil)
	f := func(x []float64) float64 {
		p.SetParams(x)
		return risk()
	}
	want := fd.Gradient(nil, f, theta, &fd.Settings{Formula: fd.Central, Step: 1e-6})
	p.SetParams(theta)
	bad := 0
	for i := range got {
		if !scalar.EqualWithinAbsOrRel(got[i], want[i], 1e-7, 1e-5) {
			if bad++; bad <= 5 {
				t.Errorf("%s: ∂R/∂θ[%d] = %.10g from the records, %.10g by finite differences", p.Name(), i, got[i], want[i])
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d gradient entries differ", p.Name(), bad, len(got))
	}
}

// TestGradientTinyBatch checks, on a regression problem whose training set
// is one tiny batch of 6 examples, that the records' gradients are those
// of Risk, the training-set risk, by finite differences.
func TestGradientTinyBatch(t *testing.T) {
	for _, p := range []*Task{regression(1, 6, 6), classifier(1, nn.Tanh{}, 6, 6), autoencoder(1, 6, 6)} {
		p.Next()
		checkGradient(t, p, p.Risk)
	}
}

// TestGradientMinibatch checks, for every problem, that the records'
// gradients after Next are those of Loss, the risk of the current minibatch,
// by finite differences, so that Loss evaluates the minibatch the records
// hold.
func TestGradientMinibatch(t *testing.T) {
	for _, p := range All(1) {
		p.Next()
		p.Next()
		checkGradient(t, p, func() float64 {
			r, err := p.Loss()
			if err != nil {
				t.Fatal(err)
			}
			return r
		})
	}
}

// recordsOf returns a deep copy of the matrices of the records.
func recordsOf(recs []*secondorder.Layer) [][]mat.Matrix {
	var out [][]mat.Matrix
	for _, l := range recs {
		var ms []mat.Matrix
		for _, m := range []*mat.Dense{l.W, l.Input, l.Grad, l.Back, l.GradW} {
			ms = append(ms, mat.DenseCopyOf(m))
		}
		ms = append(ms, mat.VecDenseCopyOf(l.B), mat.VecDenseCopyOf(l.GradB), mat.NewVecDense(1, []float64{l.BackScale}))
		out = append(out, ms)
	}
	return out
}

func sameRecords(a, b [][]mat.Matrix) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		for j := range a[i] {
			if !mat.Equal(a[i][j], b[i][j]) {
				return false
			}
		}
	}
	return true
}

// TestNextFillsRecords checks the shapes and contents of the records after
// Next: Input, Grad, GradW, GradB, and Back with one Monte-Carlo vector per
// example (BackScale 1/n), all finite; and that Risk and Loss leave them
// unchanged.
func TestNextFillsRecords(t *testing.T) {
	for _, p := range All(1) {
		if _, err := p.Loss(); err == nil {
			t.Errorf("%s: Loss before Next returned no error", p.Name())
		}
		p.Next()
		n := p.BatchSize()
		for k, l := range p.Records() {
			l.Check()
			out, in := l.Dims()
			for _, c := range []struct {
				name       string
				m          *mat.Dense
				rows, cols int
			}{
				{"Input", l.Input, n, in},
				{"Grad", l.Grad, n, out},
				{"Back", l.Back, n, out},
				{"GradW", l.GradW, out, in},
			} {
				if c.m == nil {
					t.Errorf("%s: layer %d: %s is nil", p.Name(), k, c.name)
					continue
				}
				if r, cc := c.m.Dims(); r != c.rows || cc != c.cols {
					t.Errorf("%s: layer %d: %s is %d×%d, want %d×%d", p.Name(), k, c.name, r, cc, c.rows, c.cols)
				}
				if !finite(c.m.RawMatrix().Data) || mat.Norm(c.m, 2) == 0 {
					t.Errorf("%s: layer %d: %s is zero or not finite", p.Name(), k, c.name)
				}
			}
			if l.GradB == nil || l.GradB.Len() != out {
				t.Errorf("%s: layer %d: GradB missing or of the wrong length", p.Name(), k)
			}
			if l.BackScale != 1/float64(n) {
				t.Errorf("%s: layer %d: BackScale %v, want 1/%d", p.Name(), k, l.BackScale, n)
			}
		}
		before := recordsOf(p.Records())
		p.Risk()
		if _, err := p.Loss(); err != nil {
			t.Errorf("%s: Loss: %v", p.Name(), err)
		}
		if !sameRecords(before, recordsOf(p.Records())) {
			t.Errorf("%s: Risk or Loss changed the records", p.Name())
		}
	}
}

func finite(x []float64) bool {
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// TestNextDeterministic checks that a seed fixes the problem: two problems
// built with the same seed give the same parameters, risks and records,
// bit for bit, at every Next, and another seed gives other ones. It also
// checks that the minibatches of an epoch cover the training set.
func TestNextDeterministic(t *testing.T) {
	a, b, c := All(7), All(7), All(8)
	for i := range a {
		name := a[i].Name()
		if !slices.Equal(a[i].Params(), b[i].Params()) || a[i].Risk() != b[i].Risk() {
			t.Errorf("%s: same seed, different initial parameters or risk", name)
		}
		if slices.Equal(a[i].Params(), c[i].Params()) {
			t.Errorf("%s: seeds 7 and 8 give the same initial parameters", name)
		}
		seen := make([]int, a[i].Len())
		perEpoch := a[i].Len() / a[i].BatchSize()
		for s := range 2 * perEpoch {
			a[i].Next()
			b[i].Next()
			c[i].Next()
			if s < perEpoch {
				for _, j := range a[i].sched.Indices() {
					seen[j]++
				}
			}
			if !sameRecords(recordsOf(a[i].Records()), recordsOf(b[i].Records())) {
				t.Fatalf("%s: same seed, different records at Next %d", name, s+1)
			}
			if sameRecords(recordsOf(a[i].Records()), recordsOf(c[i].Records())) {
				t.Fatalf("%s: seeds 7 and 8 give the same records at Next %d", name, s+1)
			}
			// A step changes the parameters the same way in a and b.
			for _, p := range []*Task{a[i], b[i]} {
				for _, l := range p.Records() {
					l.W.Sub(l.W, l.GradW)
				}
			}
		}
		for j, k := range seen {
			if k != 1 {
				t.Fatalf("%s: example %d appears %d times in the first epoch", name, j, k)
			}
		}
		if a[i].Steps() != 2*perEpoch {
			t.Errorf("%s: Steps() = %d, want %d", name, a[i].Steps(), 2*perEpoch)
		}
	}
}

// TestBaseline checks Baseline against the risk of a network that outputs
// the best constant: zero output weights and, as output biases, the mean
// targets (regression, identity output) or zero logits (balanced classes).
func TestBaseline(t *testing.T) {
	for _, p := range []*Task{Regression(1), Classifier(1, nn.ReLU{})} {
		recs := p.Records()
		last := recs[len(recs)-1]
		last.W.Zero()
		last.B.Zero()
		if p.Name() == "Regression" {
			_, y := p.Data()
			r, k := y.Dims()
			for j := range k {
				last.B.SetVec(j, mat.Sum(y.ColView(j))/float64(r))
			}
		}
		if got, want := p.Risk(), p.Baseline(); !scalar.EqualWithinAbsOrRel(got, want, 1e-12, 1e-12) {
			t.Errorf("%s: risk of the constant output %v, Baseline %v", p.Name(), got, want)
		}
	}
	if got := Classifier(1, nn.Tanh{}).Baseline(); !scalar.EqualWithinAbsOrRel(got, math.Log(4), 1e-12, 1e-12) {
		t.Errorf("Classifier baseline %v, want log 4", got)
	}
}

// TestParams checks the snapshot helpers.
func TestParams(t *testing.T) {
	p := Autoencoder(1)
	if p.NumParams() != 16*9+8*17+3*9+8*4 {
		t.Errorf("NumParams() = %d", p.NumParams())
	}
	theta := p.Params()
	if n := p.ParamsChanged(theta); n != 0 || !p.ParamsFinite() {
		t.Fatalf("ParamsChanged = %d on the snapshot itself, finite %v", n, p.ParamsFinite())
	}
	recs := p.Records()
	recs[2].W.Set(1, 1, recs[2].W.At(1, 1)+1)
	recs[3].B.SetVec(0, math.NaN())
	if n := p.ParamsChanged(theta); n != 2 || p.ParamsFinite() {
		t.Errorf("after two changes, one to NaN: ParamsChanged = %d, finite %v", n, p.ParamsFinite())
	}
	nan := p.Params()
	if n := p.ParamsChanged(nan); n != 0 {
		t.Errorf("a NaN parameter that stays NaN counts as changed: %d", n)
	}
	p.SetParams(theta)
	if n := p.ParamsChanged(theta); n != 0 {
		t.Errorf("SetParams did not restore the snapshot: %d changed", n)
	}
}

// TestNextAllocs checks that Next does not allocate at a fixed batch size,
// so that it can sit between measured steps.
func TestNextAllocs(t *testing.T) {
	testutil.SkipAllocsUnderRace(t)
	for _, p := range All(1) {
		p.Next()
		if a := testing.AllocsPerRun(5, p.Next); a != 0 {
			t.Errorf("%s: Next allocates %v times", p.Name(), a)
		}
	}
}
