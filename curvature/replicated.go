package curvature

import (
	"fmt"

	"github.com/secondorder/secondorder/internal/state"
	"github.com/secondorder/secondorder/kron"
)

// Replicated is implemented by blocks whose Refresh one worker can do for
// all: data-parallel workers holding the same statistics split the
// refreshes of a network's layers between them, and each installs the
// results of the others (the distributed K-FAC of Osawa et al. 2019 and
// Pauloski et al. 2020, KAISA: each layer's factors decomposed by one
// worker and broadcast). Package optim does so when Rules.Comm has more
// than one worker.
type Replicated interface {
	Block
	// RefreshCost returns a number proportional to the flops of a Refresh
	// at the block's shape (n_A³ + n_G³ for the Kronecker-factored blocks),
	// by which the refreshes of a network's layers are balanced between
	// workers. It is zero before the shape is fixed.
	RefreshCost() float64
	// AppendRefresh appends to dst what the last successful Refresh
	// computed: the factorization held and its damping, and the
	// statistics that Refresh changed besides (EKFACBlock's scaling S,
	// SOAPBlock's moments, carried into the new basis). It panics unless
	// the block is Ready.
	AppendRefresh(dst []byte) []byte
	// InstallRefresh makes the block as a successful Refresh would have,
	// from the data of AppendRefresh on a block of the same kind, shape
	// and statistics: the factorization becomes the one held (and is
	// undone by Rollback, as a Refresh is). Data that is not such a
	// message (truncated, altered, of another kind or shape) gives an
	// error wrapping ErrCorruptCheckpoint, and the block is unchanged.
	InstallRefresh(data []byte) error
}

// The Replicated blocks of this package, checked at compile time.
var _ = []Replicated{(*KFACBlock)(nil), (*EKFACBlock)(nil), (*ShampooBlock)(nil), (*SOAPBlock)(nil)}

// kroneckerCost is RefreshCost of a block whose Refresh factorizes two
// factors of orders n_A = n_in+1 and n_G = n_out.
func kroneckerCost(d blockDims) float64 {
	if !d.set {
		return 0
	}
	na, ng := float64(d.in+1), float64(d.out)
	return na*na*na + ng*ng*ng
}

// refreshMessage encodes a Refresh: its damping, the nested factorization
// and vectors of statistics.
func refreshMessage(dst []byte, name string, lambda float64, f interface{ MarshalBinary() ([]byte, error) }, vecs ...[]float64) []byte {
	fb, err := f.MarshalBinary()
	if err != nil {
		panic(fmt.Sprintf("curvature: %s.AppendRefresh: %v", name, err)) // the settings of a held factorization are valid
	}
	n := 8 + 8 + len(fb)
	for _, v := range vecs {
		n += 8 + 8*len(v)
	}
	kind := "curvature." + name + ".Refresh"
	if need := len(dst) + state.EncodedLen(kind, n); cap(dst) < need {
		dst = append(make([]byte, 0, need), dst...)
	}
	return state.AppendEncode(dst, kind, checkpointVersion, func(w *state.Writer) {
		w.Float(lambda)
		w.Bytes(fb)
		for _, v := range vecs {
			w.Floats(v)
		}
	})
}

