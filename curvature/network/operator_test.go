package network

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
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
// then D then backprop; NewGaussNewtonOperator with nn.GaussNewton and with
// nn.Fisher, and NewFisherOperator) against GaussNewtonMatrix and
// FisherMatrix from explicit jacobians, for both splits; the Hessian-vector
// product (Pearlmutter's R-operator) against GaussNewtonMatrix +
// ResidualMatrix (jacobians plus second-order forward passes, not the
// R-operator); and the residual product against ResidualMatrix.
// Tolerance: ‖op v − M v‖ ≤ 1e-10·‖M‖_F ‖v‖.
func TestSuite8_ProductsMatchDense(t *testing.T) {
	for ci, c := range append(cases[:len(cases):len(cases)], reluCase) {
		net, X, Y := setup(c, 5, uint64(160+ci))
		rng := newRand(uint64(170 + ci))
		p := net.NumParams()
		vs := []*mat.VecDense{testutil.RandVec(rng, p), testutil.RandVec(rng, p), testutil.RandVec(rng, p)}
		var fisher mat.SymDense
		FisherMatrix(&fisher, net, c.loss, X)
		fop := NewGaussNewtonOperator(net, c.loss, X, nil, nn.Fisher, nn.SplitLogits)
		ffop := NewFisherOperator(net, c.loss, X)
		for _, s := range splits {
			var gn, res mat.SymDense
			GaussNewtonMatrix(&gn, net, c.loss, X, Y, nn.GaussNewton, s)
			ResidualMatrix(&res, net, c.loss, X, Y, s)
			var h mat.Dense
			h.Add(&gn, &res)
			gop := NewGaussNewtonOperator(net, c.loss, X, Y, nn.GaussNewton, s)
			hop := NewHessianOperator(net, c.loss, X, Y)
			rop := NewResidualOperator(net, c.loss, X, Y, s)
			for k, v := range vs {
				name := fmt.Sprintf("%s/%v/v%d", c.name, s, k)
				checkProduct(t, name+"/GN", gop, &gn, v, 1e-10)
				checkProduct(t, name+"/Hessian", hop, &h, v, 1e-10)
				checkProduct(t, name+"/residual", rop, &res, v, 1e-10)
				checkProduct(t, name+"/Fisher", fop, &fisher, v, 1e-10)
				checkProduct(t, name+"/NewFisherOperator", ffop, &fisher, v, 1e-10)
			}
		}
	}
}

// TestSuite8_MulDirectionsMatchesDense proves that Operator.MulDirections,
// the product with per-layer directions secondorder.Direction{W, B} (the
// form of optim.Problem.GNVec), is the dense matrix times the parameter
// vector θ = [vec(ΔW_l); Δb_l] of the directions, written back as
// directions (secondorder.Layout's Vec and Unvec): for the Gauss–Newton
// operator at both splits against GaussNewtonMatrix, the Fisher operator
// against FisherMatrix and the Hessian operator against HessianMatrix, on
// random directions, also with dst = v; and that after its first call it
// does not allocate. Tolerance: ‖dst − M v‖ ≤ 1e-10·‖M‖_F ‖v‖.
func TestSuite8_MulDirectionsMatchesDense(t *testing.T) {
	for ci, c := range append(cases[:len(cases):len(cases)], reluCase) {
		net, X, Y := setup(c, 5, uint64(200+ci))
		rng := newRand(uint64(210 + ci))
		lay := secondorder.NewLayout(net.Records())
		p := lay.Len()
		type product struct {
			name string
			op   *Operator
			m    mat.SymDense
		}
		var prods []*product
		for _, s := range splits {
			pr := &product{name: "GN/" + s.String(), op: NewGaussNewtonOperator(net, c.loss, X, Y, nn.GaussNewton, s)}
			GaussNewtonMatrix(&pr.m, net, c.loss, X, Y, nn.GaussNewton, s)
			prods = append(prods, pr)
		}
		pr := &product{name: "Fisher", op: NewFisherOperator(net, c.loss, X)}
		FisherMatrix(&pr.m, net, c.loss, X)
		prods = append(prods, pr)
		pr = &product{name: "Hessian", op: NewHessianOperator(net, c.loss, X, Y)}
		HessianMatrix(&pr.m, net, c.loss, X, Y)
		prods = append(prods, pr)

		for _, pr := range prods {
			name := c.name + "/" + pr.name
			v := lay.Directions()
			theta := make([]float64, p)
			for q := range theta {
				theta[q] = rng.NormFloat64()
			}
			lay.Unvec(v, theta)
			var want mat.VecDense
			want.MulVec(&pr.m, mat.NewVecDense(p, theta))
			tol := 1e-10 * mat.Norm(&pr.m, 2) * floats.Norm(theta, 2)

			dst := lay.Directions()
			if err := pr.op.MulDirections(dst, v); err != nil {
				t.Fatalf("%s: MulDirections: %v", name, err)
			}
			got := make([]float64, p)
			lay.Vec(got, dst)
			if d := floats.Distance(got, want.RawVector().Data, 2); !(d <= tol) {
				t.Errorf("%s: ‖dst − M v‖ = %.3g > %.3g", name, d, tol)
			}

			if allocs := testing.AllocsPerRun(5, func() { _ = pr.op.MulDirections(dst, v) }); allocs != 0 {
				t.Errorf("%s: MulDirections allocates %v times per call", name, allocs)
			}

			// In place: dst = v.
			if err := pr.op.MulDirections(v, v); err != nil {
				t.Fatalf("%s: MulDirections in place: %v", name, err)
			}
			lay.Vec(got, v)
			if d := floats.Distance(got, want.RawVector().Data, 2); !(d <= tol) {
				t.Errorf("%s: in place: ‖v − M v‖ = %.3g > %.3g", name, d, tol)
			}
		}
	}
}
