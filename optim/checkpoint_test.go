package optim_test

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/state"
	"github.com/secondorder/secondorder/optim"
	"github.com/secondorder/secondorder/optim/optimtest"
)

// checkpointer is a first-order optimizer with checkpoints.
type checkpointer interface {
	optim.Optimizer
	optim.Reporter
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// checkpointSeed is the seed of the problems of the checkpoint tests.
const checkpointSeed = 3

// checkpointRows are the first-order optimizers under test, zero values and
// settings with momentum, Nesterov momentum and Adam without momentum.
var checkpointRows = []struct {
	name string
	new  func() checkpointer
}{
	{"SGD", func() checkpointer { return &optim.SGD{} }},
	{"SGD-Momentum", func() checkpointer { return &optim.SGD{Rate: 0.02, Momentum: 0.9} }},
	{"SGD-Nesterov", func() checkpointer { return &optim.SGD{Momentum: 0.9, Nesterov: true} }},
	{"Centered", func() checkpointer { return &optim.Centered{} }},
	{"Centered-Nesterov", func() checkpointer { return &optim.Centered{Rate: 0.02, Momentum: 0.8, Nesterov: true} }},
	{"RMSProp", func() checkpointer { return &optim.RMSProp{} }},
	{"RMSProp-Momentum", func() checkpointer {
		return &optim.RMSProp{Rate: 0.002, Rho: 0.95, Epsilon: 1e-6, Momentum: 0.9}
	}},
	{"Adam", func() checkpointer { return &optim.Adam{} }},
	{"Adam-NoMomentum", func() checkpointer { return &optim.Adam{NoMomentum: true} }},
	{"Adam-Settings", func() checkpointer {
		return &optim.Adam{Rate: 0.01, Beta1: 0.8, Beta2: 0.99, Epsilon: 1e-7}
	}},
}

// run does n updates of opt on p, failing t on an error.
func run(t *testing.T, opt optim.Optimizer, p *optimtest.Task, n int) {
	t.Helper()
	for range n {
		p.Next()
		if err := opt.Step(p.Records()); err != nil {
			t.Fatal(err)
		}
	}
}

// marshal returns opt's checkpoint, failing t on an error.
func marshal(t *testing.T, opt encoding.BinaryMarshaler) []byte {
	t.Helper()
	data, err := opt.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// sameParams returns an error naming the first parameter (W, B or Extra)
// of the layers a and b whose bits differ.
func sameParams(a, b []*secondorder.Layer) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d and %d layers", len(a), len(b))
	}
	bits := func(what string, k int, x, y []float64) error {
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
				return fmt.Errorf("layer %d: %s[%d] = %v and %v", k, what, i, x[i], y[i])
			}
		}
		return nil
	}
	for k := range a {
		if err := bits("W", k, a[k].W.RawMatrix().Data, b[k].W.RawMatrix().Data); err != nil {
			return err
		}
		if err := bits("B", k, a[k].B.RawVector().Data, b[k].B.RawVector().Data); err != nil {
			return err
		}
		if len(a[k].Extra) != len(b[k].Extra) {
			return fmt.Errorf("layer %d: %d and %d Extra parameters", k, len(a[k].Extra), len(b[k].Extra))
		}
		for j := range a[k].Extra {
			if err := bits("Extra "+a[k].Extra[j].Name, k, a[k].Extra[j].Value.RawVector().Data, b[k].Extra[j].Value.RawVector().Data); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestCheckpointResume: for every first-order optimizer and every problem,
// 10 updates, a checkpoint restored into a fresh optimizer of the same
// settings and 10 more updates give the parameters, the Report and the
// checkpoint of 20 updates straight, bit for bit.
func TestCheckpointResume(t *testing.T) {
	const n = 20
	for _, row := range checkpointRows {
		for i, straight := range optimtest.All(checkpointSeed) {
			t.Run(row.name+"/"+straight.Name(), func(t *testing.T) {
				optA := row.new()
				run(t, optA, straight, n)

				resumed := optimtest.All(checkpointSeed)[i]
				first := row.new()
				run(t, first, resumed, n/2)
				data := marshal(t, first)
				optB := row.new()
				if err := optB.UnmarshalBinary(data); err != nil {
					t.Fatal(err)
				}
				if got := marshal(t, optB); !bytes.Equal(got, data) {
					t.Fatal("the restored optimizer's checkpoint differs from the one it was restored from")
				}
				run(t, optB, resumed, n-n/2)

				if err := sameParams(straight.Records(), resumed.Records()); err != nil {
					t.Errorf("parameters after %d updates straight and resumed: %v", n, err)
				}
				if a, b := optA.Report(), optB.Report(); a != b {
					t.Errorf("Report straight %+v, resumed %+v", a, b)
				}
				if !bytes.Equal(marshal(t, optA), marshal(t, optB)) {
					t.Error("checkpoints after the straight and resumed runs differ")
				}
			})
		}
	}
}

// extraTask is a hand-made layer with Extra parameters (a gain and a shift)
// and a strided B, whose records are filled from its seeded generator.
type extraTask struct {
	l   *secondorder.Layer
	rng *rand.Rand
}

func newExtraTask(seed uint64) *extraTask {
	const n, in, out = 5, 4, 3
	rng := rand.New(rand.NewPCG(seed, 1))
	fill := func(s []float64) {
		for i := range s {
			s[i] = rng.NormFloat64()
		}
	}
	w := mat.NewDense(out, in, nil)
	fill(w.RawMatrix().Data)
	b := mat.NewDense(out, 2, nil) // B is a strided column of it
	fill(b.RawMatrix().Data)
	p := &extraTask{rng: rng, l: &secondorder.Layer{
		W:     w,
		B:     b.ColView(1).(*mat.VecDense),
		Input: mat.NewDense(n, in, nil),
		Grad:  mat.NewDense(n, out, nil),
		GradW: mat.NewDense(out, in, nil),
		GradB: mat.NewVecDense(out, nil),
		Extra: []secondorder.ExtraParam{
			{Name: "gamma", Value: mat.NewVecDense(out, nil), Grad: mat.NewVecDense(out, nil)},
			{Name: "beta", Value: mat.NewVecDense(2, nil), Grad: mat.NewVecDense(2, nil)},
		},
	}}
	fill(p.l.Extra[0].Value.RawVector().Data)
	fill(p.l.Extra[1].Value.RawVector().Data)
	return p
}

// Next fills the records with new draws.
func (p *extraTask) Next() {
	for _, m := range []*mat.Dense{p.l.Input, p.l.Grad, p.l.GradW} {
		data := m.RawMatrix().Data
		for i := range data {
			data[i] = p.rng.NormFloat64()
		}
	}
	for _, v := range []*mat.VecDense{p.l.GradB, p.l.Extra[0].Grad, p.l.Extra[1].Grad} {
		for i := 0; i < v.Len(); i++ {
			v.SetVec(i, p.rng.NormFloat64())
		}
	}
}

func (p *extraTask) Records() []*secondorder.Layer { return []*secondorder.Layer{p.l} }

// TestCheckpointResumeExtra is TestCheckpointResume on a layer with Extra
// parameters and a strided B.
func TestCheckpointResumeExtra(t *testing.T) {
	const n = 20
	for _, row := range checkpointRows {
		t.Run(row.name, func(t *testing.T) {
			stepN := func(opt optim.Optimizer, p *extraTask, k int) {
				for range k {
					p.Next()
					if err := opt.Step(p.Records()); err != nil {
						t.Fatal(err)
					}
				}
			}
			straight, resumed := newExtraTask(1), newExtraTask(1)
			optA := row.new()
			stepN(optA, straight, n)
			first := row.new()
			stepN(first, resumed, n/2)
			optB := row.new()
			if err := optB.UnmarshalBinary(marshal(t, first)); err != nil {
				t.Fatal(err)
			}
			stepN(optB, resumed, n-n/2)
			if err := sameParams(straight.Records(), resumed.Records()); err != nil {
				t.Errorf("parameters after %d updates straight and resumed: %v", n, err)
			}
			if a, b := optA.Report(), optB.Report(); a != b {
				t.Errorf("Report straight %+v, resumed %+v", a, b)
			}
		})
	}
}

// TestCheckpointFresh: the checkpoint of an optimizer that never stepped
// restores into a fresh one, which then behaves as a fresh one; the
// checkpoint is allocated once (plus the Writer of internal/state).
func TestCheckpointFresh(t *testing.T) {
	for _, row := range checkpointRows {
		t.Run(row.name, func(t *testing.T) {
			data := marshal(t, row.new())
			opt := row.new()
			if err := opt.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			if got := marshal(t, opt); !bytes.Equal(got, data) {
				t.Error("round trip of a fresh optimizer changed its checkpoint")
			}
			if r := opt.Report(); r.Updates != 0 {
				t.Errorf("restored fresh optimizer reports %d updates", r.Updates)
			}
			a, b := optimtest.Regression(checkpointSeed), optimtest.Regression(checkpointSeed)
			ref := row.new()
			run(t, ref, a, 3)
			run(t, opt, b, 3)
			if err := sameParams(a.Records(), b.Records()); err != nil {
				t.Errorf("restored fresh optimizer and fresh one differ: %v", err)
			}
			if allocs := testing.AllocsPerRun(10, func() { opt.MarshalBinary() }); allocs > 2 {
				t.Errorf("MarshalBinary: %v allocations, want at most 2 (the checkpoint and the Writer)", allocs)
			}
		})
	}
}

// steppedCheckpointer returns the optimizer of row after a few updates on
// a problem, and its checkpoint.
func steppedCheckpointer(t *testing.T, newOpt func() checkpointer) (checkpointer, []byte) {
	t.Helper()
	opt := newOpt()
	run(t, opt, optimtest.Regression(checkpointSeed), 4)
	return opt, marshal(t, opt)
}

// checkRefusal requires UnmarshalBinary of data into opt to fail with an
// error that contains want (and wraps ErrCorruptCheckpoint when corrupt),
// leaving opt's checkpoint unchanged.
func checkRefusal(t *testing.T, opt checkpointer, data []byte, corrupt bool, want string) {
	t.Helper()
	before := marshal(t, opt)
	err := opt.UnmarshalBinary(data)
	switch {
	case err == nil:
		t.Fatalf("no error, want %q", want)
	case corrupt != errors.Is(err, optim.ErrCorruptCheckpoint) || corrupt != errors.Is(err, state.ErrCorrupt):
		t.Errorf("error %q: wraps ErrCorrupt %t, want %t", err, !corrupt, corrupt)
	case !strings.Contains(err.Error(), want):
		t.Errorf("error %q, want it to contain %q", err, want)
	}
	if after := marshal(t, opt); !bytes.Equal(after, before) {
		t.Error("the refused restore changed the optimizer")
	}
}

// TestCheckpointSettingsDiffer: a checkpoint restored into an optimizer
// whose settings differ, one setting at a time, is refused with an error
// naming the setting, and the optimizer is unchanged.
func TestCheckpointSettingsDiffer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		saved    func() checkpointer
		receiver checkpointer
		want     string
	}{
		{"SGD/Rate", func() checkpointer { return &optim.SGD{} }, &optim.SGD{Rate: 0.02}, "optim: SGD: checkpoint has Rate=0.01, this optimizer Rate=0.02"},
		{"SGD/Momentum", func() checkpointer { return &optim.SGD{} }, &optim.SGD{Momentum: 0.5}, "optim: SGD: checkpoint has Momentum=0, this optimizer Momentum=0.5"},
		{"SGD/Nesterov", func() checkpointer { return &optim.SGD{Momentum: 0.9} }, &optim.SGD{Momentum: 0.9, Nesterov: true}, "optim: SGD: checkpoint has Nesterov=false, this optimizer Nesterov=true"},
		{"Centered/Rate", func() checkpointer { return &optim.Centered{Rate: 0.01} }, &optim.Centered{Rate: 0.03}, "optim: Centered: checkpoint has Rate=0.01, this optimizer Rate=0.03"},
		{"Centered/Momentum", func() checkpointer { return &optim.Centered{Momentum: 0.9} }, &optim.Centered{Momentum: 0.8}, "optim: Centered: checkpoint has Momentum=0.9, this optimizer Momentum=0.8"},
		{"Centered/Nesterov", func() checkpointer { return &optim.Centered{Nesterov: true} }, &optim.Centered{}, "optim: Centered: checkpoint has Nesterov=true, this optimizer Nesterov=false"},
		{"RMSProp/Rate", func() checkpointer { return &optim.RMSProp{} }, &optim.RMSProp{Rate: 0.002}, "optim: RMSProp: checkpoint has Rate=0.001, this optimizer Rate=0.002"},
		{"RMSProp/Rho", func() checkpointer { return &optim.RMSProp{} }, &optim.RMSProp{Rho: 0.95}, "optim: RMSProp: checkpoint has Rho=0.9, this optimizer Rho=0.95"},
		{"RMSProp/Epsilon", func() checkpointer { return &optim.RMSProp{} }, &optim.RMSProp{Epsilon: 1e-6}, "optim: RMSProp: checkpoint has Epsilon=1e-08, this optimizer Epsilon=1e-06"},
		{"RMSProp/Momentum", func() checkpointer { return &optim.RMSProp{Momentum: 0.5} }, &optim.RMSProp{}, "optim: RMSProp: checkpoint has Momentum=0.5, this optimizer Momentum=0"},
		{"Adam/Rate", func() checkpointer { return &optim.Adam{} }, &optim.Adam{Rate: 0.002}, "optim: Adam: checkpoint has Rate=0.001, this optimizer Rate=0.002"},
		{"Adam/NoMomentum", func() checkpointer { return &optim.Adam{} }, &optim.Adam{NoMomentum: true}, "optim: Adam: checkpoint has NoMomentum=false, this optimizer NoMomentum=true"},
		{"Adam/Beta1", func() checkpointer { return &optim.Adam{} }, &optim.Adam{Beta1: 0.8}, "optim: Adam: checkpoint has Beta1=0.9, this optimizer Beta1=0.8"},
		{"Adam/Beta2", func() checkpointer { return &optim.Adam{} }, &optim.Adam{Beta2: 0.99}, "optim: Adam: checkpoint has Beta2=0.999, this optimizer Beta2=0.99"},
		{"Adam/Epsilon", func() checkpointer { return &optim.Adam{} }, &optim.Adam{Epsilon: 1e-7}, "optim: Adam: checkpoint has Epsilon=1e-08, this optimizer Epsilon=1e-07"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, data := steppedCheckpointer(t, tc.saved)
			run(t, tc.receiver, optimtest.Regression(checkpointSeed+1), 2)
			checkRefusal(t, tc.receiver, data, false, tc.want)
		})
	}
	// The defaults are filled in before comparing: an explicit default is
	// the same setting as zero.
	_, data := steppedCheckpointer(t, func() checkpointer { return &optim.Adam{} })
	explicit := &optim.Adam{Rate: optim.DefaultAdamRate, Beta1: optim.DefaultAdamBeta1, Beta2: optim.DefaultAdamBeta2, Epsilon: optim.DefaultAdamEpsilon}
	if err := explicit.UnmarshalBinary(data); err != nil {
		t.Errorf("Adam with its defaults written out: %v", err)
	}
	// Invalid settings give the error of Validate, the receiver unchanged.
	bad := &optim.SGD{Rate: -1}
	if err := bad.UnmarshalBinary(data); err == nil || !strings.Contains(err.Error(), "optim: SGD: Rate=-1") {
		t.Errorf("UnmarshalBinary with an invalid Rate: %v", err)
	}
	if _, err := bad.MarshalBinary(); err == nil || !strings.Contains(err.Error(), "optim: SGD: Rate=-1") {
		t.Errorf("MarshalBinary with an invalid Rate: %v", err)
	}
	if r := bad.Report(); r.Updates != 0 {
		t.Errorf("the refused restore changed the optimizer: %d updates", r.Updates)
	}
}

