package optim

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/internal/state"
)

// SavedBlock is a curvature block of the checkpoint tests that saves its
// state (encoding.BinaryMarshaler and BinaryUnmarshaler): C = c I, with c
// the moving average (weight 0.9 on the old value) of 1 plus the mean
// square of the records' Input, factorized as 1/(c + λ). Refuse makes its
// UnmarshalBinary fail with an error of its own. It is exported for the
// tests of package optim_test, which stand in it for the blocks of package
// curvature as long as those cannot be saved.
type SavedBlock struct {
	Refuse bool

	c, inv float64
	n      int
	ready  bool
}

// Update folds the mean square of the record's Input into c.
func (b *SavedBlock) Update(l *secondorder.Layer) {
	r := l.Input.RawMatrix()
	var s float64
	for i := 0; i < r.Rows; i++ {
		for _, x := range r.Data[i*r.Stride : i*r.Stride+r.Cols] {
			s += x * x
		}
	}
	m := 1 + s/float64(r.Rows*r.Cols)
	if b.n == 0 {
		b.c = m
	} else {
		b.c = 0.9*b.c + 0.1*m
	}
	b.n++
}

// Scale returns c.
func (b *SavedBlock) Scale() float64 {
	if b.n == 0 {
		return 1
	}
	return b.c
}

// Refresh factorizes c + λ.
func (b *SavedBlock) Refresh(lambda float64) error {
	if b.n == 0 {
		return curvature.ErrNoEstimate
	}
	b.inv, b.ready = 1/(b.c+lambda), true
	return nil
}

// Ready reports whether Refresh succeeded.
func (b *SavedBlock) Ready() bool { return b.ready }

// Precondition writes the gradient divided by c + λ.
func (b *SavedBlock) Precondition(dst *mat.Dense, l *secondorder.Layer) {
	l.ParamGrad(dst)
	dst.Scale(b.inv, dst)
}

// Mul writes c v.
func (b *SavedBlock) Mul(dst, v *mat.Dense) { dst.Scale(b.c, v) }

// MarshalBinary saves the state.
func (b *SavedBlock) MarshalBinary() ([]byte, error) {
	return state.Encode("optim.SavedBlock", 1, func(w *state.Writer) {
		w.Float(b.c)
		w.Float(b.inv)
		w.Int(b.n)
		w.Bool(b.ready)
	}), nil
}

// UnmarshalBinary restores the state.
func (b *SavedBlock) UnmarshalBinary(data []byte) error {
	if b.Refuse {
		return errors.New("SavedBlock refuses")
	}
	var s SavedBlock
	err := state.Decode(data, "optim.SavedBlock", 1, func(r *state.Reader, _ uint32) error {
		s.c, s.inv, s.n, s.ready = r.Float(), r.Float(), r.Int(), r.Bool()
		if s.n < 0 {
			r.Fail("%d updates", s.n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	*b = s
	return nil
}

var _ curvature.Block = (*SavedBlock)(nil)

// TestEngineCheckpointInconsistent: checkpoints well framed but holding
// values out of range or arrays that do not fit their layer, made by
// altering the engine of a Preconditioned that stepped, are refused with an
// error wrapping ErrCorruptCheckpoint that says what is wrong, and the
// receiver is unchanged.
func TestEngineCheckpointInconsistent(t *testing.T) {
	newOpt := func(refuse bool) *Preconditioned {
		return &Preconditioned{NewBlock: func(int) curvature.Block { return &SavedBlock{Refuse: refuse} }}
	}
	stepped := func(seed uint64) *Preconditioned {
		rng := rand.New(rand.NewPCG(seed, 1))
		l := randRecord(rng, 6, 3, 2)
		setQuadraticRisk(l)
		p := newOpt(false)
		for range 3 {
			if err := p.Step([]*secondorder.Layer{l}); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		alter  func(e *engine)
		refuse bool
		want   string
	}{
		{"negative updates", func(e *engine) { e.t = -1 }, false, "-1 updates"},
		{"negative damping", func(e *engine) { e.lambda = -1 }, false, "damping -1, want finite and ≥ 0"},
		{"NaN damping", func(e *engine) { e.lambda = math.NaN() }, false, "damping NaN"},
		{"negative fallbacks", func(e *engine) { e.report.Fallbacks = -1 }, false, "Fallbacks=-1"},
		{"layers before start", func(e *engine) { e.started, e.t = false, 0 }, false, "1 layers and 0 updates before the first step"},
		{"zero out", func(e *engine) { e.layers[0].out = 0 }, false, "layer 0: shape 0×3"},
		{"layer damping", func(e *engine) { e.layers[0].lambda = math.Inf(1) }, false, "layer 0: damping +Inf"},
		{"prev length", func(e *engine) { e.layers[0].prev = *mat.NewDense(1, 1, nil) }, false, "layer 0: δ_prev of 1 values for a 2×3 layer, want 8"},
		{"velocity length", func(e *engine) { e.layers[0].ve[0] = mat.NewVecDense(3, nil) }, false, "layer 0: velocity of Extra parameter 0 has 3 values, want 2"},
		{"block refuses", func(*engine) {}, true, "layer 0: curvature block *optim.SavedBlock: SavedBlock refuses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := stepped(1)
			tc.alter(&src.e)
			data, err := src.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			dst := stepped(2)
			dst.NewBlock = newOpt(tc.refuse).NewBlock
			before, _ := dst.MarshalBinary()
			err = dst.UnmarshalBinary(data)
			switch {
			case err == nil:
				t.Fatalf("no error, want %q", tc.want)
			case !errors.Is(err, ErrCorruptCheckpoint):
				t.Errorf("error %q does not wrap ErrCorruptCheckpoint", err)
			case !strings.HasPrefix(err.Error(), "optim: Preconditioned: ") || !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if after, _ := dst.MarshalBinary(); string(after) != string(before) {
				t.Error("the refused restore changed the optimizer")
			}
		})
	}
}
