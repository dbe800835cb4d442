package curvature

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/state"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/kron"
)

// checkpointed is a block with checkpoints.
type checkpointed interface {
	Block
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// checkpointCase is a block setting whose checkpoints are tested on
// records of n examples, n_in inputs, n_out outputs and m rows of Back.
type checkpointCase struct {
	name           string
	kind           string // the type, "KFACBlock"
	settings       int    // bytes of settings before the block's base
	fresh          func() checkpointed
	n, in, out, m  int
	examples       bool
	twoPreconditon bool // has a batch side and a gradient side (path)
}

// checkpointCases cover every block and its settings: the default and
// other decays, ACP's fixed and heuristic α with and without averaging,
// and layers for which the automatic path is the batch side (n small) or
// the gradient side.
var checkpointCases = []checkpointCase{
	{"KFAC default decay", "KFACBlock", 8, func() checkpointed { return &KFACBlock{} }, 6, 4, 3, 6, false, true},
	{"KFAC decay 0.5, BackExamples", "KFACBlock", 8, func() checkpointed { return &KFACBlock{Decay: 0.5} }, 5, 3, 2, 9, true, true},
	{"KFAC wide layer", "KFACBlock", 8, func() checkpointed { return &KFACBlock{Decay: 0.9} }, 3, 12, 9, 3, false, true},
	{"ACP heuristic α", "ACPBlock", 16, func() checkpointed { return &ACPBlock{} }, 7, 4, 3, 7, false, true},
	{"ACP fixed α", "ACPBlock", 16, func() checkpointed { return &ACPBlock{Alpha: 0.5} }, 7, 3, 2, 7, false, true},
	{"ACP heuristic α, averaged", "ACPBlock", 16, func() checkpointed { return &ACPBlock{Decay: 0.8} }, 6, 4, 2, 6, false, true},
	{"ACP fixed α, averaged, wide", "ACPBlock", 16, func() checkpointed { return &ACPBlock{Alpha: 2, Decay: 0.5} }, 3, 10, 8, 3, false, true},
	{"Exact", "ExactBlock", 0, func() checkpointed { return &ExactBlock{} }, 5, 3, 2, 9, true, false},
	{"Diagonal default decay", "DiagonalBlock", 8, func() checkpointed { return &DiagonalBlock{} }, 6, 4, 3, 6, false, false},
	{"Diagonal decay 0.3", "DiagonalBlock", 8, func() checkpointed { return &DiagonalBlock{Decay: 0.3} }, 5, 3, 2, 12, true, false},
	{"EKFAC default decay", "EKFACBlock", 8, func() checkpointed { return &EKFACBlock{} }, 6, 4, 3, 6, false, true},
	{"EKFAC decay 0.5, BackExamples", "EKFACBlock", 8, func() checkpointed { return &EKFACBlock{Decay: 0.5} }, 5, 3, 2, 9, true, true},
	{"Shampoo default decay", "ShampooBlock", 8, func() checkpointed { return &ShampooBlock{} }, 6, 4, 3, 6, false, false},
	{"Shampoo decay 0.5", "ShampooBlock", 8, func() checkpointed { return &ShampooBlock{Decay: 0.5} }, 5, 3, 2, 9, true, false},
	{"SOAP default decay", "SOAPBlock", 8, func() checkpointed { return &SOAPBlock{} }, 6, 4, 3, 6, false, false},
	{"SOAP decay 0.5", "SOAPBlock", 8, func() checkpointed { return &SOAPBlock{Decay: 0.5} }, 5, 3, 2, 9, true, false},
}

// record returns the case's record drawn with the seed, with GradW and
// GradB.
func (tc checkpointCase) record(seed uint64) *secondorder.Layer {
	return blockRecord(seed, tc.n, tc.in, tc.out, tc.m, tc.examples)
}

// checkpointStep is one call of the sequence that the checkpoint tests run
// on the saved block and on the restored one.
type checkpointStep struct {
	name string
	do   func(t *testing.T, b checkpointed)
}

// steps returns the sequence: two Updates, a Refresh, an Update (and for
// ACPBlock a SetAlpha with another record) so that the statistics and α_t
// move away from those of the factorization, then an Update and a Refresh
// with another damping.
func (tc checkpointCase) steps() []checkpointStep {
	update := func(seed uint64) checkpointStep {
		return checkpointStep{fmt.Sprintf("Update %d", seed), func(t *testing.T, b checkpointed) { b.Update(tc.record(seed)) }}
	}
	refresh := func(lambda float64) checkpointStep {
		return checkpointStep{fmt.Sprintf("Refresh %g", lambda), func(t *testing.T, b checkpointed) {
			if _, err := RefreshDamped(b, lambda, kron.Retry{}); err != nil {
				t.Fatal(err)
			}
		}}
	}
	return []checkpointStep{
		update(1), update(2), refresh(0.1), update(3),
		{"SetAlpha (ACP)", func(t *testing.T, b checkpointed) {
			if acp, ok := b.(*ACPBlock); ok {
				acp.SetAlpha(tc.record(4))
			}
		}},
		update(5), refresh(0.01),
	}
}

// sameBits reports whether a and b have the same shape and the same bits.
func sameBits(a, b *mat.Dense) bool {
	ar, ac := a.Dims()
	br, bc := b.Dims()
	if ar != br || ac != bc {
		return false
	}
	for i := 0; i < ar; i++ {
		for j := 0; j < ac; j++ {
			if math.Float64bits(a.At(i, j)) != math.Float64bits(b.At(i, j)) {
				return false
			}
		}
	}
	return true
}

// setPath forces the solve path of the blocks that have two.
func setPath(b checkpointed, p solvePath) {
	switch b := b.(type) {
	case *KFACBlock:
		b.path = p
	case *ACPBlock:
		b.path = p
	case *EKFACBlock:
		b.path = p
	}
}

// hasEstimate reports whether b has seen a record (Mul may be called).
func hasEstimate(b checkpointed) bool {
	switch b := b.(type) {
	case *KFACBlock:
		return b.aAvg.Count() > 0
	case *ACPBlock:
		return b.k > 0
	case *ExactBlock:
		return b.has
	case *DiagonalBlock:
		return b.avg.Count() > 0
	case *EKFACBlock:
		return b.kf.aAvg.Count() > 0
	case *ShampooBlock:
		return b.gf.count() > 0
	case *SOAPBlock:
		return b.gf.count() > 0
	}
	panic("unknown block")
}

// marshal returns b's checkpoint, failing the test on an error.
func marshal(t *testing.T, b encoding.BinaryMarshaler) []byte {
	t.Helper()
	data, err := b.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	return data
}

// checkSame requires got to behave as want, bit for bit: Scale, Ready,
// Damping, ACP's α_t, α_r and Pending, Mul on a random direction and
// Precondition of the record l on every path, and the same checkpoint.
func checkSame(t *testing.T, tc checkpointCase, want, got checkpointed, l *secondorder.Layer) {
	t.Helper()
	if w, g := want.Scale(), got.Scale(); math.Float64bits(w) != math.Float64bits(g) {
		t.Errorf("Scale = %v, want %v", g, w)
	}
	if w, g := want.Ready(), got.Ready(); w != g {
		t.Errorf("Ready = %t, want %t", g, w)
	}
	type damped interface{ Damping() float64 }
	if w, g := want.(damped).Damping(), got.(damped).Damping(); math.Float64bits(w) != math.Float64bits(g) {
		t.Errorf("Damping = %v, want %v", g, w)
	}
	if wa, ok := want.(*ACPBlock); ok {
		ga := got.(*ACPBlock)
		if wa.CurrentAlpha() != ga.CurrentAlpha() || wa.RefreshAlpha() != ga.RefreshAlpha() || wa.Pending() != ga.Pending() {
			t.Errorf("α_t, α_r, Pending = %v, %v, %t, want %v, %v, %t",
				ga.CurrentAlpha(), ga.RefreshAlpha(), ga.Pending(), wa.CurrentAlpha(), wa.RefreshAlpha(), wa.Pending())
		}
	}
	if wk, ok := want.(*KFACBlock); ok {
		if w, g := wk.Pi(), got.(*KFACBlock).Pi(); math.Float64bits(w) != math.Float64bits(g) {
			t.Errorf("Pi = %v, want %v", g, w)
		}
	}
	if hasEstimate(want) {
		v := testutil.RandDense(newRand(99), tc.out, tc.in+1, 1)
		var wm, gm mat.Dense
		want.Mul(&wm, v)
		got.Mul(&gm, v)
		if !sameBits(&wm, &gm) {
			t.Errorf("Mul differs")
		}
	}
	if want.Ready() {
		paths := []solvePath{pathAuto}
		if tc.twoPreconditon {
			paths = append(paths, pathGradient, pathBatch)
		}
		for _, p := range paths {
			setPath(want, p)
			setPath(got, p)
			var wd, gd mat.Dense
			want.Precondition(&wd, l)
			got.Precondition(&gd, l)
			if !sameBits(&wd, &gd) {
				t.Errorf("Precondition (path %d) differs", p)
			}
		}
		setPath(want, pathAuto)
		setPath(got, pathAuto)
	}
	if !bytes.Equal(marshal(t, want), marshal(t, got)) {
		t.Errorf("the checkpoints differ")
	}
}

// TestBlockCheckpoint proves that a block restored from a checkpoint
// (UnmarshalBinary into a fresh block of the same settings) behaves as the
// saved one bit for bit — Scale, Ready, Damping, π, α_t, α_r, Pending, Mul,
// Precondition on every path — when saved never updated, updated but not
// refreshed, refreshed and then updated (the factorization held no longer
// that of the current statistics, α_t not α_r) and at the end of the
// sequence, and that both stay identical through the rest of the sequence
// of Updates, SetAlphas and Refreshes, compared after each step.
func TestBlockCheckpoint(t *testing.T) {
	for _, tc := range checkpointCases {
		steps := tc.steps()
		probe := tc.record(50)
		for _, at := range []int{0, 1, 4, 5, len(steps)} {
			t.Run(fmt.Sprintf("%s/saved after %d steps", tc.name, at), func(t *testing.T) {
				orig := tc.fresh()
				for _, s := range steps[:at] {
					s.do(t, orig)
				}
				restored := tc.fresh()
				if err := restored.UnmarshalBinary(marshal(t, orig)); err != nil {
					t.Fatalf("UnmarshalBinary: %v", err)
				}
				checkSame(t, tc, orig, restored, probe)
				rest := append(steps[at:len(steps):len(steps)], steps[:3]...) // and once more Update, Update, Refresh
				for _, s := range rest {
					s.do(t, orig)
					s.do(t, restored)
					checkSame(t, tc, orig, restored, probe)
				}
			})
		}
	}
}

// TestMovingAverageCheckpoint proves that a MovingAverage of matrices, of
// vectors and one never used is restored bit for bit (the same Count and
// checkpoint, which holds the average) and gives the same average after
// one more estimate; that a different Decay is refused naming it; and
// that the default decay equals its explicit value.
func TestMovingAverageCheckpoint(t *testing.T) {
	rng := newRand(3)
	var syms [3]*mat.SymDense
	for i := range syms {
		syms[i] = &mat.SymDense{}
		syms[i].SymOuterK(1, testutil.RandDense(rng, 3, 4, 1))
	}
	var vecs [3]*mat.VecDense
	for i := range vecs {
		vecs[i] = mat.NewVecDense(5, testutil.RandDense(rng, 1, 5, 1).RawMatrix().Data)
	}
	for _, tc := range []struct {
		name  string
		decay float64
		add   func(a *MovingAverage, i int)
	}{
		{"never used", 0, nil},
		{"matrices", 0, func(a *MovingAverage, i int) { a.Add(syms[i]) }},
		{"vectors", 0.5, func(a *MovingAverage, i int) { a.AddVec(vecs[i]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &MovingAverage{Decay: tc.decay}
			if tc.add != nil {
				tc.add(a, 0)
				tc.add(a, 1)
			}
			data := marshal(t, a)
			b := &MovingAverage{Decay: tc.decay}
			if err := b.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			if b.Count() != a.Count() || !bytes.Equal(marshal(t, b), data) {
				t.Fatalf("restored average differs")
			}
			if tc.add != nil {
				tc.add(a, 2)
				tc.add(b, 2)
				if !bytes.Equal(marshal(t, a), marshal(t, b)) {
					t.Errorf("averages differ after one more estimate")
				}
			}
		})
	}
	a := &MovingAverage{Decay: 0.9}
	a.Add(syms[0])
	err := (&MovingAverage{}).UnmarshalBinary(marshal(t, a))
	if err == nil || err.Error() != "curvature: MovingAverage: checkpoint has Decay=0.9, this average Decay=0.95" {
		t.Errorf("different Decay: %v", err)
	}
	if err := (&MovingAverage{Decay: DefaultDecay}).UnmarshalBinary(marshal(t, &MovingAverage{})); err != nil {
		t.Errorf("Decay 0 into Decay DefaultDecay: %v", err)
	}
}

// reframe recomputes the checksum of a checkpoint whose payload was
// altered, so that the alteration reaches the checks of UnmarshalBinary.
func reframe(data []byte) []byte {
	n := len(data) - 4
	binary.LittleEndian.PutUint32(data[n:], crc32.Checksum(data[:n], crc32.MakeTable(crc32.Castagnoli)))
	return data
}

// payload returns the offset of the payload of a checkpoint of the kind
// "curvature.<name>" and its end.
func payload(data []byte, name string) (start, end int) {
	return 4 + 8 + len("curvature."+name) + 8 + 8, len(data) - 4
}

// checkRefused requires UnmarshalBinary of data into b to fail with an
// error starting with prefix, wrapping ErrCorruptCheckpoint when corrupt
// (and not otherwise), containing fragment, and to leave b unchanged (the
// same checkpoint before and after).
func checkRefused(t *testing.T, b checkpointed, data []byte, prefix string, corrupt bool, fragment string) {
	t.Helper()
	before := marshal(t, b)
	err := b.UnmarshalBinary(data)
	switch {
	case err == nil:
		t.Errorf("no error")
	case !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), fragment):
		t.Errorf("error %q, want prefix %q and %q", err, prefix, fragment)
	case errors.Is(err, ErrCorruptCheckpoint) != corrupt:
		t.Errorf("error %q: wraps ErrCorruptCheckpoint %t, want %t", err, !corrupt, corrupt)
	}
	if !errors.Is(ErrCorruptCheckpoint, state.ErrCorrupt) {
		t.Fatal("ErrCorruptCheckpoint is not state.ErrCorrupt")
	}
	if !bytes.Equal(before, marshal(t, b)) {
		t.Errorf("the receiver changed")
	}
}

