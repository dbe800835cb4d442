// Package network holds the network-level curvature of chapter 3 of T.
// George, "Factorized second order methods in neural networks": exact
// references for small plain networks of package nn (the full Gauss–Newton,
// Fisher, empirical Fisher and Hessian matrices with their cross-layer
// blocks, the residual of the Gauss–Newton approximation, and matrix-free
// products with them), and the estimators that fill the per-layer records'
// Back through an nn.Network.
//
// It is separate from package curvature so that the record-level curvature
// (blocks, K-FAC factors, input statistics, which read only
// secondorder.Layer records) and the optimizers of package optim never
// depend on package nn: curvature imports the root package, kron and
// gonum; network imports nn (and its tests curvature, whose blocks they
// check), never the reverse. go list -deps ./curvature and
// go list -deps ./optim are the checks.
//
// # Conventions
//
// Those of package curvature. A network's parameter vector concatenates
// θ_l = [vec(W_l); b_l] over its layers, vec stacking columns (the layout
// of nn.Network.Params and of secondorder.Layout; layer l occupies
// secondorder.NewLayout(net.Records()).Offsets[l] … Offsets[l+1]−1). The
// risk is R = (1/n) Σ_i l(f(x_i), y_i). The D of a curvature matrix
// J_θᵀ D J_θ is that of package nn: tables 3.I (Gauss–Newton, nn.GaussNewton)
// and 3.II (Fisher, nn.Fisher), with the factor 2 of the unhalved quadratic
// loss (D = 2I, the thesis's slip 1), written either at the outputs f
// (nn.SplitOutputs, the thesis's tables) or at the logits (nn.SplitLogits,
// the matching-loss split of Schraudolph 2002). Each function says which it
// uses. The exact matrices, residuals and operators rebuild the network from
// its affine maps and activations, so they accept only plain networks
// (nn.Network.Plain: no batch normalisation, no whitening).
//
// Shape errors panic with messages prefixed "network: "; an empty
// destination (its zero value) is resized, a non-empty one must have the
// right size.
//
// # Filling the records
//
// Estimator names, after kfac-jax, what goes into the records' Back, and
// Backprop.Fill runs the network's passes to put it there, with BackScale
// and BackExamples (the example of each row):
//
//	GGNExact         exact Gauss–Newton, table 3.I, k rows of J_aᵀ D^{1/2} per example ("ggn_exact")
//	FisherExact      true Fisher, table 3.II, all k output directions ("fisher_exact")
//	FisherGradients  Monte-Carlo Fisher, gradients at targets sampled from the model ("fisher_gradients")
//	FisherEmpirical  empirical Fisher, gradients at the observed targets ("fisher_empirical")
//
// Backprop.Examples restricts Back to the first m examples of the batch
// (Martens & Grosse's τ1 sub-batch), the gradient staying that of the whole
// batch.
//
// # Exact network-level matrices (small networks)
//
//	Jacobians              per-example jacobians J_i of the logits or outputs w.r.t. all parameters,
//	                       by backpropagating unit vectors (eq. 3.3.1 per layer)
//	GaussNewtonMatrix      G = (1/n) Σ_i J_iᵀ D_i J_i with cross-layer blocks, GN or Fisher, either split, §3.1.4, §3.2.2
//	FisherMatrix           the same with the D of table 3.II
//	EmpiricalFisherMatrix  (1/n) Σ_i ∇_θ l_i ∇_θ l_iᵀ, §3.1.5
//	HessianMatrix          the Hessian of the risk, analytic: Pearlmutter's R-operator on the unit vectors, §3.1.4
//	ResidualMatrix         Σ_i Σ_j (∂l_i/∂z_j) ∇²_θ z_j(x_i)/n, the term GN leaves out (§3.1.4), by
//	                       second-order forward passes
//	Operator               matrix-free products: NewHessianOperator (Hessian-vector, R-operator),
//	                       NewGaussNewtonOperator and NewFisherOperator (GN/Fisher-vector, Schraudolph 2002),
//	                       NewResidualOperator; MulVec on θ-vectors, MulDirections on per-layer
//	                       secondorder.Direction (the form of optim.Problem.GNVec); Dense builds the matrix
//
// # Verification suite
//
// The tests of this package check every second-order quantity of chapter 3
// against an independently computed dense reference, on a case where it must
// be exact and on a case where it must not be (so that the test can fail).
// Run one part with go test ./curvature/... -run SuiteN. Tolerances are
// stated in each test's comment.
//
//	Suite1  loss_d_test.go        loss D: GN with nn's D = finite-difference Hessian of the linearised
//	                              loss; Fisher with table 3.II's D = exact expectation over the model
//	Suite2  hessian_test.go       Hessian = closed forms and finite differences of the gradient
//	Suite3  gauss_newton_test.go  GN = Hessian where it must be; elsewhere Hessian − GN = residual
//	Suite4  fisher_test.go        true Fisher = GN for the quadratic loss and at the logits split
//	Suite5  blocks_test.go        curvature.DenseBlock from the records = diagonal block of the full matrix
//	Suite6  kfac_test.go          K-FAC = exact block for one example and for a deep linear network
//	Suite7  monte_carlo_test.go   Monte-Carlo Fisher → true Fisher at the 1/√S rate
//	Suite8  operator_test.go      GN-, Fisher-, Hessian-, residual-vector products and MulDirections
//	                              = dense matrices × random vectors
package network
