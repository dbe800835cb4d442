// Package curvature computes, from the per-layer records
// (secondorder.Layer) alone, the curvature of chapter 3 of T. George,
// "Factorized second order methods in neural networks": the per-layer
// blocks of the Gauss–Newton and Fisher matrices, their Kronecker factors,
// and the input statistics of the covariance preconditioner. It imports the
// root package, kron and gonum, never package nn, so that any network code
// that fills the records can use it, and so can package optim.
//
// The network-level references (full Gauss–Newton, Fisher and Hessian
// matrices of small nn networks, the residual, matrix-free products) and the
// estimators that fill the records' Back through an nn.Network live in
// package curvature/network, which imports nn; the dependency runs one way
// only.
//
// # Conventions
//
// An affine layer is a = W h + b with W of size n_out×n_in; its parameters
// are θ = [vec(W); b] with vec stacking columns, so that J_θ^a = (hᵀ 1) ⊗ I
// (eq. 3.3.1) and a layer block has size P = n_out(n_in+1). A network's
// parameter vector concatenates the θ of its layers (secondorder.Layout;
// layer l occupies secondorder.NewLayout(layers).Offsets[l] … Offsets[l+1]−1).
// h̃ = (h, 1) is the bias-augmented input. The risk is
// R = (1/n) Σ_i l(f(x_i), y_i). Which curvature matrix a block approximates
// — exact Gauss–Newton (table 3.I), true Fisher (table 3.II), Monte-Carlo or
// empirical Fisher — depends only on what the producer of the records put in
// Back (see curvature/network's Estimator); row r of Back belongs to example
// Layer.BackExample(r), and BackScale (1/n when zero) weights the rows.
//
// Shape errors panic with messages prefixed "curvature: " (malformed
// records with "secondorder: ", from Layer.Check); an empty destination (its
// zero value) is resized, a non-empty one must have the right size.
// Numerical failures are returned as errors (ErrScale,
// ErrNotPositiveDefinite).
//
// # From the per-layer records
//
//	DenseBlock              exact GN / Fisher block (1/n) Σ_i h̃_i h̃_iᵀ ⊗ J_{a_i}ᵀ D_i J_{a_i}, eq. 3.3.2,
//	                        from Input, Back, BackScale and BackExamples, as a dense matrix
//	DenseEmpiricalBlock     empirical Fisher block (1/n) Σ_i (h̃_i ⊗ g_i)(h̃_i ⊗ g_i)ᵀ from Grad, §3.1.5
//	InputFactor             K-FAC Ā = E[h̃ h̃ᵀ] = [[E hhᵀ, μ], [μᵀ, 1]], §3.3.3, §3.5.1; Martens & Grosse 2015
//	OutputFactor            K-FAC G = E[g gᵀ] = BackScale·Backᵀ Back, §3.5.1
//	EmpiricalOutputFactor   (1/n) Gradᵀ Grad, the empirical Fisher's output factor
//	DenseKFAC               Ā ⊗ G as a dense matrix, §3.5.1 (tests, small layers)
//	MovingAverage           ε_k-weighted average of factors, ε_k = min(1 − 1/k, ε), Martens & Grosse 2015 §5
//	Mean, Covariance,       μ = E[h], C = E[(h−μ)(h−μ)ᵀ] with 1/n, E[hhᵀ]: the statistics of §3.3.3
//	SecondMoment
//	MaxSquaredGrad,         ACP scale α = max_{i,j} (∇_{a_i} l)_j² or a fixed α, §3.4.2
//	ACPScale
//	DenseACP                Ā ⊗ αI + λI, the damped covariance preconditioner of §3.4.2, dense
//
// # Curvature blocks (after kfac-jax's curvature blocks)
//
// A Block owns a layer's curvature statistics: Update folds a batch into its
// estimate, Refresh factorizes the damped estimate, Precondition applies
// the inverse to the layer's gradient [∇W ∇b], Mul applies the estimate
// (the quadratic form). RefreshDamped is the one loop that raises a damping
// too small for the block to be positive definite. Each block is in its own
// file, tested against its dense matrix:
//
//	KFACBlock      Ā ⊗ G, moving averages, factored Tikhonov damping (Martens & Grosse 2015; §3.5.1)
//	EKFACBlock     K-FAC's eigenbasis with re-estimated eigenvalues diag(UᵀBU) (George et al. 2018)
//	ACPBlock       Ā ⊗ αI + λI, refreshed input statistics, heuristic or fixed α (§3.3.3–3.4.2)
//	ExactBlock     the dense block of eq. 3.3.2 and its Cholesky factorization (block Newton, §3.1.6)
//	DiagonalBlock  the diagonal of that block, O(m P) from the records (exact or Monte-Carlo diagonal GGN)
//	ShampooBlock   (L + ε)^{−1/4} G (R + ε)^{−1/4} of the gradient matrices, RMSProp-grafted (Gupta et al. 2018)
//	SOAPBlock      Adam in the eigenbasis of Shampoo's factors (Vyas et al. 2024)
//
// # Matrix-free estimators
//
// On any symmetric LinearOperator (curvature/network's Hessian, Gauss–Newton
// and Fisher operators, or a SymOperator):
//
//	Hutchinson     the trace and the diagonal from Rademacher probes, with standard errors
//	Lanczos        Ritz values and vectors with residual bounds (full reorthogonalisation)
//	SLQ            stochastic Lanczos quadrature: spectral density and tr f(A)
//
//	LayerBlock,             one layer's diagonal block of a network-level matrix; the block-diagonal
//	BlockDiagonal           approximation of §3.1.6, with the offsets of secondorder.Layout
//
// # Verification suite
//
// The curvature verification suite checks every approximation against an
// independently computed dense reference, on a case where it must be
// exact, and on a case where it must not be (so that the test can fail).
// Its parts need networks of package nn, so they are tests of package
// curvature/network; run one with go test ./curvature/... -run SuiteN.
// Tolerances are stated in each test's comment.
//
//	Suite1  loss D: the GN built with nn's D equals the finite-difference Hessian of the loss
//	        composed with the network linearised at the split; the Fisher built with table 3.II's
//	        D equals the exact expectation over model-sampled targets of ∇_θ l ∇_θ lᵀ (appendix B)
//	Suite2  Hessian: closed forms (linear + quadratic: (2/n) Σ h̃h̃ᵀ ⊗ I; logistic and softmax
//	        regression) and finite differences of nn's analytic gradient, three-layer sigmoid/tanh
//	        networks with every loss; symmetry of the R-operator
//	Suite3  GN = Hessian for a model linear in θ with the quadratic loss and at zero residual;
//	        elsewhere Hessian − GN = residual (R-operator, jacobians and forward passes: three methods)
//	Suite4  true Fisher = GN for the quadratic loss and for the cross-entropies at the logits split;
//	        they differ at the outputs split
//	Suite5  DenseBlock from the records (eq. 3.3.2) = the layer's diagonal block of the full GN,
//	        Fisher and empirical Fisher, every layer, loss and estimator
//	Suite6  K-FAC = exact block for one example and for a deep linear network with the quadratic
//	        loss; K-FAC ≠ exact block in general
//	Suite7  Monte-Carlo Fisher → true Fisher at the 1/√S rate of its computed standard error
//	Suite8  GN-, Fisher-, Hessian- and residual-vector products, and products with per-layer
//	        directions (MulDirections), = dense matrices × random vectors
//	Suite9  DiagonalBlock = the diagonal of the full GN / Fisher (exact estimators); its
//	        Monte-Carlo version converges at the rate of its closed-form variance
//	Suite10 Lanczos, Hutchinson and SLQ on network operators against dense eigendecompositions,
//	        traces and diagonals
//
// The tests of this package check the record-level functions, on records
// made by hand without package nn, against their dense definitions with
// explicit Kronecker products (TestBlockDefinition,
// TestEmpiricalBlockDefinition, TestKFACFactors, TestACPScale), the input
// statistics against gonum's stat (TestInputStatistics), and the moving
// average against its recurrence (TestMovingAverage); those of
// curvature/network also check the jacobians against finite differences
// (TestJacobiansFD).
package curvature
