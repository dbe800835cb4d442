package network

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/nn"
)

// TestSuite5_BlockEqualsFullDiagonal proves eq. 3.3.2: the per-layer block
// built from the records alone (curvature.DenseBlock, from Input and the
// Back and BackExamples filled by Backprop),
// (1/n) Σ_i h̃_i h̃_iᵀ ⊗ J_{a_i}ᵀ D_i J_{a_i}, equals the diagonal block of
// that layer (curvature.LayerBlock) in the full network-level matrix built
// from explicit jacobians, for every layer, every loss, and the estimators
// ggn_exact (both splits, against GaussNewtonMatrix), fisher_exact
// (against FisherMatrix) and fisher_empirical (against
// EmpiricalFisherMatrix; also curvature.DenseEmpiricalBlock from Grad). Tolerance: 1e-12·max|block| + 1e-15.
func TestSuite5_BlockEqualsFullDiagonal(t *testing.T) {
	type variant struct {
		bp   Backprop
		full func(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y *mat.Dense)
	}
	variants := []variant{
		{Backprop{Estimator: GGNExact, Split: nn.SplitLogits}, func(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y *mat.Dense) {
			GaussNewtonMatrix(dst, net, loss, X, Y, nn.GaussNewton, nn.SplitLogits)
		}},
		{Backprop{Estimator: GGNExact, Split: nn.SplitOutputs}, func(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y *mat.Dense) {
			GaussNewtonMatrix(dst, net, loss, X, Y, nn.GaussNewton, nn.SplitOutputs)
		}},
		{Backprop{Estimator: FisherExact}, func(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y *mat.Dense) {
			FisherMatrix(dst, net, loss, X)
		}},
		{Backprop{Estimator: FisherEmpirical}, func(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y *mat.Dense) {
			EmpiricalFisherMatrix(dst, net, loss, X, Y)
		}},
	}
	for ci, c := range append(cases[:len(cases):len(cases)], reluCase) {
		net, X, Y := setup(c, 5, uint64(100+ci))
		off := secondorder.NewLayout(net.Records()).Offsets
		for _, v := range variants {
			name := c.name + "/" + v.bp.Estimator.String()
			if v.bp.Estimator == GGNExact {
				name += "/" + v.bp.Split.String()
			}
			var full mat.SymDense
			v.full(&full, net, c.loss, X, Y)
			v.bp.Fill(net, c.loss, X, Y)
			for l, rec := range net.Records() {
				var got, want mat.SymDense
				curvature.DenseBlock(&got, rec)
				curvature.LayerBlock(&want, &full, off, l)
				testutil.EqualApprox(t, fmt.Sprintf("%s/layer %d", name, l), &got, &want, 1e-15, 1e-12)
				if v.bp.Estimator == FisherEmpirical {
					var emp mat.SymDense
					curvature.DenseEmpiricalBlock(&emp, rec)
					testutil.EqualApprox(t, fmt.Sprintf("%s/layer %d/EmpiricalBlock", name, l), &emp, &want, 1e-15, 1e-12)
				}
			}
		}
	}
}
