package network

import (
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
)

// TestLayout proves that secondorder.NewLayout(records).Offsets follows
// nn's parameter layout (the last offset is NumParams and the blocks are
// n_out(n_in+1)), that curvature.LayerBlock extracts the diagonal block of
// a layer of the network's Hessian and that curvature.BlockDiagonal keeps
// the diagonal blocks and zeros the rest (thesis §3.1.6).
func TestLayout(t *testing.T) {
	net, X, Y := setup(cases[0], 4, 6)
	off := secondorder.NewLayout(net.Records()).Offsets
	if want := []int{0, 16, 31, 39}; !slices.Equal(off, want) || off[3] != net.NumParams() {
		t.Fatalf("Offsets = %v, want %v (NumParams %d)", off, want, net.NumParams())
	}
	var h, bd mat.SymDense
	HessianMatrix(&h, net, cases[0].loss, X, Y)
	curvature.BlockDiagonal(&bd, &h, off)
	for i := 0; i < off[3]; i++ {
		for j := 0; j < off[3]; j++ {
			same := false
			for l := 0; l < 3; l++ {
				same = same || (i >= off[l] && i < off[l+1] && j >= off[l] && j < off[l+1])
			}
			want := 0.0
			if same {
				want = h.At(i, j)
			}
			if bd.At(i, j) != want {
				t.Fatalf("BlockDiagonal(%d,%d) = %g, want %g", i, j, bd.At(i, j), want)
			}
		}
	}
	var b1 mat.SymDense
	curvature.LayerBlock(&b1, &h, off, 1)
	for i := 0; i < 15; i++ {
		for j := 0; j < 15; j++ {
			if b1.At(i, j) != h.At(16+i, 16+j) {
				t.Fatalf("LayerBlock(%d,%d) = %g, want %g", i, j, b1.At(i, j), h.At(16+i, 16+j))
			}
		}
	}
}
