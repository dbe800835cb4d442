package kron

import (
	"encoding"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/state"
)

// Checkpoints of the factorizations that the curvature blocks hold
// (CholeskyKron, FactoredTikhonov, AugmentedInverse, EigenKron), their MarshalBinary
// and UnmarshalBinary (encoding.BinaryMarshaler and
// encoding.BinaryUnmarshaler). The state, framed by package internal/state
// under the kind "kron.<Name>", version checkpointVersion, holds the
// settings (Retry, UnitPi, defaults filled in), what the last Factorize
// computed (π, damping, μ) and the Cholesky factors themselves, their upper
// triangles row by row, bit for bit: a restored factorization solves
// exactly as the saved one, whatever became of the matrices it was computed
// from. Workspaces are not saved.

// ErrCorruptCheckpoint is wrapped by the errors of UnmarshalBinary for data
// that is not a valid checkpoint of the type: truncated or altered data,
// another type's state, inconsistent sizes, a Cholesky factor whose
// diagonal is not positive. It is package internal/state's ErrCorrupt, the
// same value as optim.ErrCorruptCheckpoint and
// curvature.ErrCorruptCheckpoint.
var ErrCorruptCheckpoint = state.ErrCorrupt

// The checkpointed types of this package, checked at compile time.
var (
	_ = []encoding.BinaryMarshaler{(*CholeskyKron)(nil), (*FactoredTikhonov)(nil), (*AugmentedInverse)(nil), (*EigenKron)(nil)}
	_ = []encoding.BinaryUnmarshaler{(*CholeskyKron)(nil), (*FactoredTikhonov)(nil), (*AugmentedInverse)(nil), (*EigenKron)(nil)}
)

// checkpointVersion is the version of the layouts of this package.
const checkpointVersion = 1

// maxFactorDim bounds the size n of a Cholesky factor read from a
// checkpoint, so that n(n+1)/2 and n² cannot overflow.
const maxFactorDim = 1 << 30

// writeState appends n and the upper triangle of U, row by row, in the
// layout of state.Writer.Floats (its length, then the values).
func (f *cholFactor) writeState(w *state.Writer) {
	n := f.n
	w.Int(n)
	w.Int(n * (n + 1) / 2)
	for i := 0; i < n; i++ {
		for _, v := range f.data[i*n+i : i*n+n] {
			w.Float(v)
		}
	}
}

// triLen returns the number of bytes writeState appends for an n×n factor.
func triLen(n int) int { return 16 + 8*n*(n+1)/2 }

// readCholFactor reads what writeState wrote into a new factor, the lower
// triangle zero, recording on r the failures of its checks: n ≥ 1, n(n+1)/2
// values, no NaN, a positive diagonal.
func readCholFactor(r *state.Reader, name string) cholFactor {
	n := r.Int()
	tri := r.Floats()
	if r.Err() != nil {
		return cholFactor{}
	}
	if n < 1 || n > maxFactorDim || len(tri) != n*(n+1)/2 {
		r.Fail("Cholesky factor %s of size %d with %d values", name, n, len(tri))
		return cholFactor{}
	}
	data := make([]float64, n*n)
	k := 0
	for i := 0; i < n; i++ {
		row := data[i*n+i : i*n+n]
		copy(row, tri[k:k+n-i])
		k += n - i
		if !(row[0] > 0) {
			r.Fail("Cholesky factor %s: diagonal entry %d is %g, want > 0", name, i, row[0])
			return cholFactor{}
		}
		for j, v := range row {
			if math.IsNaN(v) {
				r.Fail("Cholesky factor %s: entry (%d, %d) is NaN", name, i, i+j)
				return cholFactor{}
			}
		}
	}
	return cholFactor{n: n, data: data}
}

// writeRetry appends the policy with its defaults filled in: tries (Int)
// and growth (Float).
func writeRetry(w *state.Writer, r Retry) {
	w.Int(r.tries())
	w.Float(r.growth())
}

// checkRetry returns an error, prefixed "kron: <name>: ", for an invalid
// Growth (Retry.Run would panic on it).
func checkRetry(r Retry, name string) error {
	if r.Growth != 0 && !(r.Growth > 1) {
		return fmt.Errorf("kron: %s: Retry.Growth=%g, want > 1 (0 for 10)", name, r.Growth)
	}
	return nil
}

