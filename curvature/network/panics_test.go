package network

import (
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/nn"
)

// TestPanics checks that shape errors and missing fields panic with
// messages prefixed "network: ".
func TestPanics(t *testing.T) {
	net, X, Y := setup(cases[0], 3, 8)
	expectPanic(t, "MulVec length", func() {
		NewHessianOperator(net, cases[0].loss, X, Y).MulVec(&mat.VecDense{}, mat.NewVecDense(3, nil))
	}, "vector has length 3")
	testutil.ExpectPanicFrom(t, "MulDirections count", func() {
		d := secondorder.NewLayout(net.Records()).Directions()
		_ = NewHessianOperator(net, cases[0].loss, X, Y).MulDirections(d, d[:2])
	}, "network: Operator.MulDirections: ", "2 directions, want 3")
	testutil.ExpectPanicFrom(t, "MulDirections shape", func() {
		d := secondorder.NewLayout(net.Records()).Directions()
		e := secondorder.NewLayout(net.Records()).Directions()
		e[1], _ = secondorder.NewDirection(2, 2)
		_ = NewHessianOperator(net, cases[0].loss, X, Y).MulDirections(d, e)
	}, "network: Operator.MulDirections: ", "direction 1 is 2×2")
	expectPanic(t, "Fisher gradients without Rand", func() {
		(&Backprop{Estimator: FisherGradients}).Fill(net, cases[0].loss, X, Y)
	}, "needs Rand")
	expectPanic(t, "GGN without targets", func() {
		(&Backprop{}).Fill(net, cases[0].loss, X, nil)
	}, "ggn_exact needs targets")
	expectPanic(t, "GN operator without targets", func() {
		NewGaussNewtonOperator(net, cases[0].loss, X, nil, nn.GaussNewton, nn.SplitLogits)
	}, "needs targets")
}