// TestCheckpointCorrupt: truncated and altered checkpoints, another
// optimizer's checkpoint and inconsistent states are refused with an error
// wrapping ErrCorruptCheckpoint, and the optimizer is unchanged.
func TestCheckpointCorrupt(t *testing.T) {
	for _, row := range checkpointRows {
		t.Run(row.name, func(t *testing.T) {
			opt, data := steppedCheckpointer(t, row.new)
			for n := 0; n < len(data); n += 1 + n/16 {
				checkRefusal(t, opt, data[:n], true, "optim: ")
			}
			for i := 0; i < len(data); i += 1 + i/64 {
				bad := bytes.Clone(data)
				bad[i] ^= 1 << (i % 8)
				checkRefusal(t, opt, bad, true, "optim: ")
			}
		})
	}
	_, adam := steppedCheckpointer(t, func() checkpointer { return &optim.Adam{} })
	_, sgd := steppedCheckpointer(t, func() checkpointer { return &optim.SGD{} })
	checkRefusal(t, &optim.SGD{}, adam, true, `optim: SGD: corrupt state: state of "optim.Adam", want "optim.SGD"`)
	checkRefusal(t, &optim.RMSProp{}, adam, true, `optim: RMSProp: corrupt state: state of "optim.Adam"`)
	checkRefusal(t, &optim.Centered{}, sgd, true, `optim: Centered: corrupt state: state of "optim.SGD"`)

	// Hand-made states of SGD's layout (Rate, Momentum, Nesterov, updates,
	// layers, then per layer out, in, Extra lengths and velocities) that
	// are well framed but inconsistent.
	sgdState := func(t, layers, out, in int, extra []int, values int) []byte {
		return state.Encode("optim.SGD", 1, func(w *state.Writer) {
			w.Float(optim.DefaultSGDRate)
			w.Float(0)
			w.Bool(false)
			w.Int(t)
			w.Int(layers)
			if layers > 0 {
				w.Int(out)
				w.Int(in)
				w.Ints(extra)
				w.Floats(make([]float64, values))
			}
		})
	}
	if err := new(optim.SGD).UnmarshalBinary(sgdState(1, 1, 2, 3, []int{2}, 2*3+2+2)); err != nil {
		t.Fatalf("consistent hand-made state: %v", err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"length", sgdState(1, 1, 2, 3, nil, 7), "layer 0: state arrays of 7 and 0 values for a 2×3 layer with Extra lengths [], want 8"},
		{"Extra length", sgdState(1, 1, 2, 3, []int{2}, 8), "want 10"},
		{"zero out", sgdState(1, 1, 0, 3, nil, 0), "layer 0: shape 0×3"},
		{"negative in", sgdState(1, 1, 2, -3, nil, 0), "layer 0: shape 2×-3"},
		{"zero Extra", sgdState(1, 1, 2, 3, []int{0}, 8), "want positive sizes"},
		{"overflow", sgdState(1, 1, math.MaxInt/2, 3, nil, 0), "want positive sizes"},
		{"negative updates", sgdState(-1, 0, 0, 0, nil, 0), "-1 updates"},
		{"negative layers", sgdState(1, -2, 0, 0, nil, 0), "-2 layers"},
		{"missing layers", sgdState(1, 1<<40, 2, 3, nil, 8), "needs 8 bytes, 0 left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt, _ := steppedCheckpointer(t, func() checkpointer { return &optim.SGD{} })
			checkRefusal(t, opt, tc.data, true, tc.want)
		})
	}
}

// TestCheckpointShapeChange: a restored optimizer panics, as one that
// stepped does, when the layers do not have the recorded shapes.
func TestCheckpointShapeChange(t *testing.T) {
	_, data := steppedCheckpointer(t, func() checkpointer { return &optim.Adam{} })
	opt := &optim.Adam{}
	if err := opt.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	p := optimtest.Autoencoder(checkpointSeed)
	p.Next()
	if _, panicked := step(opt, p.Records()); panicked == nil {
		t.Error("no panic for layers of other shapes than the checkpoint's")
	}
}
