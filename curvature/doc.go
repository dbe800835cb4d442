// Package curvature computes the curvature matrices of chapter 3 of T.
// George, "Factorized second order methods in neural networks" (the
// Gauss–Newton matrix, the Fisher information matrix and the Hessian), their
// per-layer blocks and Kronecker factors, and the input statistics of the
// covariance preconditioner, together with exact network-level references
// for small networks.
//
// # Conventions
//
// An affine layer is a = W h + b with W of size n_out×n_in; its parameters
// are θ = [vec(W); b] with vec stacking columns, so that J_θ^a = (hᵀ 1) ⊗ I
// (eq. 3.3.1) and a layer block has size P = n_out(n_in+1). A network's
// parameter vector concatenates the θ of its layers (nn.Network.Params;
// Offsets). h̃ = (h, 1) is the bias-augmented input. The risk is
// R = (1/n) Σ_i l(f(x_i), y_i). The D of a curvature matrix J_θᵀ D J_θ is
// that of package nn: tables 3.I (Gauss–Newton) and 3.II (Fisher), with the
// factor 2 of the unhalved quadratic loss (D = 2I, the thesis's slip 1),
// written either at the outputs f (nn.SplitOutputs, the thesis's tables) or
// at the logits (nn.SplitLogits, the matching-loss split of Schraudolph
// 2002). Each function says which it uses.
//
// Shape errors panic with messages prefixed "curvature: "; an empty
// destination (its zero value) is resized, a non-empty one must have the
// right size. Numerical failures are returned as errors (ErrScale).
//
// # From the per-layer records (no dependence on package nn)
//
// These read secondorder.Layer records, which any network code can fill:
//
//	Block                   exact GN / Fisher block (1/n) Σ_i h̃_i h̃_iᵀ ⊗ J_{a_i}ᵀ D_i J_{a_i}, eq. 3.3.2,
//	                        from Input and Back (whatever Back holds; see Estimator)
//	EmpiricalBlock          empirical Fisher block (1/n) Σ_i (h̃_i ⊗ g_i)(h̃_i ⊗ g_i)ᵀ from Grad, §3.1.5
//	InputFactor             K-FAC Ā = E[h̃ h̃ᵀ] = [[E hhᵀ, μ], [μᵀ, 1]], §3.3.3, §3.5.1; Martens & Grosse 2015
//	OutputFactor            K-FAC G = E[g gᵀ] = BackScale·Backᵀ Back, §3.5.1
//	EmpiricalOutputFactor   (1/n) Gradᵀ Grad, the empirical Fisher's output factor
//	KFACBlock               Ā ⊗ G as a dense matrix, §3.5.1 (tests, small layers)
//	MovingAverage           ε_k-weighted average of factors, ε_k = min(1 − 1/k, ε), Martens & Grosse 2015 §5
//	Mean, Covariance,       μ = E[h], C = E[(h−μ)(h−μ)ᵀ] with 1/n, E[hhᵀ]: the statistics of §3.3.3
//	SecondMoment
//	MaxSquaredGrad,         ACP scale α = max_{i,j} (∇_{a_i} l)_j² or a fixed α, §3.4.2
//	ACPScale
//	ACPBlock                Ā ⊗ αI + λI, the damped covariance preconditioner of §3.4.2, dense
//	Offsets, LayerBlock,    parameter offsets of the layers; one layer's diagonal block; the
//	BlockDiagonal           block-diagonal approximation of §3.1.6
//
// # Filling the records from package nn
//
// Estimator names, after kfac-jax, what goes into the records' Back, and
// Backprop.Fill runs the network's passes to put it there:
//
//	GGNExact         exact Gauss–Newton, table 3.I, k rows of J_aᵀ D^{1/2} per example ("ggn_exact")
//	FisherExact      true Fisher, table 3.II, all k output directions ("fisher_exact")
//	FisherGradients  Monte-Carlo Fisher, gradients at targets sampled from the model ("fisher_gradients")
//	FisherEmpirical  empirical Fisher, gradients at the observed targets ("fisher_empirical")
//
// # Exact network-level matrices (small networks, package nn)
//
//	Jacobians        per-example jacobians J_i of the logits or outputs w.r.t. all parameters,
//	                 by backpropagating unit vectors (eq. 3.3.1 per layer)
//	GaussNewton      G = (1/n) Σ_i J_iᵀ D_i J_i with cross-layer blocks, GN or Fisher, either split, §3.1.4, §3.2.2
//	Fisher           the same with the D of table 3.II
//	EmpiricalFisher  (1/n) Σ_i ∇_θ l_i ∇_θ l_iᵀ, §3.1.5
//	Hessian          the Hessian of the risk, analytic: Pearlmutter's R-operator on the unit vectors, §3.1.4
//	Residual         Σ_i Σ_j (∂l_i/∂z_j) ∇²_θ z_j(x_i)/n, the term GN leaves out (§3.1.4), by
//	                 second-order forward passes
//	Operator         matrix-free products: NewHessian (Hessian-vector, R-operator), NewGaussNewton
//	                 (GN/Fisher-vector, Schraudolph 2002), NewResidual; Dense builds the matrix
//
// # Verification suite
//
// The tests of the package check every approximation against an
// independently computed dense reference, on a case where it must be
// exact, and on a case where it must not be (so that the test can fail).
// Run one part with go test ./curvature -run SuiteN. Tolerances are stated
// in each test's comment.
//
//	Suite1  loss D: the GN built with nn's D equals the finite-difference Hessian of the loss
//	        composed with the network linearised at the split; the Fisher built with table 3.II's
//	        D equals the exact expectation over model-sampled targets of ∇_θ l ∇_θ lᵀ (appendix B)
//	Suite2  Hessian: closed forms (linear + quadratic: (2/n) Σ h̃h̃ᵀ ⊗ I; logistic and softmax
//	        regression) and finite differences of nn's analytic gradient, three-layer sigmoid/tanh
//	        networks with every loss; symmetry of the R-operator
//	Suite3  GN = Hessian for a model linear in θ with the quadratic loss and at zero residual;
//	        elsewhere Hessian − GN = Residual (R-operator, jacobians and forward passes: three methods)
//	Suite4  true Fisher = GN for the quadratic loss and for the cross-entropies at the logits split;
//	        they differ at the outputs split
//	Suite5  Block from the records (eq. 3.3.2) = the layer's diagonal block of the full GN, Fisher
//	        and empirical Fisher, every layer, loss and estimator
//	Suite6  K-FAC = exact block for one example and for a deep linear network with the quadratic
//	        loss; K-FAC ≠ exact block in general
//	Suite7  Monte-Carlo Fisher → true Fisher at the 1/√S rate of its computed standard error
//	Suite8  GN-, Fisher-, Hessian- and residual-vector products = dense matrices × random vectors
//
// Besides, the record-level functions are checked against their dense
// definitions with explicit Kronecker products (TestBlockDefinition,
// TestEmpiricalBlockDefinition, TestKFACFactors, TestACPScale), the input
// statistics against gonum's stat (TestInputStatistics), the moving
// average against its recurrence (TestMovingAverage), and the jacobians
// against finite differences (TestJacobiansFD).
package curvature
