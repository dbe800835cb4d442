package kron_test

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/kron"
)

// sameBits reports whether a and b have the same shape and the same bits.
func sameBits(a, b mat.Matrix) bool {
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

// marshal returns m's checkpoint, failing the test on an error.
func marshal(t *testing.T, m encoding.BinaryMarshaler) []byte {
	t.Helper()
	data, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	return data
}

// reframe recomputes the checksum of a checkpoint whose payload was
// altered.
func reframe(data []byte) []byte {
	n := len(data) - 4
	binary.LittleEndian.PutUint32(data[n:], crc32.Checksum(data[:n], crc32.MakeTable(crc32.Castagnoli)))
	return data
}

// refused requires u.UnmarshalBinary(data) to fail with an error starting
// with prefix and containing fragment, wrapping ErrCorruptCheckpoint when
// corrupt, and to leave u unchanged (the same checkpoint).
func refused(t *testing.T, u interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}, data []byte, prefix, fragment string, corrupt bool) {
	t.Helper()
	before := marshal(t, u)
	err := u.UnmarshalBinary(data)
	switch {
	case err == nil:
		t.Errorf("no error")
	case !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), fragment):
		t.Errorf("error %q, want prefix %q and %q", err, prefix, fragment)
	case errors.Is(err, kron.ErrCorruptCheckpoint) != corrupt:
		t.Errorf("error %q: wraps ErrCorruptCheckpoint %t, want %t", err, !corrupt, corrupt)
	}
	if !bytes.Equal(before, marshal(t, u)) {
		t.Errorf("the receiver changed")
	}
}