// TestBlockCheckpointSettings proves that a checkpoint restored into a
// block of other settings is refused with an error naming the first that
// differs, defaults filled in, and not wrapping ErrCorruptCheckpoint, the
// receiver unchanged; that an explicit default equals zero; and that
// invalid settings are refused by MarshalBinary and UnmarshalBinary.
func TestBlockCheckpointSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		saved    checkpointed
		into     checkpointed
		fragment string
	}{
		{"KFAC Decay", &KFACBlock{Decay: 0.9}, &KFACBlock{}, "curvature: KFACBlock: checkpoint has Decay=0.9, this block Decay=0.95"},
		{"KFAC default Decay", &KFACBlock{}, &KFACBlock{Decay: 0.5}, "curvature: KFACBlock: checkpoint has Decay=0.95, this block Decay=0.5"},
		{"ACP Alpha", &ACPBlock{Alpha: 0.5}, &ACPBlock{}, "curvature: ACPBlock: checkpoint has Alpha=0.5, this block Alpha=0"},
		{"ACP heuristic", &ACPBlock{}, &ACPBlock{Alpha: 1}, "curvature: ACPBlock: checkpoint has Alpha=0, this block Alpha=1"},
		{"ACP Decay", &ACPBlock{Alpha: 1, Decay: 0.5}, &ACPBlock{Alpha: 1, Decay: 0.6}, "curvature: ACPBlock: checkpoint has Decay=0.5, this block Decay=0.6"},
		{"ACP no averaging", &ACPBlock{}, &ACPBlock{Decay: DefaultDecay}, "curvature: ACPBlock: checkpoint has Decay=0, this block Decay=0.95"},
		{"Diagonal Decay", &DiagonalBlock{Decay: 0.3}, &DiagonalBlock{}, "curvature: DiagonalBlock: checkpoint has Decay=0.3, this block Decay=0.95"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := blockRecord(1, 5, 3, 2, 5, false)
			tc.saved.Update(l)
			data := marshal(t, tc.saved)
			// A receiver with a state of its own, which must survive.
			tc.into.Update(blockRecord(2, 5, 3, 2, 5, false))
			if err := tc.into.Refresh(0.1); err != nil {
				t.Fatal(err)
			}
			checkRefused(t, tc.into, data, tc.fragment, false, "")
		})
	}

	for _, b := range []checkpointed{&KFACBlock{Decay: DefaultDecay}, &DiagonalBlock{Decay: DefaultDecay}} {
		if err := b.UnmarshalBinary(marshal(t, reflectZero(b))); err != nil {
			t.Errorf("%T{Decay: DefaultDecay} from the zero value's checkpoint: %v", b, err)
		}
	}

	for _, tc := range []struct {
		b        checkpointed
		fragment string
	}{
		{&KFACBlock{Decay: 1}, "curvature: KFACBlock: Decay=1, want in [0, 1)"},
		{&DiagonalBlock{Decay: -0.5}, "curvature: DiagonalBlock: Decay=-0.5, want in [0, 1)"},
		{&ACPBlock{Alpha: -1}, "curvature: ACPBlock: Alpha=-1, want finite and > 0, or 0 for the heuristic"},
		{&ACPBlock{Decay: math.NaN()}, "curvature: ACPBlock: Decay=NaN, want in [0, 1)"},
	} {
		if _, err := tc.b.MarshalBinary(); err == nil || err.Error() != tc.fragment {
			t.Errorf("%T MarshalBinary: %v, want %q", tc.b, err, tc.fragment)
		}
		if err := tc.b.UnmarshalBinary(nil); err == nil || err.Error() != tc.fragment {
			t.Errorf("%T UnmarshalBinary: %v, want %q", tc.b, err, tc.fragment)
		}
	}
}

