package curvature

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/nn"
)

// checkProduct reports an error unless ‖op v − M v‖ ≤ tol·‖M‖_F‖v‖.
func checkProduct(t *testing.T, name string, op *Operator, m mat.Matrix, v *mat.VecDense, tol float64) {
	t.Helper()
	var got, want mat.VecDense
	op.MulVec(&got, v)
	want.MulVec(m, v)
	var d mat.VecDense
	d.SubVec(&got, &want)
	if e := mat.Norm(&d, 2) / (mat.Norm(m, 2) * mat.Norm(v, 2)); !(e <= tol) {
		t.Errorf("%s: ‖op v − M v‖ / (‖M‖‖v‖) = %.3g > %g", name, e, tol)
	}
}

// TestSuite8_ProductsMatchDense proves that the matrix-free products equal
// dense matrices computed by other methods, applied to random vectors:
// the Gauss–Newton and Fisher vector products (Schraudolph 2002, R-forward
// then D then backprop) against GaussNewton and Fisher from explicit
// jacobians, for both splits; the Hessian-vector product (Pearlmutter's
// R-operator) against GaussNewton + Residual (jacobians plus second-order
// forward passes, not the R-operator); and the residual product against
// Residual. Tolerance: ‖op v − M v‖ ≤ 1e-10·‖M‖_F ‖v‖.
func TestSuite8_ProductsMatchDense(t *testing.T) {
	for ci, c := range append(cases[:len(cases):len(cases)], reluCase) {
		net, X, Y := setup(c, 5, uint64(160+ci))
		rng := newRand(uint64(170 + ci))
		p := net.NumParams()
		vs := []*mat.VecDense{randVec(rng, p), randVec(rng, p), randVec(rng, p)}
		var fisher mat.SymDense
		Fisher(&fisher, net, c.loss, X)
		fop := NewGaussNewton(net, c.loss, X, nil, nn.Fisher, nn.SplitLogits)
		for _, s := range splits {
			var gn, res mat.SymDense
			GaussNewton(&gn, net, c.loss, X, Y, nn.GaussNewton, s)
			Residual(&res, net, c.loss, X, Y, s)
			var h mat.Dense
			h.Add(&gn, &res)
			gop := NewGaussNewton(net, c.loss, X, Y, nn.GaussNewton, s)
			hop := NewHessian(net, c.loss, X, Y)
			rop := NewResidual(net, c.loss, X, Y, s)
			for k, v := range vs {
				name := fmt.Sprintf("%s/%v/v%d", c.name, s, k)
				checkProduct(t, name+"/GN", gop, &gn, v, 1e-10)
				checkProduct(t, name+"/Hessian", hop, &h, v, 1e-10)
				checkProduct(t, name+"/residual", rop, &res, v, 1e-10)
				checkProduct(t, name+"/Fisher", fop, &fisher, v, 1e-10)
			}
		}
	}
}