// TestFactoredTikhonovCheckpoint proves that a FactoredTikhonov restored
// from a checkpoint solves bit for bit as the saved one (Solve, SolveVec,
// SolveOuter, Pi, Damping, Shifts, Dims, the same checkpoint), also after
// a Factorize raised the damping by retries and with UnitPi; that a zero
// value round-trips and still panics on Solve; that other settings are
// refused naming them; and that corrupt data (truncated, flipped, another
// type's, a factor with a non-positive diagonal, a negative damping) is
// refused wrapping ErrCorruptCheckpoint, the receiver unchanged.
func TestFactoredTikhonovCheckpoint(t *testing.T) {
	rng := newRand(1)
	for _, tc := range []struct {
		name   string
		f      kron.FactoredTikhonov
		a, b   *mat.SymDense
		lambda float64
	}{
		{"trace-norm π", kron.FactoredTikhonov{}, randPSD(rng, 4, 6, 0), randPSD(rng, 3, 5, 0), 0.1},
		{"UnitPi", kron.FactoredTikhonov{UnitPi: true}, randPSD(rng, 2, 3, 0), randPSD(rng, 5, 7, 0), 0.5},
		{"retried", kron.FactoredTikhonov{Retry: kron.Retry{Tries: 6, Growth: 8}}, symWithEigen(rng, []float64{-1, 1, 2}), randSPD(rng, 2), 1e-3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			if err := f.Factorize(tc.a, tc.b, tc.lambda); err != nil {
				t.Fatal(err)
			}
			if tc.f.Retry.Tries > 1 && !(f.Damping() > tc.lambda) {
				t.Errorf("damping %g not raised: the case tests nothing", f.Damping())
			}
			data := marshal(t, &f)
			g := kron.FactoredTikhonov{UnitPi: tc.f.UnitPi, Retry: tc.f.Retry}
			if err := g.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			if f.Pi() != g.Pi() || f.Damping() != g.Damping() || !bytes.Equal(data, marshal(t, &g)) {
				t.Errorf("π, damping = %v, %v, want %v, %v", g.Pi(), g.Damping(), f.Pi(), f.Damping())
			}
			fa, fb := f.Shifts()
			ga, gb := g.Shifts()
			na, nb := f.Dims()
			if ma, mb := g.Dims(); fa != ga || fb != gb || na != ma || nb != mb {
				t.Errorf("Shifts or Dims differ")
			}
			x := randDense(rng, nb, na)
			var fx, gx mat.Dense
			f.Solve(&fx, x)
			g.Solve(&gx, x)
			if !sameBits(&fx, &gx) {
				t.Errorf("Solve differs")
			}
			v := mat.NewVecDense(na*nb, randDense(rng, 1, na*nb).RawMatrix().Data)
			var fv, gv mat.VecDense
			f.SolveVec(&fv, v)
			g.SolveVec(&gv, v)
			if !sameBits(&fv, &gv) {
				t.Errorf("SolveVec differs")
			}
			l, r := randDense(rng, 3, nb), randDense(rng, 3, na)
			var fo, gofo mat.Dense
			f.SolveOuter(&fo, 0.5, mat.DenseCopyOf(l), mat.DenseCopyOf(r))
			g.SolveOuter(&gofo, 0.5, l, r)
			if !sameBits(&fo, &gofo) {
				t.Errorf("SolveOuter differs")
			}
		})
	}

	var zero, z2 kron.FactoredTikhonov
	if err := z2.UnmarshalBinary(marshal(t, &zero)); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("Solve of a restored zero value did not panic")
			}
		}()
		z2.Solve(&mat.Dense{}, mat.NewDense(1, 1, nil))
	}()

	var f kron.FactoredTikhonov
	if err := f.Factorize(randSPD(rng, 3), randSPD(rng, 2), 0.2); err != nil {
		t.Fatal(err)
	}
	data := marshal(t, &f)
	into := &kron.FactoredTikhonov{}
	if err := into.Factorize(randSPD(rng, 2), randSPD(rng, 2), 1); err != nil {
		t.Fatal(err)
	}
	const prefix = "kron: FactoredTikhonov: "
	refused(t, &kron.FactoredTikhonov{UnitPi: true}, data, prefix, "checkpoint has UnitPi=false, this one UnitPi=true", false)
	refused(t, &kron.FactoredTikhonov{Retry: kron.Retry{Tries: 3}}, data, prefix, "checkpoint has Retry.Tries=1, this one Retry.Tries=3", false)
	refused(t, &kron.FactoredTikhonov{Retry: kron.Retry{Growth: 2}}, data, prefix, "checkpoint has Retry.Growth=10, this one Retry.Growth=2", false)
	if err := (&kron.FactoredTikhonov{Retry: kron.Retry{Tries: 1, Growth: 10}}).UnmarshalBinary(data); err != nil {
		t.Errorf("explicit default Retry: %v", err)
	}
	if _, err := (&kron.FactoredTikhonov{Retry: kron.Retry{Growth: 0.5}}).MarshalBinary(); err == nil || err.Error() != prefix+"Retry.Growth=0.5, want > 1 (0 for 10)" {
		t.Errorf("invalid Growth: %v", err)
	}
	refused(t, into, nil, prefix, "", true)
	refused(t, into, data[:len(data)-3], prefix, "", true)
	for i := 0; i < len(data); i += 3 {
		d := bytes.Clone(data)
		d[i] ^= 0x80
		refused(t, into, d, prefix, "", true)
	}
	var ai kron.AugmentedInverse
	refused(t, into, marshal(t, &ai), prefix, "state of \"kron.AugmentedInverse\"", true)
	// Payload: UnitPi (1), tries (8), growth (8), π (8), damping (8), ok
	// (1), n_A (8), count (8), U_A[0,0] (8).
	start := 4 + 8 + len("kron.FactoredTikhonov") + 8 + 8
	put := func(off int, v float64) []byte {
		d := bytes.Clone(data)
		binary.LittleEndian.PutUint64(d[start+off:], math.Float64bits(v))
		return reframe(d)
	}
	refused(t, into, put(17, -1), prefix, "π = -1", true)
	refused(t, into, put(17, 0), prefix, "π = 0", true)
	refused(t, into, put(25, math.NaN()), prefix, "damping NaN", true)
	refused(t, into, put(50, 0), prefix, "Cholesky factor A: diagonal entry 0 is 0", true)
	refused(t, into, put(58, math.NaN()), prefix, "Cholesky factor A: entry (0, 1) is NaN", true)
	d := bytes.Clone(data)
	binary.LittleEndian.PutUint64(d[start+34:], 4) // n_A 4 for 6 values
	refused(t, into, reframe(d), prefix, "Cholesky factor A of size 4 with 6 values", true)
}