// reflectZero returns a zero block of b's type.
func reflectZero(b checkpointed) checkpointed {
	switch b.(type) {
	case *KFACBlock:
		return &KFACBlock{}
	case *ACPBlock:
		return &ACPBlock{}
	case *ExactBlock:
		return &ExactBlock{}
	case *DiagonalBlock:
		return &DiagonalBlock{}
	}
	panic("unknown block")
}

// TestBlockCheckpointCorrupt proves, for every block, that data that is
// not a valid checkpoint of the block is refused with an error prefixed
// "curvature: <Block>: " wrapping ErrCorruptCheckpoint, the receiver (a
// block with a state of its own) unchanged: empty and truncated data,
// every flipped byte (checksum), the checkpoints of the other blocks and
// of MovingAverage, and, with the checksum recomputed so that the checks
// of the values are reached, a shape that is not positive or not that of
// the statistics, an invalid bool, a damping that is NaN, negative or
// infinite, a negative count, a nested factorization that is corrupt, a
// Cholesky factor or inverse that is not positive.
func TestBlockCheckpointCorrupt(t *testing.T) {
	saved := map[string][]byte{}
	for _, tc := range checkpointCases {
		b := tc.fresh()
		for _, s := range tc.steps() {
			s.do(t, b)
		}
		saved[tc.name] = marshal(t, b)
	}
	var avg MovingAverage
	avg.Add(mat.NewSymDense(2, []float64{2, 1, 1, 2}))
	saved["MovingAverage"] = marshal(t, &avg)

	for _, tc := range checkpointCases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := "curvature: " + tc.kind + ": "
			data := saved[tc.name]
			into := tc.fresh()
			steps := tc.steps()
			for _, s := range steps[:4] {
				s.do(t, into)
			}
			refused := func(d []byte, fragment string) {
				t.Helper()
				checkRefused(t, into, d, prefix, true, fragment)
			}
			refused(nil, "")
			refused(data[:len(data)/2], "")
			refused(data[:len(data)-1], "")
			for i := 0; i < len(data); i += 1 + i/64 {
				d := bytes.Clone(data)
				d[i] ^= 0x10
				refused(d, "")
			}
			for name, other := range saved {
				if !strings.HasPrefix(name, tc.kind[:3]) && name != tc.name {
					refused(other, "state of")
				}
			}

			start, end := payload(data, tc.kind)
			base := start + tc.settings
			alter := func(fragment string, f func(d []byte)) {
				t.Helper()
				d := bytes.Clone(data)
				f(d)
				refused(reframe(d), fragment)
			}
			putInt := func(off, v int) func([]byte) {
				return func(d []byte) { binary.LittleEndian.PutUint64(d[off:], uint64(int64(v))) }
			}
			putFloat := func(off int, v float64) func([]byte) {
				return func(d []byte) { binary.LittleEndian.PutUint64(d[off:], math.Float64bits(v)) }
			}
			// The base: set (1), out (8), in (8), ready (1), λ (8).
			alter("bool byte 2", func(d []byte) { d[base] = 2 })
			alter("layer shape 0×", putInt(base+1, 0))
			alter("layer shape -1×", putInt(base+1, -1))
			alter("", putInt(base+9, tc.in+1))
			alter("bool byte 3", func(d []byte) { d[base+17] = 3 })
			alter("damping NaN", putFloat(base+18, math.NaN()))
			alter("damping -1", putFloat(base+18, -1))
			alter("damping +Inf", putFloat(base+18, math.Inf(1)))
			stats := base + baseLen
			switch tc.kind {
			case "KFACBlock":
				alter("average of Ā: -1 estimates", putInt(stats, -1))
				alter("averages of 7 and", putInt(stats, 7))
				alter("holds vectors true", func(d []byte) { d[stats+8] = 1 })
				alter("factorization: kron: FactoredTikhonov: corrupt state: checksum mismatch", func(d []byte) { d[end-1] ^= 1 })
			case "ACPBlock":
				alter("-1 Updates", putInt(stats, -1))
				alter("mean of length", putInt(stats+8, tc.in-1))
				alter("factorization: kron: AugmentedInverse: corrupt state: checksum mismatch", func(d []byte) { d[end-1] ^= 1 })
			case "ExactBlock":
				p := tc.out * (tc.in + 1)
				alter("diagonal entry 0 is -1", putFloat(end-8*p*(p+1)/2, -1))
				alter("estimate of size", putInt(stats+1, p+1))
			case "DiagonalBlock":
				alter("average: -1 estimates", putInt(stats, -1))
				alter("average: holds vectors false", func(d []byte) { d[stats+8] = 0 })
				alter("inverse entry", putFloat(end-8, 0))
				alter("inverse entry", putFloat(end-8, math.NaN()))
			}
		})
	}
}
