package secondorder

import "fmt"

// BackExample returns the example (the row of Input) that row r of Back
// belongs to. With BackExamples set it is BackExamples[r]. Otherwise, for m
// rows of Back and n rows of Input, the default layout is
//
//	m ≤ n:     row r is example r (one vector per example, possibly for a
//	           leading sub-batch of m examples, Martens & Grosse's τ1)
//	m = k·n:   rows i·k … i·k+k−1 are example i (k vectors per example, as
//	           the exact GN/Fisher rows J_aᵀ D^{1/2} of package nn)
//
// and any other m needs BackExamples (Check panics).
func (l *Layer) BackExample(r int) int {
	if l.BackExamples != nil {
		return l.BackExamples[r]
	}
	m, _ := l.Back.Dims()
	n := m
	if l.Input != nil {
		n, _ = l.Input.Dims()
	}
	if m <= n {
		return r
	}
	return r / (m / n)
}

// BackCover returns the number of leading rows of Input that the rows of
// Back cover: one more than the largest example of a row (0 without Back).
// A curvature estimate that pairs input statistics with Back, such as the
// K-FAC factors, takes the input side from these rows, so that both sides
// see the same examples; a sub-batch must therefore be a prefix of the batch.
func (l *Layer) BackCover() int {
	if l.Back == nil {
		return 0
	}
	m, _ := l.Back.Dims()
	if l.BackExamples == nil {
		if l.Input == nil {
			return m
		}
		n, _ := l.Input.Dims()
		return min(m, n)
	}
	c := 0
	for _, e := range l.BackExamples {
		c = max(c, e+1)
	}
	return c
}

// BackScaleOrDefault returns the weight s of Σ_r g_r g_rᵀ in the output-side
// second moment: BackScale, or 1/n with n the rows of Input when BackScale
// is zero.
func (l *Layer) BackScaleOrDefault() float64 {
	if l.BackScale != 0 {
		return l.BackScale
	}
	if l.Input == nil {
		panic("secondorder: BackScale is zero and the layer has no Input to give n")
	}
	n, _ := l.Input.Dims()
	return 1 / float64(n)
}

// checkBackExamples panics unless the m rows of Back map to examples of the
// n rows of Input (n < 0: Input absent, only lengths are checked).
func (l *Layer) checkBackExamples(m, n int) {
	if l.BackExamples == nil {
		if n > 0 && m > n && m%n != 0 {
			panic(fmt.Sprintf("secondorder: Layer.Back has %d rows for %d examples and no BackExamples; set BackExamples", m, n))
		}
		return
	}
	if len(l.BackExamples) != m {
		panic(fmt.Sprintf("secondorder: Layer.BackExamples has length %d, Back has %d rows", len(l.BackExamples), m))
	}
	if n < 0 {
		return
	}
	for r, e := range l.BackExamples {
		if e < 0 || e >= n {
			panic(fmt.Sprintf("secondorder: Layer.BackExamples[%d] = %d outside [0, %d)", r, e, n))
		}
	}
}
