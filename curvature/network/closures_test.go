package network

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/nn"
)

// TestClosures proves that the closures of Closures are the risk of the
// batch at the current parameters (against nn.Network.Risk, after the
// parameters moved) and the Gauss–Newton products of the operator at the
// parameters of the first product (against NewGaussNewtonOperator's dense
// matrix times the vec of random directions, to 1e-12 relative), for a
// sigmoid network with the cross-entropy.
func TestClosures(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	net := nn.New([]int{4, 5, 3}, []nn.Activation{nn.Tanh{}, nn.Softmax{}})
	net.Init(nn.Glorot{}, rng)
	const n = 7
	x := mat.NewDense(n, 4, nil)
	y := mat.NewDense(n, 3, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < 4; j++ {
			x.Set(i, j, rng.NormFloat64())
		}
		y.Set(i, rng.IntN(3), 1)
	}
	loss := nn.CrossEntropy{}
	lossFn, gnvec := Closures(net, loss, x, y)

	var want mat.SymDense
	GaussNewtonMatrix(&want, net, loss, x, y, nn.GaussNewton, nn.SplitLogits)
	recs := net.Records()
	lay := secondorder.NewLayout(recs)
	v, dst := lay.Directions(), lay.Directions()
	vv := make([]float64, lay.Len())
	for i := range vv {
		vv[i] = rng.NormFloat64()
	}
	lay.Unvec(v, vv)
	if err := gnvec(dst, v); err != nil {
		t.Fatal(err)
	}
	got := make([]float64, lay.Len())
	lay.Vec(got, dst)
	var w mat.VecDense
	w.MulVec(&want, mat.NewVecDense(len(vv), vv))
	for i := range got {
		if d := math.Abs(got[i] - w.AtVec(i)); d > 1e-12*(1+math.Abs(w.AtVec(i))) {
			t.Fatalf("GN product entry %d: %g, want %g", i, got[i], w.AtVec(i))
		}
	}

	// Move the parameters: the loss closure follows them.
	recs[0].W.Set(0, 0, recs[0].W.At(0, 0)+0.5)
	r, err := lossFn()
	if err != nil {
		t.Fatal(err)
	}
	if want := net.Risk(loss, x, y); math.Abs(r-want) > 1e-14*math.Abs(want) {
		t.Errorf("loss closure %g, want the risk %g", r, want)
	}
}
