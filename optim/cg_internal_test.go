package optim

import (
	"fmt"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature/network"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim/optimtest"
)

// TestCGReachesDenseSolution: Hessian-free's conjugate gradient, on the
// Gauss–Newton products of a network (network.Operator, cross-layer terms
// included), reaches the dense solution of (G + λI) x = −∇ (gonum's LU on
// GaussNewtonMatrix) to 1e-8 relative when run to convergence, with and
// without the diagonal preconditioner, from zero and from a warm start; its
// model value φ(x) = ½ xᵀ(G + λI)x + ∇ᵀx equals the dense one; after 3
// iterations it is not the solution yet (relative distance above 1e-3).
func TestCGReachesDenseSolution(t *testing.T) {
	for _, p := range []*optimtest.Task{optimtest.Regression(3), optimtest.Classifier(3, nn.Tanh{})} {
		p.Next()
		net := p.Network()
		xb, yb := p.Batch()
		recs := net.Records()
		lay := secondorder.NewLayout(recs)
		var gn mat.SymDense
		network.GaussNewtonMatrix(&gn, net, p.LossFunc(), xb, yb, nn.GaussNewton, nn.SplitLogits)
		op := network.NewGaussNewtonOperator(net, p.LossFunc(), xb, yb, nn.GaussNewton, nn.SplitLogits)
		const lambda = 0.05
		g := make(layered, len(recs))
		for j, l := range recs {
			g[j] = &mat.Dense{}
			l.ParamGrad(g[j])
		}
		gv := mat.NewVecDense(lay.Len(), nil)
		lay.Vec(gv.RawVector().Data, dirsOf(g))
		a := mat.DenseCopyOf(&gn)
		for i := 0; i < lay.Len(); i++ {
			a.Set(i, i, a.At(i, i)+lambda)
		}
		var want mat.VecDense
		if err := want.SolveVec(a, gv); err != nil {
			t.Fatal(err)
		}
		want.ScaleVec(-1, &want)
		var aw mat.VecDense
		aw.MulVec(a, &want)
		wantPhi := 0.5*mat.Dot(&want, &aw) + mat.Dot(gv, &want)

		mul := func(dst, v layered) error {
			if err := op.MulDirections(dirsOf(dst), dirsOf(v)); err != nil {
				return err
			}
			dst.axpy(lambda, v)
			return nil
		}
		diag := newLayered(g)
		for j := range diag {
			diag[j].Apply(func(_, _ int, _ float64) float64 { return 0.5 + float64(j) }, diag[j])
		}
		pre := func(dst, r layered) {
			for j := range dst {
				dst[j].DivElem(r[j], diag[j])
			}
		}
		warm := newLayered(g)
		warm[0].Apply(func(_, _ int, _ float64) float64 { return 0.01 }, warm[0])
		for _, c := range []struct {
			name string
			pre  func(dst, r layered)
			x0   layered
		}{{"plain", nil, nil}, {"preconditioned", pre, nil}, {"warm start", pre, warm}} {
			name := fmt.Sprintf("%s/%s", p.Name(), c.name)
			var cg cgSolver
			cg.keep = 4
			res, err := cg.solve(g, c.x0, mul, c.pre, 10*lay.Len(), 10*lay.Len())
			if err != nil {
				t.Fatal(err)
			}
			got := mat.NewVecDense(lay.Len(), nil)
			lay.Vec(got.RawVector().Data, dirsOf(cg.x))
			var d mat.VecDense
			d.SubVec(got, &want)
			if r := mat.Norm(&d, 2) / mat.Norm(&want, 2); r > 1e-8 {
				t.Errorf("%s: relative distance %g to the dense solution after %d iterations", name, r, res.iters)
			}
			if math.Abs(res.phi-wantPhi) > 1e-8*math.Abs(wantPhi) {
				t.Errorf("%s: φ = %g, dense %g", name, res.phi, wantPhi)
			}
			// The last kept iterate is the last one.
			lay.Vec(got.RawVector().Data, dirsOf(cg.iterate(len(cg.order)-1)))
			d.SubVec(got, &want)
			if r := mat.Norm(&d, 2) / mat.Norm(&want, 2); r > 1e-8 {
				t.Errorf("%s: the last kept iterate is %g from the solution", name, r)
			}
			if len(cg.order) > cg.keep {
				t.Errorf("%s: %d iterates kept, want at most %d", name, len(cg.order), cg.keep)
			}
		}
		var cg cgSolver
		cg.keep = 4
		if _, err := cg.solve(g, nil, mul, nil, 0, 3); err != nil {
			t.Fatal(err)
		}
		got := mat.NewVecDense(lay.Len(), nil)
		lay.Vec(got.RawVector().Data, dirsOf(cg.x))
		var d mat.VecDense
		d.SubVec(got, &want)
		if r := mat.Norm(&d, 2) / mat.Norm(&want, 2); r < 1e-3 {
			t.Errorf("%s: within %g of the solution after 3 iterations; the test cannot fail", p.Name(), r)
		}
	}
}

// dirsOf returns the Direction views of v.
func dirsOf(v layered) []secondorder.Direction {
	d := make([]secondorder.Direction, len(v))
	for j, m := range v {
		d[j] = secondorder.DirectionOf(m)
	}
	return d
}