// readRetry reads a policy written by writeRetry and returns an error
// naming the first of its values that differs from r's, defaults filled
// in ("checkpoint has Retry.Tries=3, this one Retry.Tries=1"). A failed
// read is left to the Reader's error.
func readRetry(rd *state.Reader, r Retry) error {
	tries, growth := rd.Int(), rd.Float()
	if rd.Err() != nil {
		return nil
	}
	if tries != r.tries() {
		return fmt.Errorf("checkpoint has Retry.Tries=%d, this one Retry.Tries=%d", tries, r.tries())
	}
	if math.Float64bits(growth) != math.Float64bits(r.growth()) {
		return fmt.Errorf("checkpoint has Retry.Growth=%g, this one Retry.Growth=%g", growth, r.growth())
	}
	return nil
}

// writeState appends whether a factorization is held and, when it is, the
// factors of A and B.
func (k *CholeskyKron) writeState(w *state.Writer) {
	w.Bool(k.ok)
	if k.ok {
		k.a.writeState(w)
		k.b.writeState(w)
	}
}

// stateLen returns the number of bytes writeState appends.
func (k *CholeskyKron) stateLen() int {
	if !k.ok {
		return 1
	}
	return 1 + triLen(k.a.n) + triLen(k.b.n)
}

// readCholeskyKron reads what CholeskyKron.writeState wrote into a new
// value.
func readCholeskyKron(r *state.Reader) CholeskyKron {
	var k CholeskyKron
	if k.ok = r.Bool(); k.ok {
		k.a = readCholFactor(r, "A")
		k.b = readCholFactor(r, "B")
	}
	if r.Err() != nil {
		return CholeskyKron{}
	}
	return k
}

// MarshalBinary returns a checkpoint of k (encoding.BinaryMarshaler), of
// kind "kron.CholeskyKron": whether a factorization is held and, when it
// is, the upper Cholesky factors of A and B, bit for bit. A CholeskyKron
// without a valid factorization (zero value, failed Factorize) is saved as
// such, without factors. The error is always nil.
func (k *CholeskyKron) MarshalBinary() ([]byte, error) {
	const kind = "kron.CholeskyKron"
	buf := make([]byte, 0, state.EncodedLen(kind, k.stateLen()))
	return state.AppendEncode(buf, kind, checkpointVersion, k.writeState), nil
}