// TestAugmentedInverseCheckpoint proves that an AugmentedInverse restored
// from a checkpoint gives the saved one's Precondition, MulRight,
// InverseTo, Dim and Damping bit for bit, from the second moment and from
// the covariance; that a zero value round-trips; that another Retry is
// refused naming it; and that corrupt data (truncated, flipped, a μ of
// another length, a factor with a non-positive diagonal) is refused
// wrapping ErrCorruptCheckpoint, the receiver unchanged.
func TestAugmentedInverseCheckpoint(t *testing.T) {
	rng := newRand(2)
	for _, cov := range []bool{false, true} {
		s, c, mu, _, _, grad := layerStats(rng, 20, 4, 3)
		var m kron.AugmentedInverse
		var err error
		if cov {
			err = m.FactorizeCov(c, mu, 0.3)
		} else {
			err = m.Factorize(s, mu, 0.3)
		}
		if err != nil {
			t.Fatal(err)
		}
		data := marshal(t, &m)
		var r kron.AugmentedInverse
		if err := r.UnmarshalBinary(data); err != nil {
			t.Fatal(err)
		}
		if r.Dim() != m.Dim() || r.Damping() != m.Damping() || !bytes.Equal(data, marshal(t, &r)) {
			t.Errorf("cov %t: Dim or Damping differ", cov)
		}
		var gm, gr mat.Dense
		m.MulRight(&gm, grad)
		r.MulRight(&gr, grad)
		var im, ir mat.SymDense
		m.InverseTo(&im)
		r.InverseTo(&ir)
		if !sameBits(&gm, &gr) || !sameBits(&im, &ir) {
			t.Errorf("cov %t: MulRight or InverseTo differ", cov)
		}
	}

	var zero, z2 kron.AugmentedInverse
	if err := z2.UnmarshalBinary(marshal(t, &zero)); err != nil || z2.Dim() != 0 {
		t.Errorf("zero value: %v, Dim %d", err, z2.Dim())
	}

	_, c, mu, _, _, _ := layerStats(rng, 10, 3, 2)
	var m kron.AugmentedInverse
	if err := m.FactorizeCov(c, mu, 0.1); err != nil {
		t.Fatal(err)
	}
	data := marshal(t, &m)
	into := &kron.AugmentedInverse{}
	if err := into.FactorizeCov(c, mu, 1); err != nil {
		t.Fatal(err)
	}
	const prefix = "kron: AugmentedInverse: "
	refused(t, &kron.AugmentedInverse{Retry: kron.Retry{Tries: 2}}, data, prefix, "checkpoint has Retry.Tries=1, this one Retry.Tries=2", false)
	refused(t, into, data[:10], prefix, "", true)
	for i := 0; i < len(data); i += 5 {
		d := bytes.Clone(data)
		d[i] ^= 1
		refused(t, into, d, prefix, "", true)
	}
	var ck kron.CholeskyKron
	refused(t, into, marshal(t, &ck), prefix, "state of \"kron.CholeskyKron\"", true)
	// Payload: tries (8), growth (8), damping (8), ok (1), len(μ) (8), μ
	// (3·8), n (8), count (8), U[0,0] (8).
	start := 4 + 8 + len("kron.AugmentedInverse") + 8 + 8
	put := func(off int, v uint64) []byte {
		d := bytes.Clone(data)
		binary.LittleEndian.PutUint64(d[start+off:], v)
		return reframe(d)
	}
	refused(t, into, put(16, math.Float64bits(-1)), prefix, "damping -1", true)
	refused(t, into, put(73, math.Float64bits(-2)), prefix, "Cholesky factor C': diagonal entry 0 is -2", true)
	refused(t, into, put(57, 2), prefix, "Cholesky factor C' of size 2 with 6 values", true)
}

