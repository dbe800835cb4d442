package nn

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestClassesAccuracy checks Classes and Accuracy on hand-made rows: plain
// maxima, ties (the smallest index wins), negative logits, NaN entries, a
// row of NaN (class −1, never right), and a matrix that is not a *mat.Dense
// (a transpose), which must give the same answers.
func TestClassesAccuracy(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name    string
		rows    int
		data    []float64
		labels  []int
		classes []int
		acc     float64
	}{
		{"one row", 1, []float64{0.1, 0.7, 0.2}, []int{1}, []int{1}, 1},
		{"all right", 3, []float64{
			0.8, 0.1, 0.1,
			0.2, 0.5, 0.3,
			0.0, 0.4, 0.6,
		}, []int{0, 1, 2}, []int{0, 1, 2}, 1},
		{"one wrong of four", 4, []float64{
			0.8, 0.1, 0.1,
			0.2, 0.5, 0.3,
			0.0, 0.4, 0.6,
			0.5, 0.2, 0.3,
		}, []int{0, 1, 2, 2}, []int{0, 1, 2, 0}, 0.75},
		{"ties go to the smallest index", 3, []float64{
			0.5, 0.5, 0,
			0.2, 0.4, 0.4,
			1, 1, 1,
		}, []int{1, 1, 0}, []int{0, 1, 0}, 2.0 / 3},
		{"logits", 2, []float64{
			-3, -1, -2,
			-5, -7, -4,
		}, []int{1, 0}, []int{1, 2}, 0.5},
		{"NaN never wins", 2, []float64{
			nan, 0.1, 0.2,
			0.3, nan, 0.1,
		}, []int{2, 0}, []int{2, 0}, 1},
		{"row of NaN", 2, []float64{
			nan, nan, nan,
			0.1, 0.8, 0.1,
		}, []int{0, 1}, []int{-1, 1}, 0.5},
		{"infinities", 2, []float64{
			math.Inf(-1), math.Inf(-1), 0,
			math.Inf(1), 1, math.Inf(1),
		}, []int{2, 0}, []int{2, 0}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cols := len(tc.data) / tc.rows
			p := mat.NewDense(tc.rows, cols, tc.data)
			// The same matrix behind an interface that is not *mat.Dense.
			pt := mat.DenseCopyOf(p.T())
			other := pt.T()
			for _, m := range []struct {
				name string
				m    mat.Matrix
			}{{"dense", p}, {"transpose", other}} {
				dst := make([]int, 7, 10) // reused: the result starts at dst[:0]
				got := Classes(dst, m.m)
				if !slices.Equal(got, tc.classes) {
					t.Errorf("%s: Classes = %v, want %v", m.name, got, tc.classes)
				}
				if &got[0] != &dst[0] {
					t.Errorf("%s: Classes did not reuse dst", m.name)
				}
				if acc := Accuracy(m.m, tc.labels); math.Abs(acc-tc.acc) > 1e-15 {
					t.Errorf("%s: Accuracy = %v, want %v", m.name, acc, tc.acc)
				}
			}
		})
	}
}

// TestClassesAccuracyPanics checks that misuse panics with an "nn: "
// message naming the problem.
func TestClassesAccuracyPanics(t *testing.T) {
	p := mat.NewDense(2, 3, []float64{0.2, 0.3, 0.5, 0.6, 0.3, 0.1})
	for _, tc := range []struct {
		name      string
		f         func()
		fragments []string
	}{
		{"Classes nil", func() { Classes(nil, nil) }, []string{"Classes", "nil"}},
		{"Classes no columns", func() { Classes(nil, emptyCols{2}) }, []string{"Classes", "2×0"}},
		{"Accuracy nil", func() { Accuracy(nil, []int{0}) }, []string{"Accuracy", "nil"}},
		{"Accuracy too few labels", func() { Accuracy(p, []int{1}) }, []string{"Accuracy", "2 rows and 1 labels"}},
		{"Accuracy too many labels", func() { Accuracy(p, []int{1, 2, 0}) }, []string{"2 rows and 3 labels"}},
		{"Accuracy no examples", func() { Accuracy(&mat.Dense{}, nil) }, []string{"no examples"}},
		{"Accuracy no columns", func() { Accuracy(emptyCols{1}, []int{0}) }, []string{"1×0"}},
		{"Accuracy label too large", func() { Accuracy(p, []int{1, 3}) }, []string{"label 3 of row 1 is outside [0, 3)"}},
		{"Accuracy negative label", func() { Accuracy(p, []int{-1, 0}) }, []string{"label -1 of row 0 is outside [0, 3)"}},
	} {
		expectPanic(t, tc.name, tc.f, tc.fragments...)
	}
}

// emptyCols is an r×0 matrix, which mat.Dense cannot be.
type emptyCols struct{ r int }

func (e emptyCols) Dims() (int, int)    { return e.r, 0 }
func (e emptyCols) At(i, j int) float64 { panic("no elements") }
func (e emptyCols) T() mat.Matrix       { return mat.Transpose{Matrix: e} }

// TestClassesAfterForward checks Classes on a network's softmax outputs
// against the argmax of the logits, which must agree.
func TestClassesAfterForward(t *testing.T) {
	rng := newRand(3)
	net := New([]int{5, 8, 4}, []Activation{Tanh{}, Softmax{}})
	net.Init(Glorot{}, rng)
	x := mat.NewDense(20, 5, nil)
	for i := range 20 {
		for j := range 5 {
			x.Set(i, j, rng.NormFloat64())
		}
	}
	f := net.Forward(x)
	fromProbs := Classes(nil, f)
	fromLogits := Classes(nil, net.Output().A)
	if !slices.Equal(fromProbs, fromLogits) {
		t.Errorf("classes from probabilities %v, from logits %v", fromProbs, fromLogits)
	}
	if acc := Accuracy(f, fromLogits); acc != 1 {
		t.Errorf("accuracy against its own predictions %v, want 1", acc)
	}
}