// UnmarshalBinary restores into k (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that the solves of k give the
// results of the saved CholeskyKron bit for bit. Data that is not a valid
// checkpoint of CholeskyKron gives an error prefixed
// "kron: CholeskyKron: " wrapping ErrCorruptCheckpoint; k is then left
// unchanged.
func (k *CholeskyKron) UnmarshalBinary(data []byte) error {
	var v CholeskyKron
	err := state.Decode(data, "kron.CholeskyKron", checkpointVersion, func(r *state.Reader, _ uint32) error {
		v = readCholeskyKron(r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("kron: CholeskyKron: %w", err)
	}
	v.vbuf = k.vbuf
	*k = v
	return nil
}

// MarshalBinary returns a checkpoint of f (encoding.BinaryMarshaler), of
// kind "kron.FactoredTikhonov": its settings UnitPi and Retry (Tries and
// Growth, defaults filled in), the π and damping λ of the last Factorize,
// and its CholeskyKron: whether a factorization is held and the upper
// Cholesky factors of A + π√λ I and B + (√λ/π) I, bit for bit (not the
// undamped A and B, which are not kept). It returns an error, prefixed
// "kron: FactoredTikhonov: ", for an invalid Retry.Growth.
func (f *FactoredTikhonov) MarshalBinary() ([]byte, error) {
	const kind = "kron.FactoredTikhonov"
	if err := checkRetry(f.Retry, "FactoredTikhonov"); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, state.EncodedLen(kind, 1+16+16+f.k.stateLen()))
	return state.AppendEncode(buf, kind, checkpointVersion, func(w *state.Writer) {
		w.Bool(f.UnitPi)
		writeRetry(w, f.Retry)
		w.Float(f.pi)
		w.Float(f.damping)
		f.k.writeState(w)
	}), nil
}

// UnmarshalBinary restores into f (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that Solve, SolveOuter, SolveVec,
// Pi, Damping and Shifts give the results of the saved FactoredTikhonov
// bit for bit. The settings of f (UnitPi, Retry) must be set first as
// those of the saved one: an error, prefixed "kron: FactoredTikhonov: ",
// names the first that differs, defaults filled in ("checkpoint has
// UnitPi=true, this one UnitPi=false"). Data that is not a valid checkpoint
// of FactoredTikhonov (truncated, altered, of another type, with a damping
// that is not finite and ≥ 0, a π that is negative or NaN, a factor whose
// diagonal is not positive) gives an error with that prefix wrapping
// ErrCorruptCheckpoint. On any error f is left unchanged.
func (f *FactoredTikhonov) UnmarshalBinary(data []byte) error {
	if err := checkRetry(f.Retry, "FactoredTikhonov"); err != nil {
		return err
	}
	var (
		pi, damping float64
		k           CholeskyKron
	)
	err := state.Decode(data, "kron.FactoredTikhonov", checkpointVersion, func(r *state.Reader, _ uint32) error {
		if u := r.Bool(); r.Err() == nil && u != f.UnitPi {
			return fmt.Errorf("checkpoint has UnitPi=%t, this one UnitPi=%t", u, f.UnitPi)
		}
		if err := readRetry(r, f.Retry); err != nil {
			return err
		}
		pi, damping = r.Float(), r.Float()
		k = readCholeskyKron(r)
		if r.Err() != nil {
			return nil
		}
		switch {
		case !(pi >= 0) || (k.ok && pi == 0):
			r.Fail("π = %g", pi)
		case !(damping >= 0) || math.IsInf(damping, 1):
			r.Fail("damping %g, want finite and ≥ 0", damping)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kron: FactoredTikhonov: %w", err)
	}
	k.vbuf = f.k.vbuf
	f.k, f.pi, f.damping = k, pi, damping
	return nil
}

// MarshalBinary returns a checkpoint of m (encoding.BinaryMarshaler), of
// kind "kron.AugmentedInverse": its setting Retry (Tries and Growth,
// defaults filled in), the damping λ' of the last successful Factorize,
// whether a factorization is held and, when it is, μ and the upper
// Cholesky factor of C', bit for bit (d = 1 + λ' is recomputed on load, by
// the expression of Factorize). It returns an error, prefixed
// "kron: AugmentedInverse: ", for an invalid Retry.Growth.
func (m *AugmentedInverse) MarshalBinary() ([]byte, error) {
	const kind = "kron.AugmentedInverse"
	if err := checkRetry(m.Retry, "AugmentedInverse"); err != nil {
		return nil, err
	}
	n := 16 + 8 + 1
	if m.ok {
		n += 8 + 8*len(m.mu) + triLen(m.chol.n)
	}
	buf := make([]byte, 0, state.EncodedLen(kind, n))
	return state.AppendEncode(buf, kind, checkpointVersion, func(w *state.Writer) {
		writeRetry(w, m.Retry)
		w.Float(m.damping)
		w.Bool(m.ok)
		if m.ok {
			w.Floats(m.mu)
			m.chol.writeState(w)
		}
	}), nil
}

// UnmarshalBinary restores into m (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that Precondition, MulRight,
// InverseTo, AugmentedTo, Dim and Damping give the results of the saved
// AugmentedInverse bit for bit. The setting Retry of m must be set first as
// that of the saved one: an error, prefixed "kron: AugmentedInverse: ",
// names the first value that differs, defaults filled in. Data that is not
// a valid checkpoint of AugmentedInverse (truncated, altered, of another
// type, with a damping that is not finite and ≥ 0, a μ whose length is not
// that of the factor, a factor whose diagonal is not positive) gives an
// error with that prefix wrapping ErrCorruptCheckpoint. On any error m is
// left unchanged.
func (m *AugmentedInverse) UnmarshalBinary(data []byte) error {
	if err := checkRetry(m.Retry, "AugmentedInverse"); err != nil {
		return err
	}
	var (
		damping float64
		ok      bool
		mu      []float64
		chol    cholFactor
	)
	err := state.Decode(data, "kron.AugmentedInverse", checkpointVersion, func(r *state.Reader, _ uint32) error {
		if err := readRetry(r, m.Retry); err != nil {
			return err
		}
		damping = r.Float()
		if ok = r.Bool(); ok {
			mu = r.Floats()
			chol = readCholFactor(r, "C'")
		}
		if r.Err() != nil {
			return nil
		}
		switch {
		case !(damping >= 0) || math.IsInf(damping, 1):
			r.Fail("damping %g, want finite and ≥ 0", damping)
		case ok && len(mu) != chol.n:
			r.Fail("μ of length %d for a factor of size %d", len(mu), chol.n)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kron: AugmentedInverse: %w", err)
	}
	m.damping, m.d, m.ok = damping, 1+damping, ok
	if ok {
		m.mu, m.chol = mu, chol
	} else {
		// As after a failed Factorize: nothing usable is held.
		m.mu, m.chol = nil, cholFactor{}
	}
	return nil
}

// eigenLen returns the number of bytes writeEigen appends for an n×n basis.
func eigenLen(n int) int { return 8 + 8 + 8*n + 8 + 8*n*n }

// writeEigen appends n, the eigenvalues and the eigenvectors Q row by row.
func writeEigen(w *state.Writer, q *mat.Dense, vals []float64) {
	n := len(vals)
	w.Int(n)
	w.Floats(vals)
	w.Int(n * n)
	raw := q.RawMatrix()
	for i := 0; i < n; i++ {
		for _, v := range raw.Data[i*raw.Stride : i*raw.Stride+n] {
			w.Float(v)
		}
	}
}

// readEigen reads what writeEigen wrote, recording on r the failures of
// its checks: n ≥ 1, finite eigenvalues ≥ 0 in ascending order (as
// Factorize leaves them), finite eigenvectors.
func readEigen(r *state.Reader, name string) (*mat.Dense, []float64) {
	n := r.Int()
	if r.Err() == nil && (n < 1 || n > maxFactorDim) {
		r.Fail("basis of %s of size %d", name, n)
	}
	vals := r.Floats()
	q := r.Floats()
	if r.Err() != nil {
		return nil, nil
	}
	if len(vals) != n || len(q) != n*n {
		r.Fail("basis of %s of size %d with %d eigenvalues and %d vector entries", name, n, len(vals), len(q))
		return nil, nil
	}
	for i, v := range vals {
		if !(v >= 0) || math.IsInf(v, 1) || (i > 0 && v < vals[i-1]) {
			r.Fail("eigenvalue %d of %s is %g, want finite, ≥ 0 and ascending", i, name, v)
			return nil, nil
		}
	}
	for _, v := range q {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			r.Fail("eigenvector of %s has entry %g", name, v)
			return nil, nil
		}
	}
	return mat.NewDense(n, n, q), vals
}

// MarshalBinary returns a checkpoint of e (encoding.BinaryMarshaler), of
// kind "kron.EigenKron": whether a factorization is held and, when it is,
// the eigenvalues and eigenvectors of A and B, bit for bit. The error is
// always nil.
func (e *EigenKron) MarshalBinary() ([]byte, error) {
	const kind = "kron.EigenKron"
	n := 1
	if e.ok {
		n += eigenLen(len(e.la)) + eigenLen(len(e.lb))
	}
	buf := make([]byte, 0, state.EncodedLen(kind, n))
	return state.AppendEncode(buf, kind, checkpointVersion, func(w *state.Writer) {
		w.Bool(e.ok)
		if e.ok {
			writeEigen(w, &e.qa, e.la)
			writeEigen(w, &e.qb, e.lb)
		}
	}), nil
}

// UnmarshalBinary restores into e (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary, so that the solves and products of
// e give the results of the saved EigenKron bit for bit. Data that is not a
// valid checkpoint of EigenKron gives an error prefixed "kron: EigenKron: "
// wrapping ErrCorruptCheckpoint; e is then left unchanged.
func (e *EigenKron) UnmarshalBinary(data []byte) error {
	var (
		ok     bool
		qa, qb *mat.Dense
		la, lb []float64
	)
	err := state.Decode(data, "kron.EigenKron", checkpointVersion, func(r *state.Reader, _ uint32) error {
		if ok = r.Bool(); ok {
			qa, la = readEigen(r, "A")
			qb, lb = readEigen(r, "B")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kron: EigenKron: %w", err)
	}
	*e = EigenKron{}
	if ok {
		e.qa, e.qb = *qa, *qb
		e.la, e.lb = la, lb
		e.setWork()
		e.ok = true
	}
	return nil
}