// TestCholeskyKronCheckpoint proves that a restored CholeskyKron solves
// and gives LogDet bit for bit as the saved one.
func TestCholeskyKronCheckpoint(t *testing.T) {
	rng := newRand(3)
	var k kron.CholeskyKron
	if err := k.Factorize(randSPD(rng, 3), randSPD(rng, 4)); err != nil {
		t.Fatal(err)
	}
	var r kron.CholeskyKron
	if err := r.UnmarshalBinary(marshal(t, &k)); err != nil {
		t.Fatal(err)
	}
	x := randDense(rng, 4, 3)
	var kx, rx mat.Dense
	k.Solve(&kx, x)
	r.Solve(&rx, x)
	if !sameBits(&kx, &rx) || math.Float64bits(k.LogDet()) != math.Float64bits(r.LogDet()) {
		t.Errorf("Solve or LogDet differ")
	}
	refused(t, &r, marshal(t, &kron.FactoredTikhonov{}), "kron: CholeskyKron: ", "state of", true)
}

// TestEigenKronCheckpoint: a restored EigenKron solves and multiplies as the
// saved one bit for bit, an empty one round-trips, and a negative
// eigenvalue or another type's state are refused as corrupt with the
// EigenKron left unchanged.
func TestEigenKronCheckpoint(t *testing.T) {
	rng := newRand(4)
	var e kron.EigenKron
	if err := e.Factorize(randSPD(rng, 3), randSPD(rng, 4)); err != nil {
		t.Fatal(err)
	}
	data := marshal(t, &e)
	var r kron.EigenKron
	if err := r.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	x := randDense(rng, 4, 3)
	s := randDense(rng, 4, 3)
	s.Apply(func(_, _ int, v float64) float64 { return math.Abs(v) + 0.1 }, s)
	var ex, rx, em, rm mat.Dense
	if err := e.Solve(&ex, x, 0.3); err != nil {
		t.Fatal(err)
	}
	if err := r.Solve(&rx, x, 0.3); err != nil {
		t.Fatal(err)
	}
	e.MulScaled(&em, x, s)
	r.MulScaled(&rm, x, s)
	if !sameBits(&ex, &rx) || !sameBits(&em, &rm) {
		t.Errorf("Solve or MulScaled of the restored EigenKron differ")
	}
	if !bytes.Equal(marshal(t, &r), data) {
		t.Errorf("the restored EigenKron's checkpoint differs")
	}
	var empty, back kron.EigenKron
	if err := back.UnmarshalBinary(marshal(t, &empty)); err != nil {
		t.Fatal(err)
	}
	// The first eigenvalue of A sits after the header, the flag (1), n (8)
	// and the length of the eigenvalues (8); its bits are negated.
	bad := bytes.Clone(data)
	off := bytes.Index(bad, marshalFloat(e.Values()))
	if off < 0 {
		t.Fatal("eigenvalues not found in the checkpoint")
	}
	binary.LittleEndian.PutUint64(bad[off:], math.Float64bits(-1))
	refused(t, &r, reframe(bad), "kron: EigenKron: ", "eigenvalue 0 of A", true)
	refused(t, &r, marshal(t, &kron.CholeskyKron{}), "kron: EigenKron: ", "state of", true)
}

// marshalFloat returns the little-endian bytes of the first value of a.
func marshalFloat(a, _ []float64) []byte {
	return binary.LittleEndian.AppendUint64(nil, math.Float64bits(a[0]))
}