// readRefresh decodes a message of refreshMessage into f and the vectors
// (of the lengths they have), and returns its damping.
func readRefresh(data []byte, name string, f interface{ UnmarshalBinary([]byte) error }, vecs ...[]float64) (float64, error) {
	var lambda float64
	err := state.Decode(data, "curvature."+name+".Refresh", checkpointVersion, func(r *state.Reader, _ uint32) error {
		lambda = r.Float()
		if r.Err() == nil && (!(lambda >= 0) || lambda > maxFinite) {
			r.Fail("damping %g, want finite and ≥ 0", lambda)
		}
		readNested(r, f, "factorization")
		for i, v := range vecs {
			r.FloatsInto(v, fmt.Sprintf("statistics %d", i))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("curvature: %s.InstallRefresh: %w", name, err)
	}
	return lambda, nil
}

const maxFinite = 1.7976931348623157e308

// checkEigenDims returns an error unless e's factors have the block's
// orders (A = n_A, B = n_b).
func checkEigenDims(e *kron.EigenKron, na, nb int, name string) error {
	if a, b := e.Dims(); a != na || b != nb {
		return fmt.Errorf("curvature: %s.InstallRefresh: factors of orders %d and %d for a block of %d and %d: %w", name, a, b, na, nb, ErrCorruptCheckpoint)
	}
	return nil
}

// RefreshCost returns (n_in+1)³ + n_out³ (Replicated).
func (b *KFACBlock) RefreshCost() float64 { return kroneckerCost(b.dims) }

// AppendRefresh appends the factorization held (Replicated).
func (b *KFACBlock) AppendRefresh(dst []byte) []byte {
	if !b.ready {
		panic("curvature: KFACBlock.AppendRefresh: no factorization")
	}
	return refreshMessage(dst, "KFACBlock", b.lambda, &b.ft[b.cur])
}

// InstallRefresh makes the factorization of data the one held
// (Replicated).
func (b *KFACBlock) InstallRefresh(data []byte) error {
	if !b.dims.set {
		return fmt.Errorf("curvature: KFACBlock.InstallRefresh: block has no shape yet: %w", ErrNoEstimate)
	}
	i := b.spare(b.cur)
	next := &b.ft[i]
	next.Retry = kron.Retry{Tries: 1}
	lambda, err := readRefresh(data, "KFACBlock", next)
	if err != nil {
		return err
	}
	if na, ng := next.Dims(); na != b.dims.in+1 || ng != b.dims.out || next.Damping() != lambda {
		return fmt.Errorf("curvature: KFACBlock.InstallRefresh: factors of orders %d and %d, damping %g, for a %d×%d layer and damping %g: %w", na, ng, next.Damping(), b.dims.out, b.dims.in, lambda, ErrCorruptCheckpoint)
	}
	b.cur = i
	b.hold(lambda)
	return nil
}

// RefreshCost returns (n_in+1)³ + n_out³ (Replicated).
func (b *EKFACBlock) RefreshCost() float64 { return kroneckerCost(b.dims) }

// AppendRefresh appends the eigenbasis held and the scaling S carried into
// it (Replicated).
func (b *EKFACBlock) AppendRefresh(dst []byte) []byte {
	if !b.ready {
		panic("curvature: EKFACBlock.AppendRefresh: no factorization")
	}
	return refreshMessage(dst, "EKFACBlock", b.lambda, &b.eig[b.cur], b.s.MeanVec().RawVector().Data)
}

// InstallRefresh makes the eigenbasis and scaling of data the ones held
// (Replicated).
func (b *EKFACBlock) InstallRefresh(data []byte) error {
	const name = "EKFACBlock"
	if !b.dims.set {
		return fmt.Errorf("curvature: %s.InstallRefresh: block has no shape yet: %w", name, ErrNoEstimate)
	}
	out, in := b.dims.out, b.dims.in
	if b.sEst.IsEmpty() {
		b.sEst.ReuseAsVec(out * (in + 1))
	}
	i := b.spare(b.cur)
	lambda, err := readRefresh(data, name, &b.eig[i], b.sEst.RawVector().Data)
	if err != nil {
		return err
	}
	if err := checkEigenDims(&b.eig[i], in+1, out, name); err != nil {
		return err
	}
	b.commit(i, lambda)
	return nil
}

// RefreshCost returns (n_in+1)³ + n_out³ (Replicated).
func (b *ShampooBlock) RefreshCost() float64 { return kroneckerCost(b.dims) }

// AppendRefresh appends the eigendecompositions of L and R held
// (Replicated); InstallRefresh forms the inverse roots from them.
func (b *ShampooBlock) AppendRefresh(dst []byte) []byte {
	if !b.ready {
		panic("curvature: ShampooBlock.AppendRefresh: no factorization")
	}
	return refreshMessage(dst, "ShampooBlock", b.lambda, &b.gf.eig[b.cur])
}

// InstallRefresh makes the eigendecompositions of data the ones held and
// forms their inverse fourth roots (Replicated).
func (b *ShampooBlock) InstallRefresh(data []byte) error {
	const name = "ShampooBlock"
	if !b.dims.set {
		return fmt.Errorf("curvature: %s.InstallRefresh: block has no shape yet: %w", name, ErrNoEstimate)
	}
	i := b.spare(b.cur)
	lambda, err := readRefresh(data, name, &b.gf.eig[i])
	if err != nil {
		return err
	}
	if err := checkEigenDims(&b.gf.eig[i], b.dims.in+1, b.dims.out, name); err != nil {
		return err
	}
	if err := b.setRoots(i, lambda); err != nil {
		return fmt.Errorf("curvature: %s.InstallRefresh: %w", name, err)
	}
	b.cur = i
	b.hold(lambda)
	return nil
}

// RefreshCost returns (n_in+1)³ + n_out³ (Replicated).
func (b *SOAPBlock) RefreshCost() float64 { return kroneckerCost(b.dims) }

// AppendRefresh appends the eigenbases held and Adam's moments m and v
// carried into them (Replicated).
func (b *SOAPBlock) AppendRefresh(dst []byte) []byte {
	if !b.ready {
		panic("curvature: SOAPBlock.AppendRefresh: no factorization")
	}
	var m, v []float64
	if b.m.Count() > 0 {
		m, v = b.m.MeanVec().RawVector().Data, b.v.MeanVec().RawVector().Data
	}
	return refreshMessage(dst, "SOAPBlock", b.lambda, &b.gf.eig[b.cur], m, v)
}

// InstallRefresh makes the eigenbases and moments of data the ones held
// (Replicated).
func (b *SOAPBlock) InstallRefresh(data []byte) error {
	const name = "SOAPBlock"
	if !b.dims.set {
		return fmt.Errorf("curvature: %s.InstallRefresh: block has no shape yet: %w", name, ErrNoEstimate)
	}
	out, in := b.dims.out, b.dims.in
	var m, v []float64
	if b.m.Count() > 0 {
		b.vecs(out, in)
		m, v = b.gr.RawVector().Data, b.sq.RawVector().Data
	}
	i := b.spare(b.cur)
	lambda, err := readRefresh(data, name, &b.gf.eig[i], m, v)
	if err != nil {
		return err
	}
	if err := checkEigenDims(&b.gf.eig[i], in+1, out, name); err != nil {
		return err
	}
	if m != nil {
		b.m.ReplaceVec(&b.gr)
		b.v.ReplaceVec(&b.sq)
	}
	b.cur = i
	b.hold(lambda)
	return nil
}
